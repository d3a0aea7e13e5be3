// Autograd kernel of cross_uniformity, in C++ so gradients work from Python, TorchScript and pure C++
// alike. The forward calls the internal op _cross_uniformity_forward, which also returns log_pair_sum
// (in the accumulation dtype, so half inputs do not round it); the backward op recomputes the pair
// weights tile by tile from x, y and log_pair_sum. Saved: x, y and one scalar, never a pair matrix.
#include <torch/autograd.h>
#include <torch/library.h>

#include "ops/cross_uniformity/cross_uniformity.h"

namespace modgap {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

constexpr const char* kDoubleBackwardMessage =
    "modgap::cross_uniformity: double backward (a gradient of the gradient, e.g. create_graph=True) is not "
    "supported";

class CrossUniformityBackwardFunction : public torch::autograd::Function<CrossUniformityBackwardFunction> {
 public:
  static variable_list forward(AutogradContext* ctx, const at::Tensor& grad_output, const at::Tensor& x,
                               const at::Tensor& y, const at::Tensor& log_pair_sum, double t, bool exclude_diagonal) {
    at::AutoDispatchBelowADInplaceOrView guard;
    auto [grad_x, grad_y] = detail::cross_uniformity_backward(grad_output, x, y, log_pair_sum, t, exclude_diagonal);
    return {grad_x, grad_y};
  }
  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    TORCH_CHECK(false, kDoubleBackwardMessage);
  }
};

class CrossUniformityFunction : public torch::autograd::Function<CrossUniformityFunction> {
 public:
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& y, double t,
                            bool exclude_diagonal) {
    at::AutoDispatchBelowADInplaceOrView guard;
    auto [loss, log_pair_sum] = detail::cross_uniformity_forward(x, y, t, exclude_diagonal);
    ctx->save_for_backward({x, y, log_pair_sum});
    ctx->saved_data["t"] = t;
    ctx->saved_data["exclude_diagonal"] = exclude_diagonal;
    return loss;
  }
  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    // The backward op is computed without a graph, so a gradient of this gradient would silently be wrong.
    TORCH_CHECK(!at::GradMode::is_enabled(), kDoubleBackwardMessage);
    const auto saved = ctx->get_saved_variables();
    variable_list grads = CrossUniformityBackwardFunction::apply(grad_outputs[0], saved[0], saved[1], saved[2],
                                                                 ctx->saved_data["t"].toDouble(),
                                                                 ctx->saved_data["exclude_diagonal"].toBool());
    grads.emplace_back();  // t
    grads.emplace_back();  // exclude_diagonal
    return grads;
  }
};

at::Tensor cross_uniformity_autograd(const at::Tensor& x, const at::Tensor& y, double t, bool exclude_diagonal) {
  if (!(at::GradMode::is_enabled() && (x.requires_grad() || y.requires_grad()))) {
    at::AutoDispatchBelowADInplaceOrView guard;
    return std::get<0>(detail::cross_uniformity_forward(x, y, t, exclude_diagonal));
  }
  return CrossUniformityFunction::apply(x, y, t, exclude_diagonal);
}

std::tuple<at::Tensor, at::Tensor> cross_uniformity_forward_autograd(const at::Tensor& x, const at::Tensor& y,
                                                                     double t, bool exclude_diagonal) {
  // The internal forward half is not differentiable on its own; refuse rather than silently return
  // outputs that do not require grad.
  TORCH_CHECK(!(at::GradMode::is_enabled() && (x.requires_grad() || y.requires_grad())),
              "modgap::_cross_uniformity_forward is internal and not differentiable; call "
              "modgap::cross_uniformity for a loss with gradients");
  at::AutoDispatchBelowADInplaceOrView guard;
  return detail::cross_uniformity_forward(x, y, t, exclude_diagonal);
}

std::tuple<at::Tensor, at::Tensor> cross_uniformity_backward_autograd(const at::Tensor& grad_output,
                                                                      const at::Tensor& x, const at::Tensor& y,
                                                                      const at::Tensor& log_pair_sum, double t,
                                                                      bool exclude_diagonal) {
  auto grads = CrossUniformityBackwardFunction::apply(grad_output, x, y, log_pair_sum, t, exclude_diagonal);
  return {grads[0], grads[1]};
}

}  // namespace

TORCH_LIBRARY_IMPL(modgap, Autograd, m) {
  m.impl("cross_uniformity", &cross_uniformity_autograd);
  m.impl("_cross_uniformity_forward", &cross_uniformity_forward_autograd);
  m.impl("_cross_uniformity_backward", &cross_uniformity_backward_autograd);
}

}  // namespace modgap
