// C++ API of emd: calls the registered operator through the dispatcher.
#include "ops/emd/emd.h"

#include <ATen/core/dispatch/Dispatcher.h>

#include <modgap/modgap.h>

namespace modgap {

std::tuple<at::Tensor, at::Tensor> emd(const at::Tensor& a, const at::Tensor& b, const at::Tensor& M,
                                       int64_t max_iter) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("modgap::emd", "")
                       .typed<std::tuple<at::Tensor, at::Tensor>(const at::Tensor&, const at::Tensor&,
                                                                 const at::Tensor&, int64_t)>();
  return op.call(a, b, M, max_iter);
}

}  // namespace modgap
