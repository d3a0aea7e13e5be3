// shift_modalities: the post-hoc modality shift of Liang et al. (NeurIPS 2022, "Mind the Gap"), which
// the paper's Fig. 1 uses to set the gap of trained embeddings. Schema: registration/schema.cpp.
// Kernel (CPU and CUDA): shift_modalities_kernel.cpp. Meta: shift_modalities_meta.cpp.
#pragma once

#include <ATen/ATen.h>

#include <optional>
#include <tuple>

namespace modgap {

constexpr const char* kShiftModalitiesName = "modgap::shift_modalities";

std::tuple<at::Tensor, at::Tensor> shift_modalities_kernel(const at::Tensor& x, const at::Tensor& y, double delta,
                                                           const std::optional<at::Tensor>& direction);

void check_shift_modalities_arguments(const at::Tensor& x, const at::Tensor& y, double delta,
                                      const std::optional<at::Tensor>& direction);

}  // namespace modgap
