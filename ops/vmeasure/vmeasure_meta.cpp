// Meta (fake) kernel of vmeasure: three float64 scalars.
#include <torch/library.h>

#include "ops/common/input_checks.h"
#include "ops/vmeasure/vmeasure.h"

namespace modgap {
namespace {

std::tuple<at::Tensor, at::Tensor, at::Tensor> vmeasure_meta(const at::Tensor& labels_true,
                                                             const at::Tensor& labels_pred, double beta) {
  TORCH_CHECK_VALUE(labels_true.defined() && labels_true.dim() == 1, kVMeasureName,
                    ": `labels_true` must be a 1-D tensor of integer labels");
  check_labels(kVMeasureName, "labels_pred", labels_pred, labels_true.sym_size(0), labels_true.device());
  const auto options = labels_true.options().dtype(at::kDouble);
  return {at::empty({}, options), at::empty({}, options), at::empty({}, options)};
}

}  // namespace

TORCH_LIBRARY_IMPL(modgap, Meta, m) { m.impl("vmeasure", &vmeasure_meta); }

}  // namespace modgap
