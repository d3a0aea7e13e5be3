// C++ API of spectral_align: calls the registered operator through the dispatcher.
#include "ops/spectral_align/spectral_align.h"

#include <ATen/core/dispatch/Dispatcher.h>

#include <modgap/modgap.h>

namespace modgap {

std::tuple<at::Tensor, at::Tensor> spectral_align(const at::Tensor& x, const at::Tensor& y, int64_t k,
                                                  const std::string& nonnegative, int64_t graph_topk) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("modgap::spectral_align", "")
                       .typed<std::tuple<at::Tensor, at::Tensor>(const at::Tensor&, const at::Tensor&, int64_t,
                                                                 c10::string_view, int64_t)>();
  return op.call(x, y, k, nonnegative, graph_topk);
}

}  // namespace modgap
