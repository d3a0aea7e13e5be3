// C++ API of kmeans: calls the registered operator through the dispatcher.
#include "ops/kmeans/kmeans.h"

#include <ATen/core/dispatch/Dispatcher.h>

#include <modgap/modgap.h>

namespace modgap {

std::tuple<at::Tensor, at::Tensor, at::Tensor> kmeans(const at::Tensor& x, int64_t k, int64_t max_iter, double tol,
                                                      int64_t n_init, int64_t seed) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("modgap::kmeans", "")
                       .typed<std::tuple<at::Tensor, at::Tensor, at::Tensor>(const at::Tensor&, int64_t, int64_t, double,
                                                                             int64_t, int64_t)>();
  return op.call(x, k, max_iter, tol, n_init, seed);
}

}  // namespace modgap
