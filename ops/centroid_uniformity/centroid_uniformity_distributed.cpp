// The distributed form of centroid_uniformity (data-parallel training with the batch split over ranks,
// e.g. OpenCLIP's --local-loss --gather-with-grad): each rank holds n local rows of the N = sum_r n_r
// global rows and computes only its n x N share of the pairs; modgap.distributed combines the ranks'
// max-shifted partial sums with two all_reduces (python/modgap/distributed.py).
//
// With S = log sum_{i<j} exp(x_ij), x_ij = -t ||u_i - u_j||^2 (centroid_uniformity_math.h):
//   sum_{i<j} exp(x_ij) = 1/2 sum_i sum_{j != i} exp(x_ij),
// so every rank reduces its rows i against all columns j != i into (m_i, s_i) with
// sum_{j != i} exp(x_ij) = exp(m_i) s_i, and optionally a_i = sum_{j != i} exp(x_ij - m_i) u_j.
// The gradient of a local row only involves pairs that contain it, all of which the rank has seen:
//   dL/du_i = -2 t ( s_i e^{m_i - S} u_i - a_i e^{m_i - S} ),
// then through the normalisation and 1/M to each modality, as the single-process op. No gradient has to
// flow through the gathered centroids, and each rank's rows get the exact gradient of the global loss.
//
// One ATen implementation for CPU and CUDA (tile GEMMs + elementwise epilogue, tiles of
// kRows x kCols); extra memory O(n D + N D) plus one tile, never n x N.
#include <torch/library.h>

#include <cmath>
#include <limits>

#include "ops/centroid_uniformity/centroid_uniformity.h"
#include "ops/centroid_uniformity/centroid_uniformity_math.h"
#include "ops/centroid_uniformity/centroid_uniformity_tiled.h"
#include "ops/common/input_checks.h"
#include "ops/common/tensor_utils.h"

namespace modgap {

namespace {

constexpr const char* kPartialName = "modgap::_centroid_uniformity_partial";
constexpr const char* kPartialBackwardName = "modgap::_centroid_uniformity_partial_backward";
constexpr const char* kCentroidsName = "modgap::_centroids";

int64_t tile_cols(const at::Device& device) { return device.is_cuda() ? 8192 : 2048; }
int64_t tile_rows(const at::Device& device) { return device.is_cuda() ? 2048 : 512; }

void check_all_centroids(const char* op, const at::Tensor& local_like, const at::Tensor& all_centroids,
                         int64_t row_offset, int64_t local_rows) {
  TORCH_CHECK_VALUE(all_centroids.dim() == 2, op, ": `all_centroids` must be [N, D], got ", all_centroids.dim(),
                    " dimensions");
  TORCH_CHECK_VALUE(all_centroids.sym_size(1) == local_like.sym_size(1), op, ": `all_centroids` has ",
                    all_centroids.sym_size(1), " columns but the embeddings have ", local_like.sym_size(1));
  TORCH_CHECK_TYPE(all_centroids.scalar_type() == cu::accumulation_dtype(local_like.scalar_type()), op,
                   ": `all_centroids` must have the accumulation dtype ",
                   cu::accumulation_dtype(local_like.scalar_type()), " (as returned by _centroids), got ",
                   all_centroids.scalar_type());
  TORCH_CHECK_VALUE(all_centroids.device() == local_like.device(), op, ": `all_centroids` is on ",
                    all_centroids.device(), " but the embeddings are on ", local_like.device());
  TORCH_CHECK_VALUE(row_offset >= 0 && all_centroids.sym_size(0) >= row_offset + local_rows, op,
                    ": the local rows [", row_offset, ", ", row_offset + local_rows, ") must lie inside the ",
                    all_centroids.sym_size(0), " gathered rows (`row_offset` = ", row_offset, ")");
  TORCH_CHECK_VALUE(all_centroids.sym_size(0) >= 2, op, ": centroid uniformity needs at least 2 rows in total, got ",
                    all_centroids.sym_size(0));
}

}  // namespace

at::Tensor centroids_kernel(at::TensorList embeddings, bool normalize) {
  check_embeddings_metadata(kCentroidsName, embeddings, /*min_rows=*/0);
  return cu::compute_centroids(embeddings, normalize).u;
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> centroid_uniformity_partial_kernel(at::TensorList local_embeddings,
                                                                                  const at::Tensor& all_centroids,
                                                                                  int64_t row_offset, double t,
                                                                                  bool normalize, bool compute_grad) {
  check_embeddings_metadata(kPartialName, local_embeddings, /*min_rows=*/0);
  check_temperature(kPartialName, t);
  const int64_t n = local_embeddings[0].size(0);
  check_all_centroids(kPartialName, local_embeddings[0], all_centroids, row_offset, n);
  const at::Tensor u = cu::compute_centroids(local_embeddings, normalize).u;
  const at::Tensor all = all_centroids.contiguous();
  const int64_t total = all.size(0);
  const at::Tensor sq_local = (u * u).sum(1);
  const at::Tensor sq_all = (all * all).sum(1);
  const double neg_inf = -std::numeric_limits<double>::infinity();
  at::Tensor row_max = at::full({n}, neg_inf, u.options());
  at::Tensor row_sum = at::zeros({n}, u.options());
  at::Tensor weighted = compute_grad ? at::zeros_like(u) : at::empty({0}, u.options());
  const int64_t rows_per_tile = tile_rows(u.device());
  const int64_t cols_per_tile = tile_cols(u.device());
  for (int64_t r0 = 0; r0 < n; r0 += rows_per_tile) {
    const int64_t rows = std::min(rows_per_tile, n - r0);
    const at::Tensor u_rows = u.narrow(0, r0, rows);
    const at::Tensor global_rows = at::arange(row_offset + r0, row_offset + r0 + rows, u.options().dtype(at::kLong));
    at::Tensor m = row_max.narrow(0, r0, rows);
    at::Tensor s = row_sum.narrow(0, r0, rows);
    for (int64_t c0 = 0; c0 < total; c0 += cols_per_tile) {
      const int64_t cols = std::min(cols_per_tile, total - c0);
      const at::Tensor u_cols = all.narrow(0, c0, cols);
      // x_ij = -t max(|u_i|^2 + |u_j|^2 - 2 u_i.u_j, 0) (cu::pair_logit), j = i masked out.
      at::Tensor logits = at::addmm(sq_local.narrow(0, r0, rows).unsqueeze(1) + sq_all.narrow(0, c0, cols).unsqueeze(0),
                                    u_rows, u_cols.t(), 1.0, -2.0)
                              .clamp_min_(0.0)
                              .mul_(-t);
      const at::Tensor diagonal = global_rows.unsqueeze(1) == at::arange(c0, c0 + cols, global_rows.options()).unsqueeze(0);
      logits.masked_fill_(diagonal, neg_inf);
      const at::Tensor new_max = at::maximum(m, std::get<0>(logits.max(1)));
      const at::Tensor factor = cu::rescale_factor(m, new_max);
      const at::Tensor weights = logits.sub_(cu::safe_shift(new_max).unsqueeze(1)).exp_();
      s.mul_(factor).add_(weights.sum(1));
      if (compute_grad) {
        at::Tensor a = weighted.narrow(0, r0, rows);
        a.mul_(factor.unsqueeze(1)).addmm_(weights, u_cols);
      }
      m.copy_(new_max);
    }
  }
  return {row_max, row_sum, weighted};
}

std::vector<at::Tensor> centroid_uniformity_partial_backward_kernel(
    const at::Tensor& grad_output, at::TensorList local_embeddings, const at::Tensor& row_max, const at::Tensor& row_sum,
    const at::Tensor& weighted, const at::Tensor& log_pair_sum, double t, bool normalize, double scale) {
  check_embeddings_metadata(kPartialBackwardName, local_embeddings, /*min_rows=*/0);
  check_grad_output(kPartialBackwardName, grad_output, local_embeddings[0]);
  const int64_t n = local_embeddings[0].size(0);
  TORCH_CHECK_VALUE(row_max.numel() == n && row_sum.numel() == n && weighted.dim() == 2 && weighted.size(0) == n,
                    kPartialBackwardName, ": the saved partials do not match the ", n, " local rows");
  const cu::Centroids centroids = cu::compute_centroids(local_embeddings, normalize);
  const at::Tensor& u = centroids.u;
  // w_ij = exp(x_ij - S) = exp(x_ij - m_i) exp(m_i - S).
  const at::Tensor to_pair_weights = cu::rescale_factor(row_max, log_pair_sum.to(u.scalar_type()).expand_as(row_max));
  // dL/du_i = -2 t (r_i u_i - sum_j w_ij u_j), assembled as in the single-process op.
  at::Tensor grad = cu::assemble_centroid_gradient(centroids, weighted * to_pair_weights.unsqueeze(1),
                                                   row_sum * to_pair_weights,
                                                   at::scalar_tensor(-2.0 * t, u.options()), normalize);
  grad.mul_(scale);
  return cu::centroid_gradient_to_embeddings(grad_output, grad, static_cast<int64_t>(local_embeddings.size()),
                                             local_embeddings[0].scalar_type());
}

namespace {

at::Tensor centroids_meta(at::TensorList embeddings, bool normalize) {
  check_embeddings_metadata(kCentroidsName, embeddings, /*min_rows=*/0);
  return at::empty_symint({embeddings[0].sym_size(0), embeddings[0].sym_size(1)},
                          embeddings[0].options().dtype(cu::accumulation_dtype(embeddings[0].scalar_type())));
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> partial_meta(at::TensorList local_embeddings,
                                                            const at::Tensor& all_centroids, int64_t row_offset,
                                                            double t, bool normalize, bool compute_grad) {
  check_embeddings_metadata(kPartialName, local_embeddings, /*min_rows=*/0);
  check_temperature(kPartialName, t);
  const auto options = all_centroids.options();
  const auto n = local_embeddings[0].sym_size(0);
  return {at::empty_symint({n}, options), at::empty_symint({n}, options),
          compute_grad ? at::empty_symint({n, local_embeddings[0].sym_size(1)}, options) : at::empty({0}, options)};
}

std::vector<at::Tensor> partial_backward_meta(const at::Tensor& grad_output, at::TensorList local_embeddings,
                                              const at::Tensor& row_max, const at::Tensor& row_sum,
                                              const at::Tensor& weighted, const at::Tensor& log_pair_sum, double t,
                                              bool normalize, double scale) {
  return empty_gradients_like(local_embeddings);
}

}  // namespace

TORCH_LIBRARY_IMPL(modgap, CPU, m) {
  m.impl("_centroids", &centroids_kernel);
  m.impl("_centroid_uniformity_partial", &centroid_uniformity_partial_kernel);
  m.impl("_centroid_uniformity_partial_backward", &centroid_uniformity_partial_backward_kernel);
}
TORCH_LIBRARY_IMPL(modgap, CUDA, m) {
  m.impl("_centroids", &centroids_kernel);
  m.impl("_centroid_uniformity_partial", &centroid_uniformity_partial_kernel);
  m.impl("_centroid_uniformity_partial_backward", &centroid_uniformity_partial_backward_kernel);
}
TORCH_LIBRARY_IMPL(modgap, Meta, m) {
  m.impl("_centroids", &centroids_meta);
  m.impl("_centroid_uniformity_partial", &partial_meta);
  m.impl("_centroid_uniformity_partial_backward", &partial_backward_meta);
}

}  // namespace modgap
