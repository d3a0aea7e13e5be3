// Autograd kernel of atp_loss, in C++ so gradients work from Python, TorchScript and pure C++
// (torch::jit::load) alike. Both passes call registered ops through the dispatcher.
#include <torch/autograd.h>
#include <torch/library.h>

#include <modgap/modgap.h>

#include "ops/atp_loss/atp_loss.h"

namespace modgap {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

class AtpLossBackwardFunction : public torch::autograd::Function<AtpLossBackwardFunction> {
 public:
  static variable_list forward(AutogradContext* ctx, const at::Tensor& grad_output, at::TensorList embeddings,
                               int64_t anchor) {
    at::AutoDispatchBelowADInplaceOrView guard;
    return detail::atp_loss_backward(grad_output, embeddings, anchor);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    TORCH_CHECK(false, "modgap::atp_loss: double backward (a gradient of the gradient) is not supported");
  }
};

class AtpLossFunction : public torch::autograd::Function<AtpLossFunction> {
 public:
  static at::Tensor forward(AutogradContext* ctx, at::TensorList embeddings, int64_t anchor) {
    at::AutoDispatchBelowADInplaceOrView guard;
    ctx->save_for_backward(embeddings.vec());
    ctx->saved_data["anchor"] = anchor;
    return atp_loss(embeddings, anchor);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const auto embeddings = ctx->get_saved_variables();
    const int64_t anchor = ctx->saved_data["anchor"].toInt();
    variable_list grads = AtpLossBackwardFunction::apply(grad_outputs[0], at::TensorList(embeddings), anchor);
    grads.emplace_back();  // anchor is not differentiable
    return grads;
  }
};

at::Tensor atp_loss_autograd(at::TensorList embeddings, int64_t anchor) {
  return AtpLossFunction::apply(embeddings, anchor);
}

std::vector<at::Tensor> atp_loss_backward_autograd(const at::Tensor& grad_output, at::TensorList embeddings,
                                                   int64_t anchor) {
  return AtpLossBackwardFunction::apply(grad_output, embeddings, anchor);
}

}  // namespace

TORCH_LIBRARY_IMPL(modgap, Autograd, m) {
  m.impl("atp_loss", &atp_loss_autograd);
  m.impl("_atp_loss_backward", &atp_loss_backward_autograd);
}

}  // namespace modgap
