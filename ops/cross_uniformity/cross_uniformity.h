// cross_uniformity: Fahim et al.'s cross-modal uniformity L_xunif ("It's not a modality gap", the
// NotAGap baseline of the paper's Tables 2 and 4), the device-generic tiled kernel and the dispatcher
// calls of its autograd kernel. Schema: registration/schema.cpp. Math: cross_uniformity_kernel.cpp.
#pragma once

#include <ATen/ATen.h>

#include <tuple>

namespace modgap {

constexpr const char* kCrossUniformityName = "modgap::cross_uniformity";

// Forward: (loss in the input dtype, log_pair_sum = log sum_{pairs} exp(-t ||x_i - y_j||^2) as a scalar in
// the accumulation dtype, which the backward needs to normalise the pair weights). One kernel for every
// device (ATen tile operations: BLAS / cuBLAS GEMMs and elementwise kernels).
std::tuple<at::Tensor, at::Tensor> cross_uniformity_forward_kernel(const at::Tensor& x, const at::Tensor& y, double t,
                                                                   bool exclude_diagonal);
std::tuple<at::Tensor, at::Tensor> cross_uniformity_backward_kernel(const at::Tensor& grad_output, const at::Tensor& x,
                                                                    const at::Tensor& y,
                                                                    const at::Tensor& log_pair_sum, double t,
                                                                    bool exclude_diagonal);

// Argument checks shared by every kernel, Meta included (no data read).
void check_cross_uniformity_arguments(const char* op, const at::Tensor& x, const at::Tensor& y, double t,
                                      bool exclude_diagonal);

namespace detail {
// Dispatcher calls of the internal forward/backward halves.
std::tuple<at::Tensor, at::Tensor> cross_uniformity_forward(const at::Tensor& x, const at::Tensor& y, double t,
                                                            bool exclude_diagonal);
std::tuple<at::Tensor, at::Tensor> cross_uniformity_backward(const at::Tensor& grad_output, const at::Tensor& x,
                                                             const at::Tensor& y, const at::Tensor& log_pair_sum,
                                                             double t, bool exclude_diagonal);
}  // namespace detail

}  // namespace modgap
