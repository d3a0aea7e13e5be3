// centroid_uniformity: kernel entry points per backend and the dispatcher calls of the autograd kernel.
// Schema: registration/schema.cpp. Math: centroid_uniformity_math.h. Tiling shared by CPU and CUDA:
// centroid_uniformity_tiled.h.
#pragma once

#include <ATen/ATen.h>

#include <tuple>
#include <vector>

namespace modgap {

constexpr const char* kCentroidUniformityName = "modgap::centroid_uniformity";

// Forward kernels return (loss in the input dtype, log_pair_sum in the accumulation dtype).
std::tuple<at::Tensor, at::Tensor> centroid_uniformity_forward_cpu(at::TensorList embeddings, double t,
                                                                   bool normalize);
std::vector<at::Tensor> centroid_uniformity_backward_cpu(const at::Tensor& grad_output, at::TensorList embeddings,
                                                         const at::Tensor& log_pair_sum, double t, bool normalize);

std::tuple<at::Tensor, at::Tensor> centroid_uniformity_forward_cuda(at::TensorList embeddings, double t,
                                                                    bool normalize);
std::vector<at::Tensor> centroid_uniformity_backward_cuda(const at::Tensor& grad_output, at::TensorList embeddings,
                                                          const at::Tensor& log_pair_sum, double t, bool normalize);

// Argument checks shared by the forward and backward kernels of every backend (no data read).
void check_centroid_uniformity_arguments(const char* op, at::TensorList embeddings, double t);

namespace detail {
// Dispatcher calls of the internal forward/backward halves.
std::tuple<at::Tensor, at::Tensor> centroid_uniformity_forward(at::TensorList embeddings, double t, bool normalize);
std::vector<at::Tensor> centroid_uniformity_backward(const at::Tensor& grad_output, at::TensorList embeddings,
                                                     const at::Tensor& log_pair_sum, double t, bool normalize);
}  // namespace detail

}  // namespace modgap
