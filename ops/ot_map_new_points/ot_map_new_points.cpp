// C++ API of ot_map_new_points: calls the registered operator through the dispatcher.
#include "ops/ot_map_new_points/ot_map_new_points.h"

#include <ATen/core/dispatch/Dispatcher.h>

#include <modgap/modgap.h>

namespace modgap {

at::Tensor ot_map_new_points(const at::Tensor& x, const at::Tensor& xs, const at::Tensor& xs_transported) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("modgap::ot_map_new_points", "")
                       .typed<at::Tensor(const at::Tensor&, const at::Tensor&, const at::Tensor&)>();
  return op.call(x, xs, xs_transported);
}

}  // namespace modgap
