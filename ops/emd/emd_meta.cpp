// Meta (fake) kernel of emd: the plan is shaped like M (in M's dtype), the cost a float64 scalar.
#include <torch/library.h>

#include "ops/emd/emd.h"

namespace modgap {
namespace {

std::tuple<at::Tensor, at::Tensor> emd_meta(const at::Tensor& a, const at::Tensor& b, const at::Tensor& M,
                                            int64_t max_iter) {
  check_emd_arguments(a, b, M, max_iter);
  return {at::empty_like(M, at::MemoryFormat::Contiguous), at::empty({}, M.options().dtype(at::kDouble))};
}

}  // namespace

TORCH_LIBRARY_IMPL(modgap, Meta, m) { m.impl("emd", &emd_meta); }

}  // namespace modgap
