// C++ API of atp_loss: calls the registered operators through the dispatcher.
#include "ops/atp_loss/atp_loss.h"

#include <ATen/core/dispatch/Dispatcher.h>

#include <modgap/modgap.h>

namespace modgap {

at::Tensor atp_loss(at::TensorList embeddings, int64_t anchor) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("modgap::atp_loss", "")
                       .typed<at::Tensor(at::TensorList, int64_t)>();
  // An empty list carries no device, so the dispatcher could not reach the kernels' own checks.
  TORCH_CHECK_VALUE(!embeddings.empty(), "modgap::atp_loss: expected at least 2 modalities in `embeddings`, got 0");
  return op.call(embeddings, anchor);
}

namespace detail {
std::vector<at::Tensor> atp_loss_backward(const at::Tensor& grad_output, at::TensorList embeddings,
                                          int64_t anchor) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("modgap::_atp_loss_backward", "")
                       .typed<std::vector<at::Tensor>(const at::Tensor&, at::TensorList, int64_t)>();
  return op.call(grad_output, embeddings, anchor);
}
}  // namespace detail

}  // namespace modgap
