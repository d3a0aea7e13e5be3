// Meta (fake) kernels of logistic_regression and linear_probe_predict: the shapes follow from the
// arguments (two classes fit one score, as sklearn), float64 coefficients, one label per query.
#include <torch/library.h>

#include "ops/logistic_regression/logistic_regression.h"

namespace modgap {
namespace {

std::tuple<at::Tensor, at::Tensor, at::Tensor> logistic_regression_meta(const at::Tensor& x, const at::Tensor& y,
                                                                        int64_t num_classes, double C,
                                                                        int64_t max_iter, double tol) {
  check_logistic_regression_arguments(kLogisticRegressionName, x, y, C, max_iter, tol);
  check_num_classes(num_classes);
  const int64_t rows = num_classes == 2 ? 1 : num_classes;
  const auto options = x.options().dtype(at::kDouble);
  return {at::empty_symint({c10::SymInt(rows), x.sym_size(1)}, options), at::empty({rows}, options),
          at::empty({}, x.options().dtype(at::kLong))};
}

at::Tensor linear_probe_predict_meta(const at::Tensor& train_x, const at::Tensor& train_y, const at::Tensor& query_x,
                                     double C, int64_t max_iter, double tol) {
  check_logistic_regression_arguments(kLinearProbePredictName, train_x, train_y, C, max_iter, tol);
  return at::empty_symint({query_x.sym_size(0)}, train_y.options());
}

}  // namespace

TORCH_LIBRARY_IMPL(modgap, Meta, m) {
  m.impl("logistic_regression", &logistic_regression_meta);
  m.impl("linear_probe_predict", &linear_probe_predict_meta);
}

}  // namespace modgap
