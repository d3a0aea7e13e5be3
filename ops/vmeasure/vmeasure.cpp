// C++ API of vmeasure: calls the registered operator through the dispatcher.
#include "ops/vmeasure/vmeasure.h"

#include <ATen/core/dispatch/Dispatcher.h>

#include <modgap/modgap.h>

namespace modgap {

std::tuple<at::Tensor, at::Tensor, at::Tensor> vmeasure(const at::Tensor& labels_true, const at::Tensor& labels_pred,
                                                        double beta) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("modgap::vmeasure", "")
                       .typed<std::tuple<at::Tensor, at::Tensor, at::Tensor>(const at::Tensor&, const at::Tensor&, double)>();
  return op.call(labels_true, labels_pred, beta);
}

}  // namespace modgap
