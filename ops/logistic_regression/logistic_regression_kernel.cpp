// logistic_regression and linear_probe_predict for CPU and CUDA tensors (one ATen implementation
// registered for both keys), in float64.
//
// The fit is scikit-learn's LogisticRegression(C, max_iter, tol) with its other defaults (L2 penalty,
// lbfgs, fit_intercept=True), the probe of the paper's Table 7 ("a simple linear classifier" on frozen
// embeddings) and of Fahim et al.'s linear separability of two modalities (measures.md §8):
//   * objective (sklearn's scaling, LinearModelLoss with l2_reg_strength = 1 / (C n)):
//       f(W, b) = 1/n sum_i loss_i + 1/(2 C n) ||W||^2        (the intercept is not penalised)
//     two classes: the binomial loss of one score x.w + b (class 1 is the positive class, coef [1, D]);
//     more: the multinomial cross-entropy of K scores (coef [K, D]). Strictly convex, so the minimiser
//     is unique and every converged solver returns it;
//   * minimiser: L-BFGS with 10 correction pairs from zero, as scipy's L-BFGS-B under sklearn:
//     stop when max |gradient| <= tol (scipy's gtol), when the relative decrease of f falls to
//     64 * machine epsilon (scipy's ftol as sklearn sets it) or after max_iter iterations. The line
//     search is a backtracking Armijo search (safeguarded quadratic steps, at most 50 trials, sklearn's
//     maxls) instead of scipy's More-Thuente search, so iterates before convergence differ from
//     sklearn's; converged coefficients agree (tests compare).
#include <torch/library.h>

#include <cmath>
#include <deque>
#include <limits>

#include "ops/common/input_checks.h"
#include "ops/logistic_regression/logistic_regression.h"

namespace modgap {
namespace {

constexpr int kCorrections = 10;         // scipy's maxcor
constexpr int kMaxLineSearchSteps = 50;  // sklearn's maxls
constexpr double kArmijo = 1e-4;

// f and its gradient at the flat parameter vector w (binary: [w (D), b]; multinomial: [W (K x D), b (K)]).
class Objective {
 public:
  Objective(const at::Tensor& x, const at::Tensor& y, int64_t num_classes, double C)
      : x_(x), binary_(num_classes == 2), classes_(num_classes), dim_(x.size(1)),
        n_(static_cast<double>(x.size(0))), l2_(1.0 / (C * static_cast<double>(x.size(0)))) {
    if (binary_) {
      target_ = y.to(at::kDouble);
    } else {
      target_ = at::zeros({x.size(0), num_classes}, x.options());
      target_.scatter_(1, y.unsqueeze(1), 1.0);
      index_ = y.unsqueeze(1);
    }
  }

  int64_t size() const { return binary_ ? dim_ + 1 : classes_ * (dim_ + 1); }

  double operator()(const at::Tensor& w, at::Tensor& grad) const {
    if (binary_) {
      const at::Tensor coef = w.narrow(0, 0, dim_);
      const at::Tensor z = at::mv(x_, coef) + w.narrow(0, dim_, 1);
      // log(1 + e^z) without overflow: max(z, 0) + log1p(e^-|z|)
      const at::Tensor softplus = at::relu(z) + at::log1p(at::exp(-z.abs()));
      const double f = ((softplus - target_ * z).sum().item<double>()) / n_ + 0.5 * l2_ * coef.dot(coef).item<double>();
      const at::Tensor residual = (at::sigmoid(z) - target_) / n_;
      grad = at::cat({at::mv(x_.t(), residual) + l2_ * coef, residual.sum().unsqueeze(0)});
      return f;
    }
    const at::Tensor coef = w.narrow(0, 0, classes_ * dim_).view({classes_, dim_});
    const at::Tensor scores = at::addmm(w.narrow(0, classes_ * dim_, classes_), x_, coef.t());
    const at::Tensor lse = at::logsumexp(scores, {1}, /*keepdim=*/true);
    const double f = (lse.sum() - scores.gather(1, index_).sum()).item<double>() / n_ +
                     0.5 * l2_ * coef.pow(2).sum().item<double>();
    const at::Tensor residual = (at::exp(scores - lse) - target_) / n_;
    grad = at::cat({(at::mm(residual.t(), x_) + l2_ * coef).flatten(), residual.sum(0)});
    return f;
  }

 private:
  at::Tensor x_, target_, index_;
  bool binary_;
  int64_t classes_, dim_;
  double n_, l2_;
};

double scalar_dot(const at::Tensor& a, const at::Tensor& b) { return a.dot(b).item<double>(); }

}  // namespace

void check_logistic_regression_arguments(const char* op, const at::Tensor& x, const at::Tensor& y, double C,
                                         int64_t max_iter, double tol) {
  check_matrix(op, "x", x, /*min_rows=*/2);
  check_labels(op, "y", y, x.sym_size(0), x.device());
  TORCH_CHECK_VALUE(std::isfinite(C) && C > 0.0, op, ": `C` (inverse regularisation strength) must be finite and > 0, got ",
                    C);
  TORCH_CHECK_VALUE(max_iter >= 1, op, ": `max_iter` must be >= 1, got ", max_iter);
  TORCH_CHECK_VALUE(std::isfinite(tol) && tol >= 0.0, op, ": `tol` must be finite and >= 0, got ", tol);
}

void check_num_classes(int64_t num_classes) {
  TORCH_CHECK_VALUE(num_classes >= 2, kLogisticRegressionName, ": `num_classes` must be >= 2, got ", num_classes);
}

LogisticRegressionFit logistic_regression_fit(const at::Tensor& x_in, const at::Tensor& y, int64_t num_classes,
                                              double C, int64_t max_iter, double tol) {
  const at::Tensor x = x_in.to(at::kDouble).contiguous();
  const Objective objective(x, y.to(at::kLong), num_classes, C);
  at::Tensor w = at::zeros({objective.size()}, x.options());
  at::Tensor grad;
  double f = objective(w, grad);
  std::deque<std::tuple<at::Tensor, at::Tensor, double>> memory;  // (s, y, 1 / s.y), newest last
  int64_t iterations = 0;
  const double ftol = 64.0 * std::numeric_limits<double>::epsilon();
  while (iterations < max_iter && grad.abs().max().item<double>() > tol) {
    // Two-loop recursion: direction = -H grad with H the L-BFGS inverse-Hessian estimate.
    at::Tensor q = grad.clone();
    std::vector<double> alphas(memory.size());
    for (int64_t i = static_cast<int64_t>(memory.size()) - 1; i >= 0; --i) {
      const auto& [s, yv, rho] = memory[i];
      alphas[i] = rho * scalar_dot(s, q);
      q.sub_(yv, alphas[i]);
    }
    if (!memory.empty()) {
      const auto& [s, yv, rho] = memory.back();
      q.mul_(1.0 / (rho * scalar_dot(yv, yv)));  // H0 = (s.y / y.y) I
    }
    for (size_t i = 0; i < memory.size(); ++i) {
      const auto& [s, yv, rho] = memory[i];
      q.add_(s, alphas[i] - rho * scalar_dot(yv, q));
    }
    at::Tensor direction = -q;
    double slope = scalar_dot(grad, direction);
    if (!(slope < 0.0)) {  // not a descent direction (rounding): restart from steepest descent
      memory.clear();
      direction = -grad;
      slope = -scalar_dot(grad, grad);
    }
    // First step along -grad: length 1 / ||grad|| (as L-BFGS-B); afterwards the unit quasi-Newton step.
    double step = memory.empty() ? 1.0 / std::max(1.0, std::sqrt(-slope)) : 1.0;
    at::Tensor w_new, grad_new;
    double f_new = std::numeric_limits<double>::infinity();
    bool accepted = false;
    for (int trial = 0; trial < kMaxLineSearchSteps; ++trial) {
      w_new = w + step * direction;
      f_new = objective(w_new, grad_new);
      if (std::isfinite(f_new) && f_new <= f + kArmijo * step * slope) {
        accepted = true;
        break;
      }
      // minimiser of the quadratic through f, slope and f_new, kept within [0.1, 0.5] of the step
      const double quadratic = std::isfinite(f_new) ? -slope * step * step / (2.0 * (f_new - f - slope * step)) : 0.1 * step;
      step = std::min(0.5 * step, std::max(0.1 * step, quadratic));
    }
    if (!accepted) {
      break;  // no decrease along the direction (f is at its floor in float64): stop, as L-BFGS-B
    }
    at::Tensor s = w_new - w;
    at::Tensor yv = grad_new - grad;
    const double sy = scalar_dot(s, yv);
    if (sy > std::numeric_limits<double>::epsilon() * scalar_dot(yv, yv)) {
      memory.emplace_back(s, yv, 1.0 / sy);
      if (static_cast<int>(memory.size()) > kCorrections) {
        memory.pop_front();
      }
    }
    const double decrease = (f - f_new) / std::max({std::abs(f), std::abs(f_new), 1.0});
    w = w_new;
    grad = grad_new;
    f = f_new;
    ++iterations;
    if (decrease <= ftol) {
      break;
    }
  }
  const int64_t dim = x.size(1);
  const int64_t rows = num_classes == 2 ? 1 : num_classes;
  return {w.narrow(0, 0, rows * dim).view({rows, dim}).clone(), w.narrow(0, rows * dim, rows).clone(), iterations};
}

at::Tensor logistic_regression_predict(const LogisticRegressionFit& fit, const at::Tensor& query_x) {
  const at::Tensor scores = at::addmm(fit.intercept, query_x.to(at::kDouble), fit.coef.t());
  return scores.size(1) == 1 ? (scores.select(1, 0) > 0).to(at::kLong) : scores.argmax(1);
}

namespace {

std::tuple<at::Tensor, at::Tensor, at::Tensor> logistic_regression_kernel(const at::Tensor& x, const at::Tensor& y,
                                                                          int64_t num_classes, double C,
                                                                          int64_t max_iter, double tol) {
  check_logistic_regression_arguments(kLogisticRegressionName, x, y, C, max_iter, tol);
  check_num_classes(num_classes);
  // Checked before the class histogram is allocated (num_classes + 2 bins): a class count beyond the rows
  // cannot give every class a row, and a huge one would otherwise end in an allocator error.
  TORCH_CHECK_VALUE(num_classes <= x.size(0), kLogisticRegressionName, ": `num_classes` = ", num_classes,
                    " exceeds the ", x.size(0), " rows of `x`; every class in [0, num_classes) needs at least one row");
  check_finite(kLogisticRegressionName, "x", x);
  const at::Tensor counts = at::bincount(y.to(at::kLong).clamp(-1, num_classes).add(1), {}, num_classes + 2).cpu();
  const int64_t below = counts[0].item<int64_t>(), above = counts[num_classes + 1].item<int64_t>();
  TORCH_CHECK_VALUE(below == 0 && above == 0, kLogisticRegressionName, ": `y` must hold class indices in [0, ",
                    num_classes, ") (`num_classes` = ", num_classes, "), got ", below + above, " outside");
  for (int64_t c = 0; c < num_classes; ++c) {
    // A class without rows has no finite minimiser (its unpenalised intercept runs to -infinity).
    TORCH_CHECK_VALUE(counts[c + 1].item<int64_t>() > 0, kLogisticRegressionName, ": `y` has no row of class ", c,
                      "; every class in [0, num_classes) needs at least one");
  }
  const LogisticRegressionFit fit = logistic_regression_fit(x, y, num_classes, C, max_iter, tol);
  return {fit.coef, fit.intercept, at::scalar_tensor(fit.iterations, x.options().dtype(at::kLong))};
}

at::Tensor linear_probe_predict_kernel(const at::Tensor& train_x, const at::Tensor& train_y, const at::Tensor& query_x,
                                       double C, int64_t max_iter, double tol) {
  check_logistic_regression_arguments(kLinearProbePredictName, train_x, train_y, C, max_iter, tol);
  check_matrix(kLinearProbePredictName, "query_x", query_x, /*min_rows=*/0);
  check_same_columns(kLinearProbePredictName, "train_x", train_x, "query_x", query_x);
  check_finite(kLinearProbePredictName, "train_x", train_x);
  check_finite(kLinearProbePredictName, "query_x", query_x);
  const auto [classes, class_index, counts] =
      at::_unique2(train_y, /*sorted=*/true, /*return_inverse=*/true, /*return_counts=*/false);
  TORCH_CHECK_VALUE(classes.size(0) >= 2, kLinearProbePredictName,
                    ": `train_y` must hold at least 2 classes (a classifier needs two), got 1");
  const LogisticRegressionFit fit = logistic_regression_fit(train_x, class_index, classes.size(0), C, max_iter, tol);
  return classes.index_select(0, logistic_regression_predict(fit, query_x));
}

}  // namespace

TORCH_LIBRARY_IMPL(modgap, CPU, m) {
  m.impl("logistic_regression", &logistic_regression_kernel);
  m.impl("linear_probe_predict", &linear_probe_predict_kernel);
}
TORCH_LIBRARY_IMPL(modgap, CUDA, m) {
  m.impl("logistic_regression", &logistic_regression_kernel);
  m.impl("linear_probe_predict", &linear_probe_predict_kernel);
}

}  // namespace modgap
