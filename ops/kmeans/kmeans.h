// kmeans: k-means++ initialisation and Lloyd iterations with scikit-learn's semantics.
// Schema: registration/schema.cpp. Kernel (CPU and CUDA): kmeans_kernel.cpp, with the CUDA M-step in
// kmeans_cuda.cu (its per-block body in kmeans_math.h). Meta: kmeans_meta.cpp.
#pragma once

#include <ATen/ATen.h>

#include <functional>
#include <tuple>
#include <utility>

namespace modgap {

constexpr const char* kKMeansName = "modgap::kmeans";

struct KMeansResult {
  at::Tensor centroids;  // [k, D], dtype of x
  at::Tensor labels;     // [N], int64
  at::Tensor inertia;    // float64 scalar: sum of squared distances to the assigned centroid
  int64_t iterations = 0;  // Lloyd iterations of the best initialisation
};

// Called after each initialisation finishes: (initialisation index, n_init, its iterations, its inertia).
using KMeansProgress = std::function<void(int64_t, int64_t, int64_t, double)>;

// The op's implementation with an optional progress callback (used by modgap::evaluate).
KMeansResult kmeans_fit(const at::Tensor& x, int64_t k, int64_t max_iter, double tol, int64_t n_init, int64_t seed,
                        const KMeansProgress& progress = nullptr);

std::tuple<at::Tensor, at::Tensor, at::Tensor> kmeans_kernel(const at::Tensor& x, int64_t k, int64_t max_iter,
                                                             double tol, int64_t n_init, int64_t seed);

#ifdef MODGAP_WITH_CUDA
// Per-cluster sums [k, D] and sizes [k] (int64) of the rows of x (CUDA, contiguous, float32/float64)
// under `labels` (int64, contiguous, values in [0, k)): deterministic, no atomics (kmeans_cuda.cu).
std::pair<at::Tensor, at::Tensor> cluster_sums_and_counts_cuda(const at::Tensor& x, const at::Tensor& labels,
                                                               int64_t k);
#endif

void check_kmeans_arguments(const at::Tensor& x, int64_t k, int64_t max_iter, double tol, int64_t n_init);

}  // namespace modgap
