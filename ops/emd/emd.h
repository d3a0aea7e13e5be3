// emd: exact optimal transport plan between two discrete distributions (the earth mover's distance),
// the solver under Fill the Gap's optimal-transport method (measures.md §1.4, POT's ot.emd).
// Schema: registration/schema.cpp. Kernel (CPU and CUDA inputs): emd_kernel.cpp, solver:
// network_simplex.h. Meta: emd_meta.cpp.
#pragma once

#include <ATen/ATen.h>

#include <tuple>

namespace modgap {

constexpr const char* kEmdName = "modgap::emd";

std::tuple<at::Tensor, at::Tensor> emd_kernel(const at::Tensor& a, const at::Tensor& b, const at::Tensor& M,
                                              int64_t max_iter);

void check_emd_arguments(const at::Tensor& a, const at::Tensor& b, const at::Tensor& M, int64_t max_iter);

}  // namespace modgap
