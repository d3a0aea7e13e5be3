// C++ API of logistic_regression and linear_probe_predict: calls the registered operators through the dispatcher.
#include "ops/logistic_regression/logistic_regression.h"

#include <ATen/core/dispatch/Dispatcher.h>

#include <modgap/modgap.h>

namespace modgap {

std::tuple<at::Tensor, at::Tensor, at::Tensor> logistic_regression(const at::Tensor& x, const at::Tensor& y,
                                                                   int64_t num_classes, double C, int64_t max_iter,
                                                                   double tol) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("modgap::logistic_regression", "")
                       .typed<std::tuple<at::Tensor, at::Tensor, at::Tensor>(const at::Tensor&, const at::Tensor&,
                                                                             int64_t, double, int64_t, double)>();
  return op.call(x, y, num_classes, C, max_iter, tol);
}

at::Tensor linear_probe_predict(const at::Tensor& train_x, const at::Tensor& train_y, const at::Tensor& query_x,
                                double C, int64_t max_iter, double tol) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("modgap::linear_probe_predict", "")
                       .typed<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&, double, int64_t,
                                         double)>();
  return op.call(train_x, train_y, query_x, C, max_iter, tol);
}

}  // namespace modgap
