// Math of L_ATP (eq. 7 of "Closing the Modality Gap Aligns Group-Wise Semantics"), shared by the CPU
// and CUDA kernels:
//
//   L_ATP = 1/(M-1) * sum_{m != a} 1/N * sum_i ||z_i^m - z_i^a||^2
//
// For M = 2 this is the reference code's lalign_loss(x, y, alpha=2) = (x - y).norm(dim=1).pow(2).mean().
// Gradients (g = dL upstream, s = 1/((M-1) N)):
//   dL/dz_i^m = 2 g s (z_i^m - z_i^a)                   for m != a
//   dL/dz_i^a = 2 g s sum_{m != a} (z_i^a - z_i^m)
#pragma once

#include <cstdint>

#include "ops/common/host_device.h"

namespace modgap {
namespace atp {

// 1 / ((M-1) N): eq. 7 averages over the N rows and the M-1 non-anchor modalities.
template <typename acc_t>
MODGAP_HOST_DEVICE acc_t loss_scale(int64_t num_modalities, int64_t num_rows) {
  return acc_t(1) / (acc_t(num_modalities - 1) * acc_t(num_rows));
}

// Contribution of one coordinate of one true pair: (z^m - z^a)^2.
template <typename acc_t>
MODGAP_HOST_DEVICE acc_t squared_difference(acc_t z_m, acc_t z_a) {
  const acc_t diff = z_m - z_a;
  return diff * diff;
}

// Gradient of one coordinate of a non-anchor modality: 2 g s (z^m - z^a).
template <typename acc_t>
MODGAP_HOST_DEVICE acc_t non_anchor_gradient(acc_t z_m, acc_t z_a, acc_t grad_times_scale) {
  return acc_t(2) * grad_times_scale * (z_m - z_a);
}

}  // namespace atp
}  // namespace modgap
