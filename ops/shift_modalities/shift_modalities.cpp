// C++ API of shift_modalities: calls the registered operator through the dispatcher.
#include "ops/shift_modalities/shift_modalities.h"

#include <ATen/core/dispatch/Dispatcher.h>

#include <modgap/modgap.h>

namespace modgap {

std::tuple<at::Tensor, at::Tensor> shift_modalities(const at::Tensor& x, const at::Tensor& y, double delta,
                                                    const std::optional<at::Tensor>& direction) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("modgap::shift_modalities", "")
                       .typed<std::tuple<at::Tensor, at::Tensor>(const at::Tensor&, const at::Tensor&, double,
                                                                 const std::optional<at::Tensor>&)>();
  return op.call(x, y, delta, direction);
}

}  // namespace modgap
