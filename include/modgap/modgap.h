// Public C++ API of modgap. Every function calls the registered operator through the PyTorch
// dispatcher, so the CPU/CUDA kernel, the C++ autograd kernel and the Meta kernel are chosen exactly
// as for `torch.ops.modgap.*` in Python.
//
//   find_package(modgap REQUIRED)
//   target_link_libraries(my_tool PRIVATE modgap::modgap)
#pragma once

#include <ATen/ATen.h>

#include <cstdint>

namespace modgap {

// Eq. 7 of "Closing the Modality Gap Aligns Group-Wise Semantics" (ICLR 2026): mean over the M-1
// non-anchor modalities of mean_i ||z_i^m - z_i^a||^2. Inputs are used as given (not re-normalised).
at::Tensor atp_loss(at::TensorList embeddings, int64_t anchor = 0);

// Centroid uniformity (eq. 8/9 as the authors' reference code computes it):
//   mu_i = mean_m z_i^m, L2-normalised when `normalize`;
//   value = log( mean_{i<j} exp(-t ||mu_i - mu_j||^2) ).
// Eq. 8 of the paper (a sum over i != j divided by N) equals this value plus log(N-1).
at::Tensor centroid_uniformity(at::TensorList embeddings, double t = 2.0, bool normalize = true);

// CUDA runtime version the library was compiled against (-1 for a CPU-only build).
int64_t cuda_version();

namespace detail {
// Referenced from this header so that a program including it keeps libmodgap linked even under
// -Wl,--as-needed; the library's static initialisers register the operators.
int64_t link_anchor();
inline const int64_t kLinkAnchor = link_anchor();
}  // namespace detail

}  // namespace modgap
