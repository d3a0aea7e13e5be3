// C++ API of fill_gap_stats: calls the registered operator through the dispatcher.
#include "ops/fill_gap_stats/fill_gap_stats.h"

#include <ATen/core/dispatch/Dispatcher.h>

#include <modgap/modgap.h>

namespace modgap {

FillGapStats fill_gap_stats(const at::Tensor& x, const at::Tensor& y, int64_t k) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("modgap::fill_gap_stats", "")
                       .typed<FillGapStats(const at::Tensor&, const at::Tensor&, int64_t)>();
  return op.call(x, y, k);
}

}  // namespace modgap
