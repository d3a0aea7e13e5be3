// Meta (fake) kernel of shift_modalities: outputs shaped and typed as the inputs.
#include <torch/library.h>

#include "ops/shift_modalities/shift_modalities.h"

namespace modgap {
namespace {

std::tuple<at::Tensor, at::Tensor> shift_modalities_meta(const at::Tensor& x, const at::Tensor& y, double delta,
                                                         const std::optional<at::Tensor>& direction) {
  check_shift_modalities_arguments(x, y, delta, direction);
  return {at::empty_like(x, at::MemoryFormat::Contiguous), at::empty_like(y, at::MemoryFormat::Contiguous)};
}

}  // namespace

TORCH_LIBRARY_IMPL(modgap, Meta, m) { m.impl("shift_modalities", &shift_modalities_meta); }

}  // namespace modgap
