// Meta (fake) kernel of fill_gap_stats: fixed-size outputs, [2, 2] int64 counts and float64 statistics.
#include <torch/library.h>

#include "ops/fill_gap_stats/fill_gap_stats.h"

namespace modgap {
namespace {

FillGapStats fill_gap_stats_meta(const at::Tensor& x, const at::Tensor& y, int64_t k) {
  check_fill_gap_stats_arguments(x, y, k);
  const auto options = x.options().dtype(at::kDouble);
  return {at::empty({2, 2}, x.options().dtype(at::kLong)), at::empty({2}, options), at::empty({2}, options),
          at::empty({}, options)};
}

}  // namespace

TORCH_LIBRARY_IMPL(modgap, Meta, m) { m.impl("fill_gap_stats", &fill_gap_stats_meta); }

}  // namespace modgap
