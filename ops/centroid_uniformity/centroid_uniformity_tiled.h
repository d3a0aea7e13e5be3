// The tiled algorithm of centroid_uniformity, shared by the CPU and CUDA kernels. Host code only:
// it orders the work and calls ATen for the O(N D) steps and for the tile GEMMs (BLAS / cuBLAS);
// the O(N^2) epilogues are the backend's own kernels (centroid_uniformity_cpu.cpp,
// centroid_uniformity_cuda.cu), given as
//
//   struct Epilogue {
//     static constexpr int64_t kTileRows, kTileCols;
//     // tile[r, c] = u_{row0+r} . u_{col0+c}; fold -t d_ij of the pairs j > i into the running
//     // per-row log-sum-exp state (row_max, row_sum).
//     static void row_logsumexp(const at::Tensor& tile, const at::Tensor& sq_norms, int64_t row0,
//                               int64_t col0, double t, at::Tensor& row_max, at::Tensor& row_sum);
//     // overwrite the tile with the logits x_ij = -t d_ij for the pairs j > i and -inf elsewhere.
//     static void pair_logits(at::Tensor& tile, const at::Tensor& sq_norms, int64_t row0, int64_t col0,
//                             double t);
//   };
//
// Only pairs i < j are visited (row block r against column blocks starting at r). Without gradients
// each pair costs one GEMM entry; with gradients (forward_with_gradient) the tile is used twice more
// (W u and W^T u) in the same pass and the backward is a scale. Extra memory is O(N D) plus a few
// kTileRows x kTileCols tiles: the N x N matrix is never formed.
#pragma once

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <tuple>
#include <vector>

#include "ops/centroid_uniformity/centroid_uniformity.h"
#include "ops/centroid_uniformity/centroid_uniformity_math.h"
#include "ops/common/input_checks.h"

namespace modgap {
namespace cu {

// Centroids in the accumulation dtype (float32 for half/bfloat16/float32 inputs, float64 for float64).
struct Centroids {
  at::Tensor u;          // [N, D] centroids, L2-normalised when requested (eq. 9)
  at::Tensor sq_norms;   // [N] |u_i|^2
  at::Tensor norms;      // [N] ||c_i|| before normalisation (only when normalize)
};

inline at::ScalarType accumulation_dtype(at::ScalarType input) {
  return input == at::kDouble ? at::kDouble : at::kFloat;
}

inline Centroids compute_centroids(at::TensorList embeddings, bool normalize) {
  const auto acc_dtype = accumulation_dtype(embeddings[0].scalar_type());
  // c_i = 1/M sum_m z_i^m, accumulated in acc_dtype without converting each modality first.
  at::Tensor c = embeddings[0].to(acc_dtype, /*non_blocking=*/false, /*copy=*/true).contiguous();
  for (size_t m = 1; m < embeddings.size(); ++m) {
    c.add_(embeddings[m]);
  }
  c.div_(static_cast<double>(embeddings.size()));
  Centroids out;
  if (normalize) {
    out.norms = at::linalg_vector_norm(c, 2, {1}, /*keepdim=*/true);
    out.u = c.div_(out.norms.clamp_min(kNormEps));
  } else {
    out.u = c;
  }
  out.sq_norms = at::linalg_vector_norm(out.u, 2, {1}).square_();
  return out;
}

template <class Epilogue>
std::tuple<at::Tensor, at::Tensor> centroid_uniformity_forward_tiled(at::TensorList embeddings, double t,
                                                                     bool normalize) {
  const Centroids centroids = compute_centroids(embeddings, normalize);
  const at::Tensor& u = centroids.u;
  const int64_t num_rows = u.size(0);
  at::Tensor row_max = at::full({num_rows}, -std::numeric_limits<double>::infinity(), u.options());
  at::Tensor row_sum = at::zeros({num_rows}, u.options());
  for (int64_t row0 = 0; row0 < num_rows; row0 += Epilogue::kTileRows) {
    const int64_t rows = std::min(Epilogue::kTileRows, num_rows - row0);
    const at::Tensor u_rows = u.narrow(0, row0, rows);
    for (int64_t col0 = row0; col0 < num_rows; col0 += Epilogue::kTileCols) {
      const int64_t cols = std::min(Epilogue::kTileCols, num_rows - col0);
      const at::Tensor tile = at::mm(u_rows, u.narrow(0, col0, cols).t());
      Epilogue::row_logsumexp(tile, centroids.sq_norms, row0, col0, t, row_max, row_sum);
    }
  }
  // log sum_{i<j} exp(-t d_ij) = logsumexp_i (row_max_i + log row_sum_i); the last row has no pair
  // (row_sum = 0, a -inf term that logsumexp ignores).
  const at::Tensor log_pair_sum = at::logsumexp(row_max + at::log(row_sum), {0});
  at::Tensor loss = (log_pair_sum - log_num_pairs(num_rows)).to(embeddings[0].scalar_type());
  return {loss, at::empty({0}, u.options())};
}

// exp(old - new) for the running maxima, with exp(-inf - (-inf)) taken as 0 (the state was empty).
inline at::Tensor rescale_factor(const at::Tensor& old_max, const at::Tensor& new_max) {
  return at::where(at::isneginf(old_max), at::zeros_like(old_max), at::exp(old_max - new_max));
}

// A shift that is never -inf, so exp(x - shift) of a masked (-inf) entry is 0, not NaN.
inline at::Tensor safe_shift(const at::Tensor& running_max) {
  return at::where(at::isneginf(running_max), at::zeros_like(running_max), running_max);
}

// Forward that also returns dL/dc (the gradient of the loss with respect to the raw centroids c_i
// for an upstream gradient of 1), computed in the same pass over the pairs. Each tile's logits are
// turned into unnormalised weights twice, once shifted by the running maximum of its rows and once by
// that of its columns (FlashAttention's online softmax, on both sides of the symmetric pair set), and
// accumulated into r_i = sum_j w_ij and a_i = sum_j w_ij u_j; at the end every index is rescaled
// from its running maximum to log_pair_sum. This costs 1.5 N^2 D multiply-adds (one tile GEMM, two
// accumulation GEMMs on half the pairs) instead of the 2 N^2 D of a forward plus a recomputing backward.
template <class Epilogue>
std::tuple<at::Tensor, at::Tensor> centroid_uniformity_forward_with_gradient_tiled(at::TensorList embeddings,
                                                                                   double t, bool normalize) {
  const Centroids centroids = compute_centroids(embeddings, normalize);
  const at::Tensor& u = centroids.u;
  const int64_t num_rows = u.size(0);
  at::Tensor running_max = at::full({num_rows}, -std::numeric_limits<double>::infinity(), u.options());
  at::Tensor pair_sum = at::zeros({num_rows}, u.options());      // sum_{j>i} exp(x_ij - m_i): each pair once
  at::Tensor weight_sum = at::zeros({num_rows}, u.options());    // sum_{j!=i} exp(x_ij - m_i)
  at::Tensor weighted = at::zeros_like(u);                       // sum_{j!=i} exp(x_ij - m_i) u_j
  for (int64_t row0 = 0; row0 < num_rows; row0 += Epilogue::kTileRows) {
    const int64_t rows = std::min(Epilogue::kTileRows, num_rows - row0);
    const at::Tensor u_rows = u.narrow(0, row0, rows);
    for (int64_t col0 = row0; col0 < num_rows; col0 += Epilogue::kTileCols) {
      const int64_t cols = std::min(Epilogue::kTileCols, num_rows - col0);
      const at::Tensor u_cols = u.narrow(0, col0, cols);
      at::Tensor logits = at::mm(u_rows, u_cols.t());
      Epilogue::pair_logits(logits, centroids.sq_norms, row0, col0, t);  // -t d_ij for j > i, -inf otherwise
      // New running maxima. The first column block starts at row0 (kTileCols >= kTileRows), so the
      // tile's rows are then a prefix of its columns and share their state; later blocks are disjoint.
      const bool rows_inside_cols = col0 == row0;
      at::Tensor max_cols = at::maximum(running_max.narrow(0, col0, cols), std::get<0>(logits.max(0)));
      at::Tensor max_rows = at::maximum(running_max.narrow(0, row0, rows), std::get<0>(logits.max(1)));
      if (rows_inside_cols) {
        max_cols.narrow(0, 0, rows).copy_(at::maximum(max_cols.narrow(0, 0, rows), max_rows));
        max_rows = max_cols.narrow(0, 0, rows);
      }
      const auto rescale = [&](int64_t start, int64_t count, const at::Tensor& new_max) {
        const at::Tensor factor = rescale_factor(running_max.narrow(0, start, count), new_max);
        pair_sum.narrow(0, start, count).mul_(factor);
        weight_sum.narrow(0, start, count).mul_(factor);
        weighted.narrow(0, start, count).mul_(factor.unsqueeze(1));
        running_max.narrow(0, start, count).copy_(new_max);
      };
      rescale(col0, cols, max_cols);
      if (!rows_inside_cols) {
        rescale(row0, rows, max_rows);
      }
      // Row side: pairs (i, j>i) seen from i. Column side: the same pairs seen from j.
      const at::Tensor row_weights = at::sub(logits, safe_shift(max_rows).unsqueeze(1)).exp_();
      const at::Tensor row_totals = row_weights.sum(1);
      pair_sum.narrow(0, row0, rows).add_(row_totals);
      weight_sum.narrow(0, row0, rows).add_(row_totals);
      weighted.narrow(0, row0, rows).addmm_(row_weights, u_cols);
      const at::Tensor col_weights = logits.sub_(safe_shift(max_cols).unsqueeze(0)).exp_();  // logits no longer needed
      weight_sum.narrow(0, col0, cols).add_(col_weights.sum(0));
      weighted.narrow(0, col0, cols).addmm_(col_weights.t(), u_rows);
    }
  }
  at::Tensor log_pair_sum = at::logsumexp(running_max + at::log(pair_sum), {0});
  at::Tensor loss = (log_pair_sum - log_num_pairs(num_rows)).to(embeddings[0].scalar_type());

  // w_ij = exp(x_ij - log_pair_sum) = exp(x_ij - m_i) * exp(m_i - log_pair_sum).
  const at::Tensor to_pair_weights = rescale_factor(running_max, log_pair_sum.expand_as(running_max));
  weight_sum.mul_(to_pair_weights);
  // dL/du_i = -2 t (r_i u_i - sum_j w_ij u_j), built in place in `weighted` (no N x D temporaries).
  at::Tensor grad = weighted;
  grad.mul_(to_pair_weights.unsqueeze(1)).mul_(-1.0).addcmul_(u, weight_sum.unsqueeze(1)).mul_(-2.0 * t);
  if (normalize) {
    // u = c / max(||c||, eps): dL/dc = (I - u u^T) dL/du / ||c|| where ||c|| >= eps, dL/du / eps below.
    at::Tensor dot = at::bmm(u.unsqueeze(1), grad.unsqueeze(2)).view({num_rows, 1});
    dot.masked_fill_(centroids.norms < kNormEps, 0.0);
    grad.addcmul_(u, dot, -1.0).div_(centroids.norms.clamp_min(kNormEps));
  }
  return {loss, grad};
}

// The backend-independent body of the forward kernels: checks, then the tiled pass with or without
// dL/dc, then the finite-loss check (which names a modality holding NaN/Inf).
template <class Epilogue>
std::tuple<at::Tensor, at::Tensor> centroid_uniformity_forward_checked(at::TensorList embeddings, double t,
                                                                       bool normalize, bool compute_grad) {
  check_centroid_uniformity_arguments(kCentroidUniformityName, embeddings, t);
  auto result = compute_grad ? centroid_uniformity_forward_with_gradient_tiled<Epilogue>(embeddings, t, normalize)
                             : centroid_uniformity_forward_tiled<Epilogue>(embeddings, t, normalize);
  check_loss_is_finite(kCentroidUniformityName, std::get<0>(result), embeddings);
  return result;
}

// Gradients of the M modalities from dL/dc: c_i is their mean (eq. 9), so each gets g * dL/dc / M.
inline std::vector<at::Tensor> centroid_gradient_to_embeddings(const at::Tensor& grad_output,
                                                               const at::Tensor& centroid_grad, int64_t num_modalities,
                                                               at::ScalarType dtype) {
  const at::Tensor scale = grad_output.to(centroid_grad.scalar_type()) / static_cast<double>(num_modalities);
  const at::Tensor grad = (centroid_grad * scale).to(dtype).contiguous();
  std::vector<at::Tensor> grads;
  grads.reserve(num_modalities);
  grads.push_back(grad);
  for (int64_t m = 1; m < num_modalities; ++m) {
    grads.push_back(grad.clone());
  }
  return grads;
}

}  // namespace cu
}  // namespace modgap
