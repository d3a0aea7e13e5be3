// vmeasure: homogeneity, completeness and V-measure of a clustering. Schema: registration/schema.cpp.
// Kernel (CPU and CUDA): vmeasure_kernel.cpp. Meta: vmeasure_meta.cpp.
#pragma once

#include <ATen/ATen.h>

#include <tuple>

namespace modgap {

constexpr const char* kVMeasureName = "modgap::vmeasure";

// (homogeneity, completeness, v_measure) as float64 scalars on the labels' device.
std::tuple<at::Tensor, at::Tensor, at::Tensor> vmeasure_kernel(const at::Tensor& labels_true,
                                                               const at::Tensor& labels_pred, double beta);

}  // namespace modgap
