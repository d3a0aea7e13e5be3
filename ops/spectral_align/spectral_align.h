// spectral_align: the post-hoc spectral method of "Fill the Gap" (Role, Meyer, Amblard 2025), a joint
// embedding of images and texts from the bipartite image-text similarity graph. Schema:
// registration/schema.cpp. Kernel (CPU and CUDA): spectral_align_kernel.cpp. Meta: spectral_align_meta.cpp.
#pragma once

#include <ATen/ATen.h>

#include <string>
#include <tuple>

namespace modgap {

constexpr const char* kSpectralAlignName = "modgap::spectral_align";

// (x_new [N, k], y_new [M, k]) in the inputs' dtype, rows L2-normalised.
std::tuple<at::Tensor, at::Tensor> spectral_align_kernel(const at::Tensor& x, const at::Tensor& y, int64_t k,
                                                         c10::string_view nonnegative, int64_t graph_topk);

// Argument checks shared by the kernel and the Meta kernel (no data read).
void check_spectral_align_arguments(const at::Tensor& x, const at::Tensor& y, int64_t k, c10::string_view nonnegative,
                                    int64_t graph_topk);

}  // namespace modgap
