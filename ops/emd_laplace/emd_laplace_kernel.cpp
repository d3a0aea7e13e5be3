// emd_laplace for CPU and CUDA tensors (one ATen implementation registered for both keys; the work runs
// in float64 on the CPU, the outputs return on the inputs' device in their dtype).
//
// POT's EMDLaplaceTransport(reg_type, reg_lap = eta, reg_src = alpha, similarity="knn",
// similarity_param = k).fit(Xs, Xt) followed by transform(Xs) (ot/da.py, emd_laplace; measures.md §1.4):
//   M_ij = |xs_i - xt_j|^2, uniform masses a = 1/ns, b = 1/nt;
//   S_s, S_t: kNN connectivity graphs (k neighbours, self excluded), symmetrised (S + S^T) / 2;
//   L = diag(column sums of S) - S;
//   Omega(G) = alpha tr(Xt^T G^T L_s G Xt) + (1 - alpha) tr(Xs^T G L_t G^T Xs);
//   G* = argmin_{G in U(a, b)} <G, M> + eta Omega(G)    ("disp": M also gets the two constant terms
//        -eta alpha / ns L2_s Xs Xt^T and -eta (1 - alpha) / nt Xs Xt^T L2_t, with L2 = L + L^T);
// solved as POT's ot.optim.cg: start at a b^T; each iteration linearises the objective
// (M + eta grad Omega(G)), solves that linear programme exactly (network simplex), and steps towards its
// solution with POT's Armijo line search (scipy's scalar_search_armijo: first trial 0.99, c1 = 1e-4,
// quadratic then cubic interpolation, the step clipped to [0, 1]); it stops after max_iter iterations
// or when the objective changes by less than tol (relative) or inner_tol (absolute), as POT does.
// The transported sources are the barycentric map G X_t / (G 1) (rows of zero mass map to 0).
//
// Sizes: the graph products are O(n^2 D) per iteration, the exact inner solve as emd's; one fit on POT's
// suggested 5000 pairs is a minutes-long CPU job, like POT's own.
#include <torch/library.h>

#include <cmath>
#include <optional>

#include "ops/common/evaluation_utils.h"
#include "ops/common/input_checks.h"
#include "ops/emd/network_simplex.h"
#include "ops/emd_laplace/emd_laplace.h"

namespace modgap {

namespace {

at::Tensor squared_distances(const at::Tensor& x, const at::Tensor& y) {
  return eval::squared_distances(x, y, y.square().sum(1));
}

// Laplacian of the symmetrised kNN connectivity graph (sklearn kneighbors_graph, self excluded).
at::Tensor knn_graph_laplacian(const at::Tensor& x, int64_t k) {
  at::Tensor d = squared_distances(x, x);
  d.fill_diagonal_(std::numeric_limits<double>::infinity());
  const at::Tensor neighbours = std::get<1>(d.topk(k, /*dim=*/1, /*largest=*/false, /*sorted=*/true));
  at::Tensor graph = at::zeros_like(d).scatter_(1, neighbours, 1.0);
  graph = (graph + graph.t()) / 2.0;
  return at::diag(graph.sum(0)) - graph;
}

// scipy.optimize's scalar_search_armijo (as POT's line_search_armijo calls it, with phi clipping the step
// to [0, 1]): the step, and phi at it; no step satisfying the Armijo condition gives nullopt.
template <class Phi>
std::optional<std::pair<double, double>> scalar_search_armijo(const Phi& phi, double phi0, double derphi0,
                                                               double c1, double alpha0, double amin) {
  double phi_a0 = phi(alpha0);
  if (phi_a0 <= phi0 + c1 * alpha0 * derphi0) {
    return std::make_pair(alpha0, phi_a0);
  }
  double alpha1 = -derphi0 * alpha0 * alpha0 / 2.0 / (phi_a0 - phi0 - derphi0 * alpha0);
  double phi_a1 = phi(alpha1);
  if (phi_a1 <= phi0 + c1 * alpha1 * derphi0) {
    return std::make_pair(alpha1, phi_a1);
  }
  while (alpha1 > amin) {
    const double factor = alpha0 * alpha0 * alpha1 * alpha1 * (alpha1 - alpha0);
    double a = alpha0 * alpha0 * (phi_a1 - phi0 - derphi0 * alpha1) - alpha1 * alpha1 * (phi_a0 - phi0 - derphi0 * alpha0);
    a = a / factor;
    double b = -alpha0 * alpha0 * alpha0 * (phi_a1 - phi0 - derphi0 * alpha1) +
               alpha1 * alpha1 * alpha1 * (phi_a0 - phi0 - derphi0 * alpha0);
    b = b / factor;
    double alpha2 = (-b + std::sqrt(std::abs(b * b - 3 * a * derphi0))) / (3.0 * a);
    const double phi_a2 = phi(alpha2);
    if (phi_a2 <= phi0 + c1 * alpha2 * derphi0) {
      return std::make_pair(alpha2, phi_a2);
    }
    if ((alpha1 - alpha2) > alpha1 / 2.0 || (1 - alpha2 / alpha1) < 0.96) {
      alpha2 = alpha1 / 2.0;
    }
    alpha0 = alpha1;
    alpha1 = alpha2;
    phi_a0 = phi_a1;
    phi_a1 = phi_a2;
  }
  return std::nullopt;
}

}  // namespace

void check_emd_laplace_arguments(const at::Tensor& xs, const at::Tensor& xt, double reg_lap, double reg_src, int64_t k,
                                 c10::string_view reg_type, int64_t max_iter, double tol, int64_t max_inner_iter,
                                 double inner_tol) {
  check_matrix(kEmdLaplaceName, "xs", xs, /*min_rows=*/2);
  check_matrix(kEmdLaplaceName, "xt", xt, /*min_rows=*/2);
  check_same_columns(kEmdLaplaceName, "xs", xs, "xt", xt);
  TORCH_CHECK_VALUE(std::isfinite(reg_lap) && reg_lap >= 0.0, kEmdLaplaceName,
                    ": `reg_lap` (the Laplacian regularisation eta) must be finite and >= 0, got ", reg_lap);
  TORCH_CHECK_VALUE(reg_src >= 0.0 && reg_src <= 1.0, kEmdLaplaceName,
                    ": `reg_src` (alpha, the weight of the source graph) must be in [0, 1], got ", reg_src);
  TORCH_CHECK_VALUE(k >= 1 && xs.sym_size(0) > k && xt.sym_size(0) > k, kEmdLaplaceName,
                    ": `k` (graph neighbours) must be >= 1 and below both sample counts (", xs.sym_size(0), ", ",
                    xt.sym_size(0), "), got ", k);
  TORCH_CHECK_VALUE(reg_type == "pos" || reg_type == "disp", kEmdLaplaceName,
                    ": `reg_type` must be \"pos\" or \"disp\" (POT's names), got \"", reg_type, "\"");
  TORCH_CHECK_VALUE(max_iter >= 1, kEmdLaplaceName, ": `max_iter` (conditional-gradient steps) must be >= 1, got ",
                    max_iter);
  TORCH_CHECK_VALUE(max_inner_iter >= 1, kEmdLaplaceName, ": `max_inner_iter` (pivots per exact solve) must be >= 1, got ",
                    max_inner_iter);
  TORCH_CHECK_VALUE(std::isfinite(tol) && tol >= 0.0 && std::isfinite(inner_tol) && inner_tol >= 0.0, kEmdLaplaceName,
                    ": `tol` and `inner_tol` must be finite and >= 0, got ", tol, " and ", inner_tol);
}

std::tuple<at::Tensor, at::Tensor> emd_laplace_kernel(const at::Tensor& xs, const at::Tensor& xt, double reg_lap,
                                                      double reg_src, int64_t k, c10::string_view reg_type,
                                                      int64_t max_iter, double tol, int64_t max_inner_iter,
                                                      double inner_tol) {
  check_emd_laplace_arguments(xs, xt, reg_lap, reg_src, k, reg_type, max_iter, tol, max_inner_iter, inner_tol);
  check_finite(kEmdLaplaceName, "xs", xs);
  check_finite(kEmdLaplaceName, "xt", xt);
  const at::Tensor source = xs.to(at::kCPU, at::kDouble).contiguous();
  const at::Tensor target = xt.to(at::kCPU, at::kDouble).contiguous();
  const int64_t ns = source.size(0);
  const int64_t nt = target.size(0);
  const double eta = reg_lap;
  const double alpha = reg_src;
  const auto options = source.options();
  const at::Tensor a = at::full({ns}, 1.0 / static_cast<double>(ns), options);
  const at::Tensor b = at::full({nt}, 1.0 / static_cast<double>(nt), options);

  at::Tensor M = squared_distances(source, target);
  const at::Tensor laplacian_s = knn_graph_laplacian(source, k);
  const at::Tensor laplacian_t = knn_graph_laplacian(target, k);
  const at::Tensor laplacian_s2 = laplacian_s + laplacian_s.t();
  const at::Tensor laplacian_t2 = laplacian_t + laplacian_t.t();
  if (reg_type == "disp") {
    M = M - (eta * alpha / static_cast<double>(ns)) * at::mm(laplacian_s2, at::mm(source, target.t())) -
        (eta * (1.0 - alpha) / static_cast<double>(nt)) * at::mm(at::mm(source, target.t()), laplacian_t2);
  }
  M = M.contiguous();

  // Omega(G) and its gradient, with the D-wide products first (O(n^2 D), never an n x n x n product).
  const auto omega = [&](const at::Tensor& G) {
    const at::Tensor moved_t = at::mm(G, target);      // G Xt      [ns, D]
    const at::Tensor moved_s = at::mm(G.t(), source);  // G^T Xs    [nt, D]
    return alpha * (moved_t * at::mm(laplacian_s, moved_t)).sum().item<double>() +
           (1.0 - alpha) * (moved_s * at::mm(laplacian_t, moved_s)).sum().item<double>();
  };
  const auto omega_gradient = [&](const at::Tensor& G) {
    // alpha L2_s G Xt Xt^T + (1 - alpha) Xs Xs^T G L2_t
    return alpha * at::mm(at::mm(laplacian_s2, at::mm(G, target)), target.t()) +
           (1.0 - alpha) * at::mm(source, at::mm(at::mm(source.t(), G), laplacian_t2));
  };
  const auto objective = [&](const at::Tensor& G) { return (M * G).sum().item<double>() + eta * omega(G); };

  at::Tensor G = at::outer(a, b);
  double cost_G = objective(G);
  for (int64_t iteration = 1;; ++iteration) {
    const double old_cost = cost_G;
    const at::Tensor linearised = (M + eta * omega_gradient(G)).contiguous();
    const ot::TransportSolution vertex = ot::solve_transport(a.const_data_ptr<double>(), b.const_data_ptr<double>(),
                                                             linearised.const_data_ptr<double>(), ns, nt, max_inner_iter);
    TORCH_CHECK(vertex.optimal, kEmdLaplaceName, ": an exact transport step stopped after `max_inner_iter` = ",
                max_inner_iter, " pivots before its optimum; raise max_inner_iter");
    at::Tensor direction = -G;
    double* direction_data = direction.mutable_data_ptr<double>();
    for (size_t arc = 0; arc < vertex.flows.size(); ++arc) {
      direction_data[vertex.rows[arc] * nt + vertex.cols[arc]] += vertex.flows[arc];
    }
    const double derphi0 = (direction * linearised).sum().item<double>();
    const auto phi = [&](double step) {
      step = std::min(std::max(step, 0.0), 1.0);
      return objective(G + step * direction);
    };
    const auto step = scalar_search_armijo(phi, cost_G, derphi0, /*c1=*/1e-4, /*alpha0=*/0.99, /*amin=*/0.0);
    if (step.has_value()) {
      const double clipped = std::min(std::max(step->first, 0.0), 1.0);
      G = G + clipped * direction;
      cost_G = step->second;
    }
    const double absolute_change = std::abs(cost_G - old_cost);
    const double relative_change = cost_G != 0.0 ? absolute_change / std::abs(cost_G) : std::nan("");
    if (iteration >= max_iter || relative_change < tol || absolute_change < inner_tol) {
      break;
    }
  }

  // Barycentric map of the sources; a row without mass maps to 0 (POT's nan_to_num).
  const at::Tensor row_mass = G.sum(1, /*keepdim=*/true);
  const at::Tensor transported = at::where(row_mass > 0, at::mm(G, target) / row_mass, at::zeros({}, options));
  return {G.to(xs.device(), xs.scalar_type()), transported.to(xs.device(), xs.scalar_type()).contiguous()};
}

TORCH_LIBRARY_IMPL(modgap, CPU, m) { m.impl("emd_laplace", &emd_laplace_kernel); }
TORCH_LIBRARY_IMPL(modgap, CUDA, m) { m.impl("emd_laplace", &emd_laplace_kernel); }

}  // namespace modgap
