// emd for CPU and CUDA tensors (one ATen implementation registered for both keys).
//
// The exact transport plan G* = argmin <G, M> over G >= 0, G 1 = a, G^T 1 = b, and its cost <G*, M>,
// as POT's ot.emd(a, b, M): empty `a` or `b` mean uniform masses; the sums of `a` and `b` must agree to
// 1e-6 (relative), and `b` is then rescaled to the sum of `a` exactly. The solver is the network simplex
// of network_simplex.h, sequential by nature: CUDA inputs are solved on the CPU and the plan is returned
// on their device. Arithmetic in float64 whatever the inputs' dtype; the plan has M's dtype, the cost is
// float64. When `max_iter` pivots are reached before optimality the op warns and returns the feasible
// (not optimal) plan it has, as POT does.
#include <torch/library.h>

#include <cmath>

#include "ops/common/input_checks.h"
#include "ops/emd/emd.h"
#include "ops/emd/network_simplex.h"

namespace modgap {

namespace {

void check_masses(const char* name, const at::Tensor& masses, const c10::SymInt& expected, const at::Tensor& M,
                  const char* dimension) {
  TORCH_CHECK_VALUE(masses.defined(), kEmdName, ": `", name, "` is an undefined tensor");
  TORCH_CHECK_VALUE(masses.dim() == 1, kEmdName, ": `", name, "` must be a 1-D tensor of masses (or empty for ",
                    "uniform masses), got shape ", masses.sizes());
  if (masses.sym_numel() == 0) {
    return;
  }
  TORCH_CHECK_VALUE(masses.sym_size(0) == expected, kEmdName, ": `", name, "` has ", masses.sym_size(0),
                    " entries but `M` has ", expected, " ", dimension);
  TORCH_CHECK_TYPE(at::isFloatingType(masses.scalar_type()), kEmdName, ": `", name,
                   "` must have a floating dtype, got ", masses.scalar_type());
  TORCH_CHECK_VALUE(masses.device() == M.device(), kEmdName, ": `", name, "` is on ", masses.device(),
                    " but `M` is on ", M.device());
}

at::Tensor masses_or_uniform(const at::Tensor& masses, int64_t n) {
  if (masses.numel() == 0) {
    return at::full({n}, 1.0 / static_cast<double>(n), at::TensorOptions().dtype(at::kDouble));
  }
  return masses.to(at::kCPU, at::kDouble).contiguous();
}

}  // namespace

void check_emd_arguments(const at::Tensor& a, const at::Tensor& b, const at::Tensor& M, int64_t max_iter) {
  check_matrix(kEmdName, "M", M, /*min_rows=*/1);
  check_masses("a", a, M.sym_size(0), M, "rows");
  check_masses("b", b, M.sym_size(1), M, "columns");
  TORCH_CHECK_VALUE(max_iter >= 1, kEmdName, ": `max_iter` (the most simplex pivots) must be >= 1, got ", max_iter);
}

std::tuple<at::Tensor, at::Tensor> emd_kernel(const at::Tensor& a, const at::Tensor& b, const at::Tensor& M,
                                              int64_t max_iter) {
  check_emd_arguments(a, b, M, max_iter);
  check_finite(kEmdName, "M", M);
  const int64_t ns = M.size(0);
  const int64_t nt = M.size(1);
  const at::Tensor a64 = masses_or_uniform(a, ns);
  at::Tensor b64 = masses_or_uniform(b, nt);
  for (const auto& [name, masses] : {std::pair<const char*, const at::Tensor&>{"a", a64}, {"b", b64}}) {
    const double smallest = masses.min().item<double>();
    TORCH_CHECK_VALUE(std::isfinite(masses.sum().item<double>()) && smallest >= 0.0, kEmdName, ": `", name,
                      "` must hold finite, non-negative masses, got a smallest entry of ", smallest);
  }
  const double sum_a = a64.sum().item<double>();
  const double sum_b = b64.sum().item<double>();
  TORCH_CHECK_VALUE(sum_a > 0.0, kEmdName, ": the masses sum to 0; there is nothing to transport");
  TORCH_CHECK_VALUE(std::abs(sum_a - sum_b) <= 1e-6 * std::max(sum_a, sum_b), kEmdName,
                    ": `a` and `b` must have the same total mass (to 1e-6 relative), got ", sum_a, " and ", sum_b);
  b64 = b64 * (sum_a / sum_b);  // exactly balanced, as POT does
  const at::Tensor cost = M.to(at::kCPU, at::kDouble).contiguous();

  const ot::TransportSolution solution = ot::solve_transport(
      a64.const_data_ptr<double>(), b64.const_data_ptr<double>(), cost.const_data_ptr<double>(), ns, nt, max_iter);
  if (!solution.optimal) {
    TORCH_WARN(kEmdName, ": stopped after `max_iter` = ", max_iter,
               " pivots before reaching the optimum; the plan is feasible but not optimal (raise max_iter)");
  }

  at::Tensor plan = at::zeros({ns, nt}, cost.options());
  double* plan_data = plan.mutable_data_ptr<double>();
  const double* cost_data = cost.const_data_ptr<double>();
  double total = 0.0;
  for (size_t arc = 0; arc < solution.flows.size(); ++arc) {
    const int64_t cell = solution.rows[arc] * nt + solution.cols[arc];
    plan_data[cell] = solution.flows[arc];
    total += solution.flows[arc] * cost_data[cell];
  }
  return {plan.to(M.device(), M.scalar_type()), at::scalar_tensor(total, M.options().dtype(at::kDouble))};
}

TORCH_LIBRARY_IMPL(modgap, CPU, m) { m.impl("emd", &emd_kernel); }
TORCH_LIBRARY_IMPL(modgap, CUDA, m) { m.impl("emd", &emd_kernel); }

}  // namespace modgap
