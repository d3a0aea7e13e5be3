// gap_stats: modality-gap statistics for every pair of M modalities. Schema: registration/schema.cpp.
// Kernel (CPU and CUDA): gap_stats_kernel.cpp. Meta: gap_stats_meta.cpp.
#pragma once

#include <ATen/ATen.h>

#include <tuple>

namespace modgap {

constexpr const char* kGapStatsName = "modgap::gap_stats";

// (gap, cos_tp_mean, cos_tp_var, pair_distance_mean, pair_distance_var, rmg, centroid_cosine) as M x M
// float64 matrices, and angular_value [M].
using GapStats = std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor,
                            at::Tensor>;

GapStats gap_stats_kernel(at::TensorList embeddings, bool rmg_include_diagonal);

}  // namespace modgap
