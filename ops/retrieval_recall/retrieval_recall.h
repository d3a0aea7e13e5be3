// retrieval_recall / retrieval_recall_any: Recall@K of cross-modal retrieval.
// Schemas: registration/schema.cpp. Kernel (CPU and CUDA): retrieval_recall_kernel.cpp.
// Meta: retrieval_recall_meta.cpp.
#pragma once

#include <ATen/ATen.h>

namespace modgap {

constexpr const char* kRetrievalRecallName = "modgap::retrieval_recall";
constexpr const char* kRetrievalRecallAnyName = "modgap::retrieval_recall_any";

// One true gallery item per query: query_to_gallery[i] indexes `gallery`.
at::Tensor retrieval_recall_kernel(const at::Tensor& queries, const at::Tensor& gallery,
                                   const at::Tensor& query_to_gallery, at::IntArrayRef ks);

// Several true gallery items per query (image -> text with several captions per image):
// gallery_to_query[j] is the query that gallery item j belongs to; a query is a hit at K when any of its
// items is in its top K (openai/CLIP #115).
at::Tensor retrieval_recall_any_kernel(const at::Tensor& queries, const at::Tensor& gallery,
                                       const at::Tensor& gallery_to_query, at::IntArrayRef ks);

void check_retrieval_arguments(const char* op, const at::Tensor& queries, const at::Tensor& gallery,
                               const char* map_name, const at::Tensor& map, const c10::SymInt& map_length,
                               at::IntArrayRef ks);

}  // namespace modgap
