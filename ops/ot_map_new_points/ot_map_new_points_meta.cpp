// Meta (fake) kernel of ot_map_new_points: shaped and typed as x.
#include <torch/library.h>

#include "ops/ot_map_new_points/ot_map_new_points.h"

namespace modgap {
namespace {

at::Tensor ot_map_new_points_meta(const at::Tensor& x, const at::Tensor& xs, const at::Tensor& xs_transported) {
  check_ot_map_new_points_arguments(x, xs, xs_transported);
  return at::empty_like(x, at::MemoryFormat::Contiguous);
}

}  // namespace

TORCH_LIBRARY_IMPL(modgap, Meta, m) { m.impl("ot_map_new_points", &ot_map_new_points_meta); }

}  // namespace modgap
