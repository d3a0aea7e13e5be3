// Meta (fake) kernel of emd_laplace: the coupling [ns, nt] and the transported sources [ns, D], in the
// inputs' dtype.
#include <torch/library.h>

#include "ops/emd_laplace/emd_laplace.h"

namespace modgap {
namespace {

std::tuple<at::Tensor, at::Tensor> emd_laplace_meta(const at::Tensor& xs, const at::Tensor& xt, double reg_lap,
                                                    double reg_src, int64_t k, c10::string_view reg_type,
                                                    int64_t max_iter, double tol, int64_t max_inner_iter,
                                                    double inner_tol) {
  check_emd_laplace_arguments(xs, xt, reg_lap, reg_src, k, reg_type, max_iter, tol, max_inner_iter,
                              inner_tol);
  return {at::empty_symint({xs.sym_size(0), xt.sym_size(0)}, xs.options()),
          at::empty_like(xs, at::MemoryFormat::Contiguous)};
}

}  // namespace

TORCH_LIBRARY_IMPL(modgap, Meta, m) { m.impl("emd_laplace", &emd_laplace_meta); }

}  // namespace modgap
