// shift_modalities for CPU and CUDA tensors (one ATen implementation registered for both keys).
//
// Liang et al.'s post-hoc shift (measures.md §3; their shift_features.ipynb `move_features`), used by
// the paper's Fig. 1 to place trained embeddings at a chosen gap. On the L2-normalised rows x^ (first
// modality) and y^ (second), with the unit direction u = (mean x^ - mean y^) / ||mean x^ - mean y^||
// (or a given `direction`, e.g. one measured on MSCOCO and transferred):
//   x'_i = normalize(x^_i - delta / 2 u),   y'_i = normalize(y^_i + delta / 2 u).
// delta > 0 moves the modalities towards each other (the gap shrinks until about delta = gap, and grows
// again past it with the opposite sign), delta < 0 apart. Because of the re-normalisation the gap
// never reaches exactly 0 along this line. Outputs have the inputs' dtype.
#include <torch/library.h>

#include <cmath>

#include "ops/common/evaluation_utils.h"
#include "ops/common/input_checks.h"
#include "ops/shift_modalities/shift_modalities.h"

namespace modgap {

void check_shift_modalities_arguments(const at::Tensor& x, const at::Tensor& y, double delta,
                                      const std::optional<at::Tensor>& direction) {
  check_matrix(kShiftModalitiesName, "x", x, /*min_rows=*/1);
  check_matrix(kShiftModalitiesName, "y", y, /*min_rows=*/1);
  check_same_columns(kShiftModalitiesName, "x", x, "y", y);
  TORCH_CHECK_VALUE(std::isfinite(delta), kShiftModalitiesName, ": `delta` must be finite, got ", delta);
  if (direction.has_value()) {
    const at::Tensor& u = *direction;
    TORCH_CHECK_VALUE(u.dim() == 1 && u.sym_size(0) == x.sym_size(1), kShiftModalitiesName,
                      ": `direction` must be a 1-D tensor of D = ", x.sym_size(1), " entries, got shape ", u.sizes());
    TORCH_CHECK_VALUE(u.device() == x.device(), kShiftModalitiesName, ": `direction` is on ", u.device(),
                      " but `x` is on ", x.device());
    TORCH_CHECK_TYPE(at::isFloatingType(u.scalar_type()), kShiftModalitiesName,
                     ": `direction` must have a floating dtype, got ", u.scalar_type());
  }
}

std::tuple<at::Tensor, at::Tensor> shift_modalities_kernel(const at::Tensor& x, const at::Tensor& y, double delta,
                                                           const std::optional<at::Tensor>& direction) {
  check_shift_modalities_arguments(x, y, delta, direction);
  check_finite(kShiftModalitiesName, "x", x);
  check_finite(kShiftModalitiesName, "y", y);
  const at::Tensor x_unit = eval::l2_normalize_rows(x);
  const at::Tensor y_unit = eval::l2_normalize_rows(y);
  at::Tensor u;
  if (direction.has_value()) {
    check_finite(kShiftModalitiesName, "direction", *direction);
    u = direction->to(x_unit.scalar_type());
  } else {
    u = x_unit.mean(0) - y_unit.mean(0);
  }
  const double norm = u.norm().item<double>();
  TORCH_CHECK_VALUE(norm > 0.0, kShiftModalitiesName, ": the shift direction is zero (",
                    direction.has_value() ? "`direction` is all zeros" : "the two modalities have the same centroid",
                    "), so there is no gap to move along");
  u = u / norm;
  const at::Tensor step = u * (0.5 * delta);
  return {eval::l2_normalize_rows(x_unit - step).to(x.scalar_type()).contiguous(),
          eval::l2_normalize_rows(y_unit + step).to(y.scalar_type()).contiguous()};
}

TORCH_LIBRARY_IMPL(modgap, CPU, m) { m.impl("shift_modalities", &shift_modalities_kernel); }
TORCH_LIBRARY_IMPL(modgap, CUDA, m) { m.impl("shift_modalities", &shift_modalities_kernel); }

}  // namespace modgap
