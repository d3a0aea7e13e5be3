// ot_map_new_points for CPU and CUDA tensors (one ATen implementation registered for both keys).
//
// POT's out-of-sample transform (BaseTransport.transform when Xs is not the fitted Xs): nearest fitted
// source by squared Euclidean distance (-2 x xs^T + |x|^2 + |xs|^2, the first index on ties, as numpy's
// argmin), then T(x) = xs_transported[i*] + x - xs[i*]. Rows of x in tiles, so no [rows(x), rows(xs)]
// buffer beyond one tile. Arithmetic in float32 (float64 for float64 inputs); the output has x's dtype.
#include <torch/library.h>

#include "ops/common/evaluation_utils.h"
#include "ops/common/input_checks.h"
#include "ops/ot_map_new_points/ot_map_new_points.h"

namespace modgap {

void check_ot_map_new_points_arguments(const at::Tensor& x, const at::Tensor& xs, const at::Tensor& xs_transported) {
  check_matrix(kOtMapNewPointsName, "x", x, /*min_rows=*/0);
  check_matrix(kOtMapNewPointsName, "xs", xs, /*min_rows=*/1);
  check_matrix(kOtMapNewPointsName, "xs_transported", xs_transported, /*min_rows=*/1);
  check_same_columns(kOtMapNewPointsName, "xs", xs, "x", x);
  check_same_columns(kOtMapNewPointsName, "xs", xs, "xs_transported", xs_transported);
  TORCH_CHECK_VALUE(xs_transported.sym_size(0) == xs.sym_size(0), kOtMapNewPointsName,
                    ": `xs_transported` must hold one transported row per fitted source (", xs.sym_size(0),
                    " rows of `xs`), got ", xs_transported.sym_size(0));
}

at::Tensor ot_map_new_points_kernel(const at::Tensor& x, const at::Tensor& xs, const at::Tensor& xs_transported) {
  check_ot_map_new_points_arguments(x, xs, xs_transported);
  check_finite(kOtMapNewPointsName, "x", x);
  check_finite(kOtMapNewPointsName, "xs", xs);
  check_finite(kOtMapNewPointsName, "xs_transported", xs_transported);
  const auto dtype = eval::compute_dtype(x.scalar_type());
  const at::Tensor points = x.to(dtype);
  const at::Tensor sources = xs.to(dtype);
  const at::Tensor displacement = xs_transported.to(dtype) - sources;  // T(xs_i) - xs_i
  const at::Tensor source_sq = sources.square().sum(1);
  at::Tensor out = at::empty_like(points, at::MemoryFormat::Contiguous);
  const int64_t rows = eval::tile_rows(sources.size(0), x.device());
  for (int64_t start = 0; start < points.size(0); start += rows) {
    const int64_t len = std::min(rows, points.size(0) - start);
    const at::Tensor tile = points.narrow(0, start, len);
    const at::Tensor nearest = eval::squared_distances(tile, sources, source_sq).argmin(1);
    out.narrow(0, start, len).copy_(tile + displacement.index_select(0, nearest));
  }
  return out.to(x.scalar_type());
}

TORCH_LIBRARY_IMPL(modgap, CPU, m) { m.impl("ot_map_new_points", &ot_map_new_points_kernel); }
TORCH_LIBRARY_IMPL(modgap, CUDA, m) { m.impl("ot_map_new_points", &ot_map_new_points_kernel); }

}  // namespace modgap
