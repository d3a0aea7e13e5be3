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
//     // overwrite the tile with the pair weights w_ij = exp(-t d_ij - log_pair_sum) for j > i, 0 otherwise.
//     static void pair_weights(at::Tensor& tile, const at::Tensor& sq_norms, int64_t row0, int64_t col0,
//                              double t, const at::Tensor& log_pair_sum);
//   };
//
// Only pairs i < j are visited (row block r against column blocks starting at r), so each pair costs
// one GEMM entry in the forward and the backward uses the tile twice (W u and W^T u). Extra memory is
// O(N D) plus one kTileRows x kTileCols tile: the N x N matrix is never formed.
#pragma once

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <tuple>
#include <vector>

#include "ops/centroid_uniformity/centroid_uniformity_math.h"

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
    out.u = c / out.norms.clamp_min(kNormEps);
  } else {
    out.u = c;
  }
  out.sq_norms = (out.u * out.u).sum(1);
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
  at::Tensor log_pair_sum = at::logsumexp(row_max + at::log(row_sum), {0});
  at::Tensor loss = (log_pair_sum - log_num_pairs(num_rows)).to(embeddings[0].scalar_type());
  return {loss, log_pair_sum};
}

template <class Epilogue>
std::vector<at::Tensor> centroid_uniformity_backward_tiled(const at::Tensor& grad_output, at::TensorList embeddings,
                                                           const at::Tensor& log_pair_sum, double t, bool normalize) {
  const Centroids centroids = compute_centroids(embeddings, normalize);
  const at::Tensor& u = centroids.u;
  const int64_t num_rows = u.size(0);
  const at::Tensor log_pair_sum_acc = log_pair_sum.to(u.scalar_type());
  at::Tensor weight_sum = at::zeros({num_rows}, u.options());  // r_i = sum_{j != i} w_ij
  at::Tensor weighted_centroids = at::zeros_like(u);           // sum_{j != i} w_ij u_j
  for (int64_t row0 = 0; row0 < num_rows; row0 += Epilogue::kTileRows) {
    const int64_t rows = std::min(Epilogue::kTileRows, num_rows - row0);
    const at::Tensor u_rows = u.narrow(0, row0, rows);
    for (int64_t col0 = row0; col0 < num_rows; col0 += Epilogue::kTileCols) {
      const int64_t cols = std::min(Epilogue::kTileCols, num_rows - col0);
      const at::Tensor u_cols = u.narrow(0, col0, cols);
      at::Tensor tile = at::mm(u_rows, u_cols.t());
      Epilogue::pair_weights(tile, centroids.sq_norms, row0, col0, t, log_pair_sum_acc);
      // The tile holds w_ij for i in rows, j in cols, j > i; W is symmetric, so the same tile also
      // serves the rows of the column block (W^T).
      weight_sum.narrow(0, row0, rows).add_(tile.sum(1));
      weight_sum.narrow(0, col0, cols).add_(tile.sum(0));
      weighted_centroids.narrow(0, row0, rows).addmm_(tile, u_cols);
      weighted_centroids.narrow(0, col0, cols).addmm_(tile.t(), u_rows);
    }
  }
  // dL/du_i = -2 t g (r_i u_i - sum_j w_ij u_j), g = upstream gradient (a device scalar: no sync).
  const at::Tensor scale = grad_output.to(u.scalar_type()) * (-2.0 * t);
  at::Tensor grad = (u * weight_sum.unsqueeze(1) - weighted_centroids) * scale;
  if (normalize) {
    // u = c / max(||c||, eps): dL/dc = (I - u u^T) dL/du / ||c|| where ||c|| >= eps, dL/du / eps below.
    const at::Tensor projected = grad - u * (u * grad).sum(1, /*keepdim=*/true);
    const at::Tensor clamped = centroids.norms < kNormEps;
    grad = at::where(clamped, grad, projected) / centroids.norms.clamp_min(kNormEps);
  }
  // c_i is the mean of the M modalities (eq. 9): each gets 1/M of the centroid's gradient.
  const int64_t num_modalities = static_cast<int64_t>(embeddings.size());
  const at::Tensor grad_embedding =
      (grad / static_cast<double>(num_modalities)).to(embeddings[0].scalar_type()).contiguous();
  std::vector<at::Tensor> grads;
  grads.reserve(num_modalities);
  grads.push_back(grad_embedding);
  for (int64_t m = 1; m < num_modalities; ++m) {
    grads.push_back(grad_embedding.clone());
  }
  return grads;
}

}  // namespace cu
}  // namespace modgap
