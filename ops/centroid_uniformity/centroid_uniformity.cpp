// C++ API of centroid_uniformity: calls the registered operators through the dispatcher.
#include "ops/centroid_uniformity/centroid_uniformity.h"

#include <ATen/core/dispatch/Dispatcher.h>

#include <modgap/modgap.h>

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

namespace detail {

std::tuple<at::Tensor, at::Tensor> centroid_uniformity_forward(at::TensorList embeddings, double t, bool normalize) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("modgap::_centroid_uniformity_forward", "")
                       .typed<std::tuple<at::Tensor, at::Tensor>(at::TensorList, double, bool)>();
  return op.call(embeddings, t, normalize);
}

std::vector<at::Tensor> centroid_uniformity_backward(const at::Tensor& grad_output, at::TensorList embeddings,
                                                     const at::Tensor& log_pair_sum, double t, bool normalize) {
  static auto op =
      c10::Dispatcher::singleton()
          .findSchemaOrThrow("modgap::_centroid_uniformity_backward", "")
          .typed<std::vector<at::Tensor>(const at::Tensor&, at::TensorList, const at::Tensor&, double, bool)>();
  return op.call(grad_output, embeddings, log_pair_sum, t, normalize);
}

}  // namespace detail
}  // namespace modgap
