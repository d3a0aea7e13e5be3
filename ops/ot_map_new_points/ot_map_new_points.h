// ot_map_new_points: the out-of-sample map of a fitted transport (Ferradans et al. 2014, POT's
// BaseTransport.transform for points it was not fitted on): a new point moves by the displacement of
// its nearest fitted source, T(x) = T(xs_i*) + x - xs_i*, i* = argmin_i |x - xs_i|^2. With emd_laplace it
// maps images the coupling was not fitted on ("Fill the Gap" fits on a few thousand pairs and applies
// the map to any new embeddings). Schema: registration/schema.cpp. Kernel (CPU and CUDA):
// ot_map_new_points_kernel.cpp. Meta: ot_map_new_points_meta.cpp.
#pragma once

#include <ATen/ATen.h>

namespace modgap {

constexpr const char* kOtMapNewPointsName = "modgap::ot_map_new_points";

at::Tensor ot_map_new_points_kernel(const at::Tensor& x, const at::Tensor& xs, const at::Tensor& xs_transported);

void check_ot_map_new_points_arguments(const at::Tensor& x, const at::Tensor& xs, const at::Tensor& xs_transported);

}  // namespace modgap
