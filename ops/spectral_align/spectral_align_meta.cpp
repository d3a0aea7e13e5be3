// Meta (fake) kernel of spectral_align: [N, k] and [M, k] in the inputs' dtype.
#include <torch/library.h>

#include "ops/spectral_align/spectral_align.h"

namespace modgap {
namespace {

std::tuple<at::Tensor, at::Tensor> spectral_align_meta(const at::Tensor& x, const at::Tensor& y, int64_t k,
                                                       c10::string_view nonnegative, int64_t graph_topk) {
  check_spectral_align_arguments(x, y, k, nonnegative, graph_topk);
  return {at::empty_symint({x.sym_size(0), k}, x.options()), at::empty_symint({y.sym_size(0), k}, y.options())};
}

}  // namespace

TORCH_LIBRARY_IMPL(modgap, Meta, m) { m.impl("spectral_align", &spectral_align_meta); }

}  // namespace modgap
