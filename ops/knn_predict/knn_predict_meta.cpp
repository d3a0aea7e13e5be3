// Meta (fake) kernel of knn_predict: one label per query, in the dtype of train_y.
#include <torch/library.h>

#include "ops/knn_predict/knn_predict.h"

namespace modgap {
namespace {

at::Tensor knn_predict_meta(const at::Tensor& train_x, const at::Tensor& train_y, const at::Tensor& query_x,
                            int64_t k, c10::string_view metric) {
  check_knn_arguments(train_x, train_y, query_x, k, metric);
  return at::empty_symint({query_x.sym_size(0)}, train_y.options());
}

}  // namespace

TORCH_LIBRARY_IMPL(modgap, Meta, m) { m.impl("knn_predict", &knn_predict_meta); }

}  // namespace modgap
