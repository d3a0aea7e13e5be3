// atp_loss: kernel entry points (one per backend) and the dispatcher calls the autograd kernel uses.
// Schema: registration/schema.cpp. Math: atp_loss_math.h.
#pragma once

#include <ATen/ATen.h>

#include <vector>

namespace modgap {

constexpr const char* kAtpLossName = "modgap::atp_loss";

at::Tensor atp_loss_forward_cpu(at::TensorList embeddings, int64_t anchor);
std::vector<at::Tensor> atp_loss_backward_cpu(const at::Tensor& grad_output, at::TensorList embeddings,
                                              int64_t anchor);

at::Tensor atp_loss_forward_cuda(at::TensorList embeddings, int64_t anchor);
std::vector<at::Tensor> atp_loss_backward_cuda(const at::Tensor& grad_output, at::TensorList embeddings,
                                               int64_t anchor);

namespace detail {
// Calls modgap::_atp_loss_backward through the dispatcher.
std::vector<at::Tensor> atp_loss_backward(const at::Tensor& grad_output, at::TensorList embeddings,
                                          int64_t anchor);
}  // namespace detail

}  // namespace modgap
