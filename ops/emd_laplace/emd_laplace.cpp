// C++ API of emd_laplace: calls the registered operator through the dispatcher.
#include "ops/emd_laplace/emd_laplace.h"

#include <ATen/core/dispatch/Dispatcher.h>

#include <modgap/modgap.h>

namespace modgap {

std::tuple<at::Tensor, at::Tensor> emd_laplace(const at::Tensor& xs, const at::Tensor& xt, double reg_lap,
                                               double reg_src, int64_t k, const std::string& reg_type,
                                               int64_t max_iter, double tol, int64_t max_inner_iter,
                                               double inner_tol) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("modgap::emd_laplace", "")
                       .typed<std::tuple<at::Tensor, at::Tensor>(const at::Tensor&, const at::Tensor&, double, double,
                                                                 int64_t, c10::string_view, int64_t, double, int64_t,
                                                                 double)>();
  return op.call(xs, xt, reg_lap, reg_src, k, reg_type, max_iter, tol, max_inner_iter, inner_tol);
}

}  // namespace modgap
