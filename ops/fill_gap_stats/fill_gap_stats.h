// fill_gap_stats: the modality-gap measures of "Fill the Gap" (Role, Meyer, Amblard 2025) on the mixed
// image + text collection. Schema: registration/schema.cpp. Kernel (CPU and CUDA):
// fill_gap_stats_kernel.cpp. Meta: fill_gap_stats_meta.cpp.
#pragma once

#include <ATen/ATen.h>

#include <tuple>

namespace modgap {

constexpr const char* kFillGapStatsName = "modgap::fill_gap_stats";

// (neighbour_counts [2, 2] int64, neighbour_ratios [2] float64 (ITR, TIR), mean_ranks [2] float64
// (TMR, IMR), fid [] float64).
using FillGapStats = std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor>;

FillGapStats fill_gap_stats_kernel(const at::Tensor& x, const at::Tensor& y, int64_t k);

// Argument checks shared by the kernel and the Meta kernel (no data read).
void check_fill_gap_stats_arguments(const at::Tensor& x, const at::Tensor& y, int64_t k);

}  // namespace modgap
