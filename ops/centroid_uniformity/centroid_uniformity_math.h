// Math of centroid uniformity (L_CU, eq. 8/9 of "Closing the Modality Gap Aligns Group-Wise
// Semantics"), shared by the CPU and CUDA kernels.
//
// Definition implemented (the authors' reference code, lunif_loss(F.normalize(centroids), t)):
//   c_i = 1/M sum_m z_i^m                         (eq. 9)
//   u_i = c_i / max(||c_i||, 1e-12)  if normalize,  u_i = c_i otherwise
//   d_ij = ||u_i - u_j||^2
//   L = log( 1/P sum_{i<j} exp(-t d_ij) ),  P = N(N-1)/2 pairs
// Eq. 8 sums over i != j and divides by N, i.e. eq. 8 = L + log(N-1): same gradients, shifted value.
//
// No N x N buffer: pairs are visited in tiles; each tile is one GEMM (u_i . u_j) and an epilogue that
// turns it into logits x_ij = -t d_ij = -t (|u_i|^2 + |u_j|^2 - 2 u_i . u_j) and reduces them with a
// max-shifted (online) log-sum-exp, so nothing overflows for t up to 20 or for far-apart centroids.
//
// Backward with S = log sum_{i<j} exp(x_ij) (the forward's log_pair_sum), w_ij = exp(x_ij - S)
// (weights of the pairs, summing to 1) and r_i = sum_{j != i} w_ij:
//   dL/du_i = -2 t ( r_i u_i - sum_{j != i} w_ij u_j )
//   dL/dc_i = (dL/du_i - u_i (u_i . dL/du_i)) / ||c_i||   (through the normalisation)
//   dL/dz_i^m = dL/dc_i / M
#pragma once

#include <cmath>
#include <cstdint>

#include "ops/common/host_device.h"

namespace modgap {
namespace cu {

// F.normalize's eps: the norm is clamped from below before dividing.
constexpr double kNormEps = 1e-12;

// Logit of the pair (i, j): -t ||u_i - u_j||^2 from the GEMM entry. The distance is clamped at 0:
// rounding in |a|^2 + |b|^2 - 2 a.b can make it slightly negative for (near-)identical centroids.
// Written so that a NaN distance stays NaN (and reaches the finite-loss check).
template <typename acc_t>
MODGAP_HOST_DEVICE acc_t pair_logit(acc_t t, acc_t sq_norm_i, acc_t sq_norm_j, acc_t dot_ij) {
  acc_t dist = sq_norm_i + sq_norm_j - acc_t(2) * dot_ij;
  dist = dist < acc_t(0) ? acc_t(0) : dist;
  return -t * dist;
}

// exp in the accumulation type on host (std::exp has float and double overloads) and device.
template <typename acc_t>
MODGAP_HOST_DEVICE acc_t exp_acc(acc_t x) {
#if defined(__CUDA_ARCH__)
  return ::exp(x);
#else
  return std::exp(x);
#endif
}

// Running (max, sum) of a log-sum-exp: value = max + log(sum). Merging two partial states.
template <typename acc_t>
MODGAP_HOST_DEVICE void online_logsumexp_merge(acc_t& max_a, acc_t& sum_a, acc_t max_b, acc_t sum_b) {
  if (sum_b == acc_t(0)) {
    return;
  }
  if (sum_a == acc_t(0)) {
    max_a = max_b;
    sum_a = sum_b;
    return;
  }
  if (max_b > max_a) {
    sum_a = sum_a * exp_acc(max_a - max_b) + sum_b;
    max_a = max_b;
  } else {
    sum_a = sum_a + sum_b * exp_acc(max_b - max_a);
  }
}

// log of the number of pairs i < j, P = N(N-1)/2.
MODGAP_HOST_DEVICE double log_num_pairs(int64_t num_rows) {
  return ::log(static_cast<double>(num_rows)) + ::log(static_cast<double>(num_rows - 1)) - ::log(2.0);
}

}  // namespace cu
}  // namespace modgap
