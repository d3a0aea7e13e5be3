// emd_laplace: "Fill the Gap"'s optimal-transport method (measures.md §1.4): POT's EMDLaplaceTransport,
// an exact transport plan regularised by kNN-graph Laplacians, fitted by conditional gradient, and the
// barycentric map that moves the source points (images) onto the target distribution (texts).
// Schema: registration/schema.cpp. Kernel (CPU and CUDA inputs): emd_laplace_kernel.cpp (inner solver:
// ops/emd/network_simplex.h). Meta: emd_laplace_meta.cpp.
#pragma once

#include <ATen/ATen.h>

#include <string>
#include <tuple>

namespace modgap {

constexpr const char* kEmdLaplaceName = "modgap::emd_laplace";

std::tuple<at::Tensor, at::Tensor> emd_laplace_kernel(const at::Tensor& xs, const at::Tensor& xt, double reg_lap,
                                                      double reg_src, int64_t k, c10::string_view reg_type,
                                                      int64_t max_iter, double tol, int64_t max_inner_iter,
                                                      double inner_tol);

void check_emd_laplace_arguments(const at::Tensor& xs, const at::Tensor& xt, double reg_lap, double reg_src, int64_t k,
                                 c10::string_view reg_type, int64_t max_iter, double tol, int64_t max_inner_iter,
                                 double inner_tol);

}  // namespace modgap
