// Meta (fake) kernels of retrieval_recall(_any): one float64 recall per K.
#include <torch/library.h>

#include "ops/retrieval_recall/retrieval_recall.h"

namespace modgap {
namespace {

at::Tensor retrieval_recall_meta(const at::Tensor& queries, const at::Tensor& gallery,
                                 const at::Tensor& query_to_gallery, at::IntArrayRef ks) {
  check_retrieval_arguments(kRetrievalRecallName, queries, gallery, "query_to_gallery", query_to_gallery,
                            queries.sym_size(0), ks);
  return at::empty({static_cast<int64_t>(ks.size())}, queries.options().dtype(at::kDouble));
}

at::Tensor retrieval_recall_any_meta(const at::Tensor& queries, const at::Tensor& gallery,
                                     const at::Tensor& gallery_to_query, at::IntArrayRef ks) {
  check_retrieval_arguments(kRetrievalRecallAnyName, queries, gallery, "gallery_to_query", gallery_to_query,
                            gallery.sym_size(0), ks);
  return at::empty({static_cast<int64_t>(ks.size())}, queries.options().dtype(at::kDouble));
}

}  // namespace

TORCH_LIBRARY_IMPL(modgap, Meta, m) {
  m.impl("retrieval_recall", &retrieval_recall_meta);
  m.impl("retrieval_recall_any", &retrieval_recall_any_meta);
}

}  // namespace modgap
