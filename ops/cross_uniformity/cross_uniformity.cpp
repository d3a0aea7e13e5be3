// C++ API of cross_uniformity: calls the registered operators through the dispatcher.
#include "ops/cross_uniformity/cross_uniformity.h"

#include <ATen/core/dispatch/Dispatcher.h>

#include <modgap/modgap.h>

namespace modgap {

at::Tensor cross_uniformity(const at::Tensor& x, const at::Tensor& y, double t, bool exclude_diagonal) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("modgap::cross_uniformity", "")
                       .typed<at::Tensor(const at::Tensor&, const at::Tensor&, double, bool)>();
  return op.call(x, y, t, exclude_diagonal);
}

namespace detail {
std::tuple<at::Tensor, at::Tensor> cross_uniformity_forward(const at::Tensor& x, const at::Tensor& y, double t,
                                                            bool exclude_diagonal) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("modgap::_cross_uniformity_forward", "")
                       .typed<std::tuple<at::Tensor, at::Tensor>(const at::Tensor&, const at::Tensor&, double, bool)>();
  return op.call(x, y, t, exclude_diagonal);
}

std::tuple<at::Tensor, at::Tensor> cross_uniformity_backward(const at::Tensor& grad_output, const at::Tensor& x,
                                                             const at::Tensor& y, const at::Tensor& log_pair_sum,
                                                             double t, bool exclude_diagonal) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("modgap::_cross_uniformity_backward", "")
                       .typed<std::tuple<at::Tensor, at::Tensor>(const at::Tensor&, const at::Tensor&,
                                                                 const at::Tensor&, const at::Tensor&, double, bool)>();
  return op.call(grad_output, x, y, log_pair_sum, t, exclude_diagonal);
}
}  // namespace detail

}  // namespace modgap
