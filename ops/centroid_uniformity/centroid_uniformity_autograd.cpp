// Autograd kernel of centroid_uniformity, in C++ so gradients work from Python, TorchScript and pure
// C++ (torch::jit::load) alike. When a gradient will be needed, the forward calls the internal op
// _centroid_uniformity_forward with compute_grad=true: it returns dL/dc (the gradient with respect to
// the centroids) from the same pass over the pairs, and the backward op only scales it by the upstream
// gradient and hands 1/M of it to each modality (eq. 9). Only dL/dc ([N, D]) is saved, not the inputs.
#include <torch/autograd.h>
#include <torch/library.h>

#include "ops/centroid_uniformity/centroid_uniformity.h"

namespace modgap {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

class CentroidUniformityBackwardFunction : public torch::autograd::Function<CentroidUniformityBackwardFunction> {
 public:
  static variable_list forward(AutogradContext* ctx, const at::Tensor& grad_output, const at::Tensor& centroid_grad,
                               int64_t num_modalities, at::ScalarType dtype) {
    at::AutoDispatchBelowADInplaceOrView guard;
    return detail::centroid_uniformity_backward(grad_output, centroid_grad, num_modalities, dtype);
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
    auto [loss, centroid_grad] = detail::centroid_uniformity_forward(embeddings, t, normalize, /*compute_grad=*/true);
    ctx->save_for_backward({centroid_grad});
    ctx->saved_data["num_modalities"] = static_cast<int64_t>(embeddings.size());
    ctx->saved_data["dtype"] = static_cast<int64_t>(embeddings[0].scalar_type());
    return loss;
  }
  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    // dL/dc was computed without a graph, so a gradient of this gradient would silently be wrong.
    TORCH_CHECK(!at::GradMode::is_enabled(),
                "modgap::centroid_uniformity: double backward (a gradient of the gradient, e.g. "
                "create_graph=True) is not supported");
    const at::Tensor centroid_grad = ctx->get_saved_variables()[0];
    variable_list grads = CentroidUniformityBackwardFunction::apply(
        grad_outputs[0], centroid_grad, ctx->saved_data["num_modalities"].toInt(),
        static_cast<at::ScalarType>(ctx->saved_data["dtype"].toInt()));
    grads.emplace_back();  // t
    grads.emplace_back();  // normalize
    return grads;
  }
};

at::Tensor centroid_uniformity_autograd(at::TensorList embeddings, double t, bool normalize) {
  bool needs_grad = false;
  if (at::GradMode::is_enabled()) {
    for (const auto& z : embeddings) {
      needs_grad = needs_grad || z.requires_grad();
    }
  }
  if (!needs_grad) {  // inference: the cheaper forward, no dL/dc
    at::AutoDispatchBelowADInplaceOrView guard;
    return std::get<0>(detail::centroid_uniformity_forward(embeddings, t, normalize, /*compute_grad=*/false));
  }
  return CentroidUniformityFunction::apply(embeddings, t, normalize);
}

std::tuple<at::Tensor, at::Tensor> centroid_uniformity_forward_autograd(at::TensorList embeddings, double t,
                                                                        bool normalize, bool compute_grad) {
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
  return detail::centroid_uniformity_forward(embeddings, t, normalize, compute_grad);
}

std::vector<at::Tensor> centroid_uniformity_backward_autograd(const at::Tensor& grad_output,
                                                              const at::Tensor& centroid_grad, int64_t num_modalities,
                                                              at::ScalarType dtype) {
  return CentroidUniformityBackwardFunction::apply(grad_output, centroid_grad, num_modalities, dtype);
}

}  // namespace

TORCH_LIBRARY_IMPL(modgap, Autograd, m) {
  m.impl("centroid_uniformity", &centroid_uniformity_autograd);
  m.impl("_centroid_uniformity_forward", &centroid_uniformity_forward_autograd);
  m.impl("_centroid_uniformity_backward", &centroid_uniformity_backward_autograd);
}

}  // namespace modgap
