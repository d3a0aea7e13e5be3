// CUDA kernels of centroid_uniformity: the O(N^2) tile epilogues. The tiling (one cuBLAS GEMM of
// centroid dot products per tile, on tensor cores for half inputs and for float32 when TF32 is
// allowed; O(N D) steps in ATen) and the backward (a scale of the saved dL/dc) are shared with the
// CPU: centroid_uniformity_tiled.h. Every launch goes to the current stream; the host reads two
// scalars per call (max |u_i|^2, which picks the gradient pass, and the loss, checked to be finite).
//
// Per tile of the gradient pass the GEMM output is read once by pair_weights_cuda_kernel, which
// writes the weights (bfloat16 for half inputs) and only O(rows + cols) partial sums; the weights
// then feed the two W u GEMMs. The GEMM and its epilogue are separate kernels, not one fused kernel:
// the tile makes one round trip through HBM (float32 dots out, weights in and out).
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

constexpr int kWarpsPerBlock = kThreadsPerBlock / kWarpSize;
constexpr int kPairWeightRowsPerBlock = 64;

// Pair weights of a tile (static-shift gradient pass): block (bx, by) owns columns
// [256 bx, 256 bx + 256) of rows [64 by, 64 by + 64); thread c owns one column. Per row the block
// writes w_ij = exp(x_ij - shift) for j > i (0 elsewhere) in weight_t, and reduces the row within
// each warp (shuffles) and then across the 8 warps (shared memory); per column the thread sums its 64
// rows. The partial sums go to [col blocks, rows] and [row blocks, cols] buffers that the host sums
// with ATen: no atomics, so the result is deterministic. `dots` and `weights` may alias (each element
// is read, then written, by the same thread), hence no __restrict__ on them.
template <typename acc_t, typename weight_t>
__global__ void pair_weights_cuda_kernel(const acc_t* dots, weight_t* weights, const acc_t* __restrict__ sq_norms,
                                         int64_t rows, int64_t cols, int64_t row0, int64_t col0, acc_t t, acc_t shift,
                                         acc_t* __restrict__ row_pair_partial, acc_t* __restrict__ row_weight_partial,
                                         acc_t* __restrict__ col_weight_partial) {
  __shared__ acc_t pair_partial_shared[kPairWeightRowsPerBlock][kWarpsPerBlock];
  __shared__ acc_t weight_partial_shared[kPairWeightRowsPerBlock][kWarpsPerBlock];
  const int lane = threadIdx.x % kWarpSize;
  const int warp = threadIdx.x / kWarpSize;
  const int64_t c = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  const bool in_tile = c < cols;
  const int64_t j = col0 + c;
  const acc_t sq_j = in_tile ? sq_norms[j] : acc_t(0);
  const int64_t r_begin = static_cast<int64_t>(blockIdx.y) * kPairWeightRowsPerBlock;
  const int64_t r_end = rows < r_begin + kPairWeightRowsPerBlock ? rows : r_begin + kPairWeightRowsPerBlock;
  acc_t col_sum = 0;
  for (int64_t r = r_begin; r < r_end; ++r) {  // the same trip count for every thread of the block
    const int64_t i = row0 + r;
    acc_t exact = 0;
    acc_t stored_value = 0;
    if (in_tile) {
      weight_t stored = static_cast<weight_t>(acc_t(0));
      if (j > i) {
        exact = cu::exp_acc<acc_t>(cu::pair_logit<acc_t>(t, sq_norms[i], sq_j, dots[r * cols + c]) - shift);
        stored = static_cast<weight_t>(exact);
        stored_value = static_cast<acc_t>(stored);
      }
      weights[r * cols + c] = stored;
    }
    col_sum += stored_value;
    for (int offset = kWarpSize / 2; offset > 0; offset /= 2) {
      exact += __shfl_down_sync(0xffffffffu, exact, offset);
      stored_value += __shfl_down_sync(0xffffffffu, stored_value, offset);
    }
    if (lane == 0) {
      pair_partial_shared[r - r_begin][warp] = exact;
      weight_partial_shared[r - r_begin][warp] = stored_value;
    }
  }
  __syncthreads();
  for (int64_t k = threadIdx.x; k < r_end - r_begin; k += blockDim.x) {
    acc_t pair_total = 0;
    acc_t weight_total = 0;
    for (int w = 0; w < kWarpsPerBlock; ++w) {
      pair_total += pair_partial_shared[k][w];
      weight_total += weight_partial_shared[k][w];
    }
    row_pair_partial[blockIdx.x * rows + r_begin + k] = pair_total;
    row_weight_partial[blockIdx.x * rows + r_begin + k] = weight_total;
  }
  if (in_tile) {
    col_weight_partial[blockIdx.y * cols + c] = col_sum;
  }
}

int grid_size_for(int64_t work_items) {
  const int64_t blocks = (work_items + kThreadsPerBlock - 1) / kThreadsPerBlock;
  return static_cast<int>(std::min<int64_t>(std::max<int64_t>(blocks, 1), 65535));
}

struct CentroidUniformityCudaEpilogue {
  // 2048 x 8192 float32 tiles (64 MiB each, three live with gradients): large enough for cuBLAS to
  // run near its peak. MODGAP_CU_CUDA_TILE=ROWSxCOLS overrides it (squarer tiles give the row-side
  // W u GEMM a larger output: a [2048, D] output is about 64 cuBLAS tiles for 132 SMs).
  static cu::TileShape tile_shape() {
    static const cu::TileShape shape = cu::tile_shape_from_environment("MODGAP_CU_CUDA_TILE", {2048, 8192});
    return shape;
  }

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

  static void pair_weights(const at::Tensor& dots, const at::Tensor& sq_norms, int64_t row0, int64_t col0, double t,
                           double shift, at::Tensor& weights, at::Tensor& pair_sum, at::Tensor& weight_sum) {
    const int64_t rows = dots.size(0);
    const int64_t cols = dots.size(1);
    const int64_t col_blocks = (cols + kThreadsPerBlock - 1) / kThreadsPerBlock;
    const int64_t row_blocks = (rows + kPairWeightRowsPerBlock - 1) / kPairWeightRowsPerBlock;
    at::Tensor row_pair_partial = at::empty({col_blocks, rows}, dots.options());
    at::Tensor row_weight_partial = at::empty({col_blocks, rows}, dots.options());
    at::Tensor col_weight_partial = at::empty({row_blocks, cols}, dots.options());
    const dim3 grid(static_cast<unsigned>(col_blocks), static_cast<unsigned>(row_blocks));
    const auto stream = at::cuda::getCurrentCUDAStream();
    const auto launch = [&](auto acc_zero, auto weight_zero) {
      using acc_t = decltype(acc_zero);
      using weight_t = decltype(weight_zero);
      pair_weights_cuda_kernel<acc_t, weight_t><<<grid, kThreadsPerBlock, 0, stream>>>(
          dots.const_data_ptr<acc_t>(), weights.mutable_data_ptr<weight_t>(), sq_norms.const_data_ptr<acc_t>(), rows,
          cols, row0, col0, static_cast<acc_t>(t), static_cast<acc_t>(shift), row_pair_partial.mutable_data_ptr<acc_t>(),
          row_weight_partial.mutable_data_ptr<acc_t>(), col_weight_partial.mutable_data_ptr<acc_t>());
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    };
    if (weights.scalar_type() == at::kBFloat16) {  // half inputs: float32 dots, bfloat16 weights
      launch(float{}, at::BFloat16{});
    } else {
      AT_DISPATCH_FLOATING_TYPES(dots.scalar_type(), "centroid_uniformity_pair_weights_cuda",
                                 [&] { launch(scalar_t{}, scalar_t{}); });
    }
    pair_sum.narrow(0, row0, rows).add_(row_pair_partial.sum(0));
    weight_sum.narrow(0, row0, rows).add_(row_weight_partial.sum(0));
    weight_sum.narrow(0, col0, cols).add_(col_weight_partial.sum(0));
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
