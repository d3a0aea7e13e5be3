// Meta (fake) kernel of gap_stats: seven M x M float64 matrices and the [M] angular values.
#include <torch/library.h>

#include "ops/common/input_checks.h"
#include "ops/gap_stats/gap_stats.h"

namespace modgap {
namespace {

GapStats gap_stats_meta(at::TensorList embeddings, bool rmg_include_diagonal) {
  check_embeddings_metadata(kGapStatsName, embeddings, /*min_rows=*/2);
  const int64_t m = static_cast<int64_t>(embeddings.size());
  const auto options = embeddings[0].options().dtype(at::kDouble);
  const auto matrix = [&] { return at::empty({m, m}, options); };
  return {matrix(), matrix(), matrix(), matrix(), matrix(), matrix(), matrix(), at::empty({m}, options)};
}

}  // namespace

TORCH_LIBRARY_IMPL(modgap, Meta, m) { m.impl("gap_stats", &gap_stats_meta); }

}  // namespace modgap
