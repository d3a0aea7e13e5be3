// C++ API of retrieval_recall and retrieval_recall_any: call the registered operators through the dispatcher.
#include "ops/retrieval_recall/retrieval_recall.h"

#include <ATen/core/dispatch/Dispatcher.h>

#include <modgap/modgap.h>

namespace modgap {

at::Tensor retrieval_recall(const at::Tensor& queries, const at::Tensor& gallery, const at::Tensor& query_to_gallery,
                            at::IntArrayRef ks) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("modgap::retrieval_recall", "")
                       .typed<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&, at::IntArrayRef)>();
  return op.call(queries, gallery, query_to_gallery, ks);
}

at::Tensor retrieval_recall_any(const at::Tensor& queries, const at::Tensor& gallery,
                                const at::Tensor& gallery_to_query, at::IntArrayRef ks) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("modgap::retrieval_recall_any", "")
                       .typed<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&, at::IntArrayRef)>();
  return op.call(queries, gallery, gallery_to_query, ks);
}

}  // namespace modgap
