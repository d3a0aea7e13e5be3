// C++ API of knn_predict: calls the registered operator through the dispatcher.
#include "ops/knn_predict/knn_predict.h"

#include <ATen/core/dispatch/Dispatcher.h>

#include <modgap/modgap.h>

namespace modgap {

at::Tensor knn_predict(const at::Tensor& train_x, const at::Tensor& train_y, const at::Tensor& query_x, int64_t k,
                       const std::string& metric) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("modgap::knn_predict", "")
                       .typed<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&, int64_t,
                                         c10::string_view)>();
  return op.call(train_x, train_y, query_x, k, metric);
}

}  // namespace modgap
