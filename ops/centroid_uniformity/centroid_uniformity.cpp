// C++ API of centroid_uniformity: calls the registered operators through the dispatcher.
#include "ops/centroid_uniformity/centroid_uniformity.h"

#include <ATen/core/dispatch/Dispatcher.h>

#include <modgap/modgap.h>

#include "ops/centroid_uniformity/centroid_uniformity_tiled.h"
#include "ops/common/input_checks.h"

namespace modgap {

at::Tensor centroid_uniformity(at::TensorList embeddings, double t, bool normalize) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("modgap::centroid_uniformity", "")
                       .typed<at::Tensor(at::TensorList, double, bool)>();
  // An empty list carries no device, so the dispatcher could not reach the kernels' own checks.
  TORCH_CHECK_VALUE(!embeddings.empty(), "modgap::centroid_uniformity: expected at least 2 modalities in `embeddings`, got 0");
  return op.call(embeddings, t, normalize);
}

void check_centroid_uniformity_arguments(const char* op, at::TensorList embeddings, double t) {
  check_embeddings_metadata(op, embeddings, /*min_rows=*/2);
  check_temperature(op, t);
}

std::vector<at::Tensor> centroid_uniformity_backward_kernel(const at::Tensor& grad_output,
                                                            const at::Tensor& centroid_grad, int64_t num_modalities,
                                                            at::ScalarType dtype) {
  TORCH_CHECK_VALUE(num_modalities >= 2, "modgap::_centroid_uniformity_backward: `num_modalities` must be >= 2, got ",
                    num_modalities);
  TORCH_CHECK_VALUE(centroid_grad.dim() == 2, "modgap::_centroid_uniformity_backward: `centroid_grad` must be [N, D]");
  check_grad_output("modgap::_centroid_uniformity_backward", grad_output, centroid_grad);
  return cu::centroid_gradient_to_embeddings(grad_output, centroid_grad, num_modalities, dtype);
}

namespace detail {

std::tuple<at::Tensor, at::Tensor> centroid_uniformity_forward(at::TensorList embeddings, double t, bool normalize,
                                                               bool compute_grad) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("modgap::_centroid_uniformity_forward", "")
                       .typed<std::tuple<at::Tensor, at::Tensor>(at::TensorList, double, bool, bool)>();
  return op.call(embeddings, t, normalize, compute_grad);
}

std::vector<at::Tensor> centroid_uniformity_backward(const at::Tensor& grad_output, const at::Tensor& centroid_grad,
                                                     int64_t num_modalities, at::ScalarType dtype) {
  static auto op =
      c10::Dispatcher::singleton()
          .findSchemaOrThrow("modgap::_centroid_uniformity_backward", "")
          .typed<std::vector<at::Tensor>(const at::Tensor&, const at::Tensor&, int64_t, at::ScalarType)>();
  return op.call(grad_output, centroid_grad, num_modalities, dtype);
}

}  // namespace detail
}  // namespace modgap
