// CUDA kernels of centroid_uniformity: the two O(N^2) tile epilogues. The tiling (cuBLAS GEMM per
// tile, O(N D) steps in ATen) and the backward (a scale of the saved dL/dc) are shared with the CPU:
// centroid_uniformity_tiled.h. Every launch goes to the current stream; the only host
// synchronisation is reading the loss to check it is finite.
//
// These kernels are the correct, straightforward version: fp32/fp64 GEMMs through cuBLAS plus a
// fused epilogue. The fused tensor-core kernels for CLIP-scale batches are tracked separately.
#include <ATen/cuda/CUDAContext.h>
#include <c10/core/DeviceGuard.h>
#include <torch/library.h>

#include "ops/centroid_uniformity/centroid_uniformity.h"
#include "ops/centroid_uniformity/centroid_uniformity_math.h"
#include "ops/centroid_uniformity/centroid_uniformity_tiled.h"
#include "ops/common/input_checks.h"

namespace modgap {
namespace {

constexpr int kWarpSize = 32;
constexpr int kThreadsPerBlock = 256;

// One warp per tile row: each lane folds the logits of its columns (pairs j > i only) into a
// running (max, sum), the warp merges the 32 states, lane 0 merges into the row's global state.
// A row is touched by one warp of one launch at a time (launches are ordered on the stream).
template <typename acc_t>
__global__ void row_logsumexp_cuda_kernel(const acc_t* __restrict__ dots, const acc_t* __restrict__ sq_norms,
                                          int64_t rows, int64_t cols, int64_t row0, int64_t col0, acc_t t,
                                          acc_t* __restrict__ row_max, acc_t* __restrict__ row_sum) {
  const int64_t r = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / kWarpSize;
  const int lane = threadIdx.x % kWarpSize;
  if (r >= rows) {
    return;  // whole warp
  }
  const int64_t i = row0 + r;
  const int64_t first = (col0 > i + 1 ? col0 : i + 1) - col0;
  const acc_t* dot_row = dots + r * cols;
  const acc_t sq_i = sq_norms[i];
  acc_t running_max = -INFINITY;
  acc_t running_sum = 0;
  for (int64_t c = first + lane; c < cols; c += kWarpSize) {
    const acc_t x = cu::pair_logit<acc_t>(t, sq_i, sq_norms[col0 + c], dot_row[c]);
    cu::online_logsumexp_merge<acc_t>(running_max, running_sum, x, acc_t(1));
  }
  for (int offset = kWarpSize / 2; offset > 0; offset /= 2) {
    const acc_t other_max = __shfl_down_sync(0xffffffffu, running_max, offset);
    const acc_t other_sum = __shfl_down_sync(0xffffffffu, running_sum, offset);
    cu::online_logsumexp_merge<acc_t>(running_max, running_sum, other_max, other_sum);
  }
  if (lane == 0) {
    cu::online_logsumexp_merge<acc_t>(row_max[i], row_sum[i], running_max, running_sum);
  }
}

// x_ij = -t d_ij for the pairs j > i, -inf elsewhere, written over the tile of dot products.
template <typename acc_t>
__global__ void pair_logits_cuda_kernel(acc_t* __restrict__ tile, const acc_t* __restrict__ sq_norms, int64_t rows,
                                        int64_t cols, int64_t row0, int64_t col0, acc_t t) {
  const int64_t numel = rows * cols;
  for (int64_t index = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; index < numel;
       index += static_cast<int64_t>(blockDim.x) * gridDim.x) {
    const int64_t i = row0 + index / cols;
    const int64_t j = col0 + index % cols;
    tile[index] = j > i ? cu::pair_logit<acc_t>(t, sq_norms[i], sq_norms[j], tile[index]) : acc_t(-INFINITY);
  }
}

int grid_size_for(int64_t work_items) {
  const int64_t blocks = (work_items + kThreadsPerBlock - 1) / kThreadsPerBlock;
  return static_cast<int>(std::min<int64_t>(std::max<int64_t>(blocks, 1), 65535));
}

struct CentroidUniformityCudaEpilogue {
  // 2048 x 8192 float32 tiles (64 MiB each, three live with gradients): large enough for cuBLAS to
  // run near its peak.
  static constexpr int64_t kTileRows = 2048;
  static constexpr int64_t kTileCols = 8192;

  static void row_logsumexp(const at::Tensor& tile, const at::Tensor& sq_norms, int64_t row0, int64_t col0,
                            double t, at::Tensor& row_max, at::Tensor& row_sum) {
    const int64_t rows = tile.size(0);
    const int64_t cols = tile.size(1);
    const auto stream = at::cuda::getCurrentCUDAStream();
    AT_DISPATCH_FLOATING_TYPES(tile.scalar_type(), "centroid_uniformity_row_logsumexp_cuda", [&] {
      const int64_t threads = rows * kWarpSize;
      const int blocks = static_cast<int>((threads + kThreadsPerBlock - 1) / kThreadsPerBlock);
      row_logsumexp_cuda_kernel<scalar_t><<<blocks, kThreadsPerBlock, 0, stream>>>(
          tile.const_data_ptr<scalar_t>(), sq_norms.const_data_ptr<scalar_t>(), rows, cols, row0, col0,
          static_cast<scalar_t>(t), row_max.mutable_data_ptr<scalar_t>(), row_sum.mutable_data_ptr<scalar_t>());
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
  }

  static void pair_logits(at::Tensor& tile, const at::Tensor& sq_norms, int64_t row0, int64_t col0, double t) {
    const int64_t rows = tile.size(0);
    const int64_t cols = tile.size(1);
    const auto stream = at::cuda::getCurrentCUDAStream();
    AT_DISPATCH_FLOATING_TYPES(tile.scalar_type(), "centroid_uniformity_pair_logits_cuda", [&] {
      pair_logits_cuda_kernel<scalar_t><<<grid_size_for(rows * cols), kThreadsPerBlock, 0, stream>>>(
          tile.mutable_data_ptr<scalar_t>(), sq_norms.const_data_ptr<scalar_t>(), rows, cols, row0, col0,
          static_cast<scalar_t>(t));
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
  }
};

}  // namespace

std::tuple<at::Tensor, at::Tensor> centroid_uniformity_forward_cuda(at::TensorList embeddings, double t,
                                                                    bool normalize, bool compute_grad) {
  // A generic guard: a CPU tensor among CUDA ones must reach the device-mismatch check, which a
  // CUDAGuard would pre-empt with its own error.
  const c10::DeviceGuard device_guard(embeddings[0].device());
  return cu::centroid_uniformity_forward_checked<CentroidUniformityCudaEpilogue>(embeddings, t, normalize, compute_grad);
}

namespace {
at::Tensor centroid_uniformity_cuda(at::TensorList embeddings, double t, bool normalize) {
  return std::get<0>(centroid_uniformity_forward_cuda(embeddings, t, normalize, /*compute_grad=*/false));
}
}  // namespace

TORCH_LIBRARY_IMPL(modgap, CUDA, m) {
  m.impl("centroid_uniformity", &centroid_uniformity_cuda);
  m.impl("_centroid_uniformity_forward", &centroid_uniformity_forward_cuda);
  m.impl("_centroid_uniformity_backward", &centroid_uniformity_backward_kernel);
}

}  // namespace modgap
