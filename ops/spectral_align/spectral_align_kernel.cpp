// spectral_align for CPU and CUDA tensors (one ATen implementation registered for both keys).
//
// The post-hoc spectral method of "Fill the Gap" (Role, Meyer, Amblard 2025; seed 003), in the form
// derived in ../shared/notes/measures.md §1.3. The paper embeds images and texts with the eigenvectors
// of the random-walk Laplacian L_rw = I - D^-1 A of the bipartite graph A = [[0, W], [W^T, 0]],
// W = x^ y^T (cosine similarities of the L2-normalised rows), skipping the trivial eigenvector. With
// D_1 = diag(W 1), D_2 = diag(W^T 1) and the SVD D_1^-1/2 W D_2^-1/2 = U S V^T, the eigenpairs of L_rw
// are 1 -+ s_l with eigenvectors D^-1/2 (u_l; +-v_l), so the k smallest non-trivial ones give
//   x_new = rows of D_1^-1/2 U[:, 1..k],   y_new = rows of D_2^-1/2 V[:, 1..k],
// each row L2-normalised (Dhillon's bipartite co-clustering embedding; scikit-learn's
// SpectralCoclustering computes the same). A third-party reproduction instead calls a symmetric
// eigensolver on the non-symmetric L_rw, which this avoids. The sign of each component is arbitrary
// (x_new and y_new flip together), as for any eigenvector.
//
// A graph needs non-negative weights and CLIP cosines can be negative; the paper's choice is unknown, so
// `nonnegative` picks one: "clamp" (max(W, 0)), "shift" (W - min(W) when min(W) < 0, as scikit-learn's
// make_nonnegative) or "none" (W as it is; degrees must stay positive). `graph_topk` > 0 keeps, as the
// reproduction does (50), only each row's and each column's top entries (their union) and zeroes the
// rest. Degrees are clamped at 1e-12, so an item left without any positive weight (isolated in the
// graph) gets a zero row: it has no position in the spectral embedding.
//
// The method is transductive and needs the whole N x M graph: this op forms W and its SVD (O(N M
// min(N, M)) work, N x M memory), which is what the method is; the paper fits it on about 5000 pairs.
#include <torch/library.h>

#include "ops/common/evaluation_utils.h"
#include "ops/common/input_checks.h"
#include "ops/spectral_align/spectral_align.h"

namespace modgap {

void check_spectral_align_arguments(const at::Tensor& x, const at::Tensor& y, int64_t k, c10::string_view nonnegative,
                                    int64_t graph_topk) {
  check_matrix(kSpectralAlignName, "x", x, /*min_rows=*/2);
  check_matrix(kSpectralAlignName, "y", y, /*min_rows=*/2);
  check_same_columns(kSpectralAlignName, "x", x, "y", y);
  // k + 1 singular pairs (the trivial one is dropped) of an N x M matrix.
  TORCH_CHECK_VALUE(k >= 1 && k + 1 <= x.sym_size(0) && k + 1 <= y.sym_size(0), kSpectralAlignName,
                    ": `k` (output dimension) must be in [1, min(N, M) - 1] = [1, ",
                    std::min(x.sym_size(0), y.sym_size(0)) - 1, "], got ", k);
  TORCH_CHECK_VALUE(nonnegative == "clamp" || nonnegative == "shift" || nonnegative == "none", kSpectralAlignName,
                    ": `nonnegative` must be \"clamp\", \"shift\" or \"none\", got \"", nonnegative, "\"");
  TORCH_CHECK_VALUE(graph_topk >= 0, kSpectralAlignName, ": `graph_topk` must be >= 0 (0 keeps the dense graph), got ",
                    graph_topk);
}

std::tuple<at::Tensor, at::Tensor> spectral_align_kernel(const at::Tensor& x, const at::Tensor& y, int64_t k,
                                                         c10::string_view nonnegative, int64_t graph_topk) {
  check_spectral_align_arguments(x, y, k, nonnegative, graph_topk);
  check_finite(kSpectralAlignName, "x", x);
  check_finite(kSpectralAlignName, "y", y);
  at::Tensor w = at::mm(eval::l2_normalize_rows(x), eval::l2_normalize_rows(y).t());
  if (nonnegative == "clamp") {
    w.clamp_min_(0.0);
  } else if (nonnegative == "shift") {
    const at::Tensor minimum = w.min();
    w.sub_(at::clamp_max(minimum, 0.0));
  } else {
    const double minimum = w.min().item<double>();
    TORCH_CHECK_VALUE(minimum >= 0.0, kSpectralAlignName,
                      ": nonnegative=\"none\" needs non-negative cosine similarities (graph weights), but the "
                      "smallest is ", minimum, "; use nonnegative=\"clamp\" or \"shift\"");
  }
  if (graph_topk > 0) {
    // Keep the union of every row's and every column's top `graph_topk` entries.
    at::Tensor keep = at::zeros_like(w, w.options().dtype(at::kBool));
    keep.scatter_(1, std::get<1>(w.topk(std::min(graph_topk, w.size(1)), 1)), true);
    keep.scatter_(0, std::get<1>(w.topk(std::min(graph_topk, w.size(0)), 0)), true);
    w.masked_fill_(keep.logical_not(), 0.0);
  }
  const at::Tensor row_degree = w.sum(1);
  const at::Tensor col_degree = w.sum(0);
  const at::Tensor inv_sqrt_row_degree = row_degree.clamp_min(1e-12).rsqrt();
  const at::Tensor inv_sqrt_col_degree = col_degree.clamp_min(1e-12).rsqrt();
  const at::Tensor normalised = w * inv_sqrt_row_degree.unsqueeze(1) * inv_sqrt_col_degree.unsqueeze(0);
  auto [u, s, vh] = at::linalg_svd(normalised, /*full_matrices=*/false);
  // An isolated item's singular-vector entries are rounding noise that 1/sqrt(1e-12) would blow up to
  // a random unit row: it gets an exact zero row instead.
  const at::Tensor x_new = (u.narrow(1, 1, k) * inv_sqrt_row_degree.unsqueeze(1)).masked_fill_(
      row_degree.le(0.0).unsqueeze(1), 0.0);
  const at::Tensor y_new = (vh.narrow(0, 1, k).t() * inv_sqrt_col_degree.unsqueeze(1))
                               .masked_fill_(col_degree.le(0.0).unsqueeze(1), 0.0);
  return {eval::l2_normalize_rows(x_new).to(x.scalar_type()).contiguous(),
          eval::l2_normalize_rows(y_new).to(y.scalar_type()).contiguous()};
}

TORCH_LIBRARY_IMPL(modgap, CPU, m) { m.impl("spectral_align", &spectral_align_kernel); }
TORCH_LIBRARY_IMPL(modgap, CUDA, m) { m.impl("spectral_align", &spectral_align_kernel); }

}  // namespace modgap
