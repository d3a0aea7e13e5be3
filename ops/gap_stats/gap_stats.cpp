// C++ API of gap_stats: calls the registered operator through the dispatcher.
#include "ops/gap_stats/gap_stats.h"

#include <ATen/core/dispatch/Dispatcher.h>

#include <modgap/modgap.h>

namespace modgap {

GapStats gap_stats(at::TensorList embeddings, bool rmg_include_diagonal) {
  static auto op = c10::Dispatcher::singleton().findSchemaOrThrow("modgap::gap_stats", "").typed<GapStats(at::TensorList, bool)>();
  TORCH_CHECK_VALUE(!embeddings.empty(), kGapStatsName, ": expected at least 2 modalities in `embeddings`, got 0");
  return op.call(embeddings, rmg_include_diagonal);
}

}  // namespace modgap
