// logistic_regression / linear_probe_predict: L2-regularised logistic regression fitted with L-BFGS,
// scikit-learn's LogisticRegression(C, max_iter, tol) with its defaults otherwise (lbfgs, fit_intercept).
// Schema: registration/schema.cpp. Kernel (CPU and CUDA): logistic_regression_kernel.cpp.
// Meta: logistic_regression_meta.cpp. C++ API: logistic_regression.cpp.
#pragma once

#include <ATen/ATen.h>

namespace modgap {

constexpr const char* kLogisticRegressionName = "modgap::logistic_regression";
constexpr const char* kLinearProbePredictName = "modgap::linear_probe_predict";

struct LogisticRegressionFit {
  at::Tensor coef;       // [1, D] for two classes (the second class is the positive one), else [K, D]; float64
  at::Tensor intercept;  // [1] or [K]; float64
  int64_t iterations;    // L-BFGS iterations run (sklearn's n_iter_)
};

// `x` [N, D] floating, `y` [N] integer class indices in [0, num_classes). Computed in float64.
LogisticRegressionFit logistic_regression_fit(const at::Tensor& x, const at::Tensor& y, int64_t num_classes, double C,
                                              int64_t max_iter, double tol);

// Class indices [Q] (int64) of the rows of `query_x` under a fit (argmax of the scores; for two classes,
// score > 0 gives class 1, as sklearn's predict).
at::Tensor logistic_regression_predict(const LogisticRegressionFit& fit, const at::Tensor& query_x);

void check_logistic_regression_arguments(const char* op, const at::Tensor& x, const at::Tensor& y, double C,
                                         int64_t max_iter, double tol);

// logistic_regression's `num_classes`: at least 2 (kernel and Meta kernel).
void check_num_classes(int64_t num_classes);

}  // namespace modgap
