// centroid_uniformity: kernel entry points per backend and the dispatcher calls of the autograd kernel.
// Schema: registration/schema.cpp. Math: centroid_uniformity_math.h. Tiling shared by CPU and CUDA:
// centroid_uniformity_tiled.h.
#pragma once

#include <ATen/ATen.h>

#include <tuple>
#include <vector>

namespace modgap {

constexpr const char* kCentroidUniformityName = "modgap::centroid_uniformity";

// Forward kernels return (loss in the input dtype, dL/dc in the accumulation dtype or an empty tensor
// when !compute_grad). The backward kernel is device-generic (a scale of dL/dc).
std::tuple<at::Tensor, at::Tensor> centroid_uniformity_forward_cpu(at::TensorList embeddings, double t,
                                                                   bool normalize, bool compute_grad);
std::tuple<at::Tensor, at::Tensor> centroid_uniformity_forward_cuda(at::TensorList embeddings, double t,
                                                                    bool normalize, bool compute_grad);
std::vector<at::Tensor> centroid_uniformity_backward_kernel(const at::Tensor& grad_output,
                                                            const at::Tensor& centroid_grad, int64_t num_modalities,
                                                            at::ScalarType dtype);

// Argument checks shared by the forward and backward kernels of every backend (no data read).
void check_centroid_uniformity_arguments(const char* op, at::TensorList embeddings, double t);

namespace detail {
// Dispatcher calls of the internal forward/backward halves.
std::tuple<at::Tensor, at::Tensor> centroid_uniformity_forward(at::TensorList embeddings, double t, bool normalize,
                                                               bool compute_grad);
std::vector<at::Tensor> centroid_uniformity_backward(const at::Tensor& grad_output, const at::Tensor& centroid_grad,
                                                     int64_t num_modalities, at::ScalarType dtype);
}  // namespace detail

}  // namespace modgap
