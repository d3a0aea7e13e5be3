// CUDA kernel of k-means' M-step: the per-cluster sums and sizes of a Lloyd iteration, deterministic
// (no atomics). The rest of kmeans is one ATen implementation for both devices (kmeans_kernel.cpp); on
// CUDA it calls cluster_sums_and_counts_cuda once per Lloyd iteration.
//
// Why a kernel of its own: the ATen form, a one-hot [N, k] times x GEMM, is a [k, N] x [N, D] product
// with a long reduction dimension and a tiny output (20 x 512 for the benchmark's k = 20), the shape
// GEMM libraries serve worst; this pass reads x once, like the assignment GEMM before it. Each block
// sums its rows into shared memory when its [k, D] sums fit there (48 KiB), else into its own slice of
// the global partial buffer; the body is kmeans_math::accumulate_block_cluster_sums (kmeans_math.h), which
// the GoogleTest suite runs on the CPU block by block.
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>

#include "ops/kmeans/kmeans.h"
#include "ops/kmeans/kmeans_math.h"

namespace modgap {
namespace {

constexpr int kClusterSumThreads = 256;
constexpr int64_t kSharedBudgetBytes = 48 * 1024;  // the default dynamic shared memory limit

template <typename scalar_t, bool kInShared>
__global__ void cluster_partial_sums_cuda_kernel(const scalar_t* __restrict__ x, const int64_t* __restrict__ labels,
                                                 int64_t n, int64_t k, int64_t d, int64_t rows_per_block,
                                                 scalar_t* __restrict__ partial_sums,
                                                 int64_t* __restrict__ partial_counts) {
  // int64 first, then scalar_t: both stay aligned in the dynamic buffer.
  extern __shared__ int64_t shared_counts_and_sums[];
  scalar_t* block_sums_global = partial_sums + static_cast<int64_t>(blockIdx.x) * k * d;
  int64_t* block_counts_global = partial_counts + static_cast<int64_t>(blockIdx.x) * k;
  if constexpr (kInShared) {
    int64_t* counts = shared_counts_and_sums;
    scalar_t* sums = reinterpret_cast<scalar_t*>(counts + k);
    for (int64_t e = threadIdx.x; e < k * d; e += blockDim.x) {
      sums[e] = scalar_t(0);
    }
    for (int64_t e = threadIdx.x; e < k; e += blockDim.x) {
      counts[e] = 0;
    }
    __syncthreads();
    kmeans_math::accumulate_block_cluster_sums<scalar_t>(x, labels, n, d, rows_per_block, blockIdx.x, threadIdx.x,
                                                    blockDim.x, sums, counts);
    __syncthreads();
    for (int64_t e = threadIdx.x; e < k * d; e += blockDim.x) {
      block_sums_global[e] = sums[e];
    }
    for (int64_t e = threadIdx.x; e < k; e += blockDim.x) {
      block_counts_global[e] = counts[e];
    }
  } else {
    // The host zeroed the partial buffers.
    kmeans_math::accumulate_block_cluster_sums<scalar_t>(x, labels, n, d, rows_per_block, blockIdx.x, threadIdx.x,
                                                    blockDim.x, block_sums_global, block_counts_global);
  }
}

}  // namespace

std::pair<at::Tensor, at::Tensor> cluster_sums_and_counts_cuda(const at::Tensor& x, const at::Tensor& labels,
                                                               int64_t k) {
  TORCH_INTERNAL_ASSERT(x.is_cuda() && x.dim() == 2 && x.is_contiguous());
  TORCH_INTERNAL_ASSERT(labels.scalar_type() == at::kLong && labels.is_contiguous() && labels.size(0) == x.size(0));
  const c10::cuda::CUDAGuard device_guard(x.device());
  const int64_t n = x.size(0);
  const int64_t d = x.size(1);
  const int64_t blocks = kmeans_math::cluster_sum_blocks(n, k, d);
  const int64_t rows_per_block = (n + blocks - 1) / blocks;
  const int64_t shared_bytes = k * static_cast<int64_t>(sizeof(int64_t)) + k * d * x.element_size();
  const bool in_shared = shared_bytes <= kSharedBudgetBytes;
  // Shared-memory blocks write their whole slice; the others add into it.
  at::Tensor partial_sums = in_shared ? at::empty({blocks, k, d}, x.options()) : at::zeros({blocks, k, d}, x.options());
  at::Tensor partial_counts = in_shared ? at::empty({blocks, k}, labels.options()) : at::zeros({blocks, k}, labels.options());
  const auto stream = at::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "kmeans_cluster_sums_cuda", [&] {
    if (in_shared) {
      cluster_partial_sums_cuda_kernel<scalar_t, true>
          <<<static_cast<unsigned>(blocks), kClusterSumThreads, static_cast<size_t>(shared_bytes), stream>>>(
              x.const_data_ptr<scalar_t>(), labels.const_data_ptr<int64_t>(), n, k, d, rows_per_block,
              partial_sums.mutable_data_ptr<scalar_t>(), partial_counts.mutable_data_ptr<int64_t>());
    } else {
      cluster_partial_sums_cuda_kernel<scalar_t, false><<<static_cast<unsigned>(blocks), kClusterSumThreads, 0, stream>>>(
          x.const_data_ptr<scalar_t>(), labels.const_data_ptr<int64_t>(), n, k, d, rows_per_block,
          partial_sums.mutable_data_ptr<scalar_t>(), partial_counts.mutable_data_ptr<int64_t>());
    }
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  // Block order: a fixed reduction, so the same labels give bit-identical sums.
  return {partial_sums.sum(0), partial_counts.sum(0)};
}

}  // namespace modgap
