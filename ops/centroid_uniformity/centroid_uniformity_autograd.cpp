// Autograd kernel of centroid_uniformity, in C++ so gradients work from Python, TorchScript and pure
// C++ (torch::jit::load) alike. The forward calls the internal op _centroid_uniformity_forward, which
// also returns log_pair_sum = log sum_{i<j} exp(-t d_ij) in float32/float64; the backward op needs it
// at that precision (for float16 inputs the loss itself is rounded to float16).
#include <torch/autograd.h>
#include <torch/library.h>

#include "ops/centroid_uniformity/centroid_uniformity.h"

namespace modgap {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

class CentroidUniformityBackwardFunction : public torch::autograd::Function<CentroidUniformityBackwardFunction> {
 public:
  static variable_list forward(AutogradContext* ctx, const at::Tensor& grad_output, at::TensorList embeddings,
                               const at::Tensor& log_pair_sum, double t, bool normalize) {
    at::AutoDispatchBelowADInplaceOrView guard;
    return detail::centroid_uniformity_backward(grad_output, embeddings, log_pair_sum, t, normalize);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    TORCH_CHECK(false,
                "modgap::centroid_uniformity: double backward (a gradient of the gradient) is not supported");
  }
};

class CentroidUniformityFunction : public torch::autograd::Function<CentroidUniformityFunction> {
 public:
  static at::Tensor forward(AutogradContext* ctx, at::TensorList embeddings, double t, bool normalize) {
    at::AutoDispatchBelowADInplaceOrView guard;
    auto [loss, log_pair_sum] = detail::centroid_uniformity_forward(embeddings, t, normalize);
    std::vector<at::Tensor> saved = embeddings.vec();
    saved.push_back(log_pair_sum);
    ctx->save_for_backward(saved);
    ctx->saved_data["t"] = t;
    ctx->saved_data["normalize"] = normalize;
    return loss;
  }
  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    auto saved = ctx->get_saved_variables();
    const at::Tensor log_pair_sum = saved.back();
    saved.pop_back();
    variable_list grads = CentroidUniformityBackwardFunction::apply(
        grad_outputs[0], at::TensorList(saved), log_pair_sum, ctx->saved_data["t"].toDouble(),
        ctx->saved_data["normalize"].toBool());
    grads.emplace_back();  // t
    grads.emplace_back();  // normalize
    return grads;
  }
};

at::Tensor centroid_uniformity_autograd(at::TensorList embeddings, double t, bool normalize) {
  return CentroidUniformityFunction::apply(embeddings, t, normalize);
}

std::tuple<at::Tensor, at::Tensor> centroid_uniformity_forward_autograd(at::TensorList embeddings, double t,
                                                                        bool normalize) {
  // The internal forward half is not differentiable on its own (its gradient is defined through
  // centroid_uniformity); refuse rather than silently return outputs that do not require grad.
  if (at::GradMode::is_enabled()) {
    for (const auto& z : embeddings) {
      TORCH_CHECK(!z.requires_grad(),
                  "modgap::_centroid_uniformity_forward is internal and not differentiable; call "
                  "modgap::centroid_uniformity for a loss with gradients");
    }
  }
  at::AutoDispatchBelowADInplaceOrView guard;
  return detail::centroid_uniformity_forward(embeddings, t, normalize);
}

std::vector<at::Tensor> centroid_uniformity_backward_autograd(const at::Tensor& grad_output,
                                                              at::TensorList embeddings,
                                                              const at::Tensor& log_pair_sum, double t,
                                                              bool normalize) {
  return CentroidUniformityBackwardFunction::apply(grad_output, embeddings, log_pair_sum, t, normalize);
}

}  // namespace

TORCH_LIBRARY_IMPL(modgap, Autograd, m) {
  m.impl("centroid_uniformity", &centroid_uniformity_autograd);
  m.impl("_centroid_uniformity_forward", &centroid_uniformity_forward_autograd);
  m.impl("_centroid_uniformity_backward", &centroid_uniformity_backward_autograd);
}

}  // namespace modgap
