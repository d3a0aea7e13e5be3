// CUDA kernels of atp_loss (eq. 7). One launch per non-anchor modality: no device array of
// modality pointers is needed and the reduction order is fixed (deterministic).
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "ops/atp_loss/atp_loss.h"
#include "ops/atp_loss/atp_loss_math.h"
#include "ops/common/dispatch.h"
#include "ops/common/input_checks.h"
#include "ops/common/tensor_utils.h"

namespace modgap {
namespace {

constexpr int kWarpSize = 32;
constexpr int kThreadsPerBlock = 256;

// row_sums[i] += ||z_i^m - z_i^a||^2, one warp per row.
template <typename scalar_t, typename acc_t>
__global__ void atp_row_squared_distance_kernel(const scalar_t* __restrict__ z_m, const scalar_t* __restrict__ z_a,
                                                int64_t rows, int64_t dim, acc_t* __restrict__ row_sums) {
  const int64_t row = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) / kWarpSize;
  const int lane = threadIdx.x % kWarpSize;
  if (row >= rows) {
    return;
  }
  acc_t sum = 0;
  for (int64_t d = lane; d < dim; d += kWarpSize) {
    sum += atp::squared_difference<acc_t>(static_cast<acc_t>(z_m[row * dim + d]), static_cast<acc_t>(z_a[row * dim + d]));
  }
  for (int offset = kWarpSize / 2; offset > 0; offset /= 2) {
    sum += __shfl_down_sync(0xffffffffu, sum, offset);
  }
  if (lane == 0) {
    row_sums[row] += sum;
  }
}

// grad_m = 2 g s (z^m - z^a); the anchor's gradient accumulates -grad_m in the accumulation dtype.
template <typename scalar_t, typename acc_t>
__global__ void atp_non_anchor_gradient_kernel(const scalar_t* __restrict__ z_m, const scalar_t* __restrict__ z_a,
                                               int64_t numel, const scalar_t* __restrict__ grad_output, acc_t scale,
                                               scalar_t* __restrict__ grad_m, acc_t* __restrict__ grad_anchor) {
  const acc_t grad_times_scale = static_cast<acc_t>(*grad_output) * scale;
  for (int64_t index = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; index < numel;
       index += static_cast<int64_t>(blockDim.x) * gridDim.x) {
    const acc_t g = atp::non_anchor_gradient<acc_t>(static_cast<acc_t>(z_m[index]), static_cast<acc_t>(z_a[index]),
                                                    grad_times_scale);
    grad_m[index] = static_cast<scalar_t>(g);
    grad_anchor[index] -= g;
  }
}

int grid_size_for(int64_t work_items) {
  const int64_t blocks = (work_items + kThreadsPerBlock - 1) / kThreadsPerBlock;
  return static_cast<int>(std::min<int64_t>(std::max<int64_t>(blocks, 1), 65535));
}

}  // namespace

at::Tensor atp_loss_forward_cuda(at::TensorList embeddings, int64_t anchor) {
  check_embeddings_metadata(kAtpLossName, embeddings, /*min_rows=*/1);
  check_anchor(kAtpLossName, anchor, static_cast<int64_t>(embeddings.size()));
  const c10::cuda::CUDAGuard device_guard(embeddings[0].device());
  const auto z = contiguous_embeddings(embeddings);
  const int64_t num_modalities = static_cast<int64_t>(z.size());
  const int64_t rows = z[0].size(0);
  const int64_t dim = z[0].size(1);
  const auto stream = at::cuda::getCurrentCUDAStream();
  at::Tensor accumulated_loss;
  MODGAP_DISPATCH_FLOATING_TYPES(z[0].scalar_type(), "atp_loss_forward_cuda", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    at::Tensor row_sums = at::zeros({rows}, z[0].options().dtype(c10::CppTypeToScalarType<acc_t>::value));
    const int blocks = static_cast<int>((rows * kWarpSize + kThreadsPerBlock - 1) / kThreadsPerBlock);
    for (int64_t m = 0; m < num_modalities; ++m) {
      if (m == anchor) {
        continue;
      }
      atp_row_squared_distance_kernel<scalar_t, acc_t><<<blocks, kThreadsPerBlock, 0, stream>>>(
          z[m].const_data_ptr<scalar_t>(), z[anchor].const_data_ptr<scalar_t>(), rows, dim,
          row_sums.mutable_data_ptr<acc_t>());
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    }
    accumulated_loss = row_sums.sum() * atp::loss_scale<double>(num_modalities, rows);
  });
  const at::Tensor loss = accumulated_loss.to(z[0].scalar_type());
  check_loss_is_finite(kAtpLossName, loss, embeddings, accumulated_loss);
  return loss;
}

std::vector<at::Tensor> atp_loss_backward_cuda(const at::Tensor& grad_output, at::TensorList embeddings,
                                               int64_t anchor) {
  check_embeddings_metadata("modgap::_atp_loss_backward", embeddings, /*min_rows=*/1);
  check_anchor("modgap::_atp_loss_backward", anchor, static_cast<int64_t>(embeddings.size()));
  check_grad_output("modgap::_atp_loss_backward", grad_output, embeddings[0]);
  const c10::cuda::CUDAGuard device_guard(embeddings[0].device());
  const auto z = contiguous_embeddings(embeddings);
  const int64_t num_modalities = static_cast<int64_t>(z.size());
  const int64_t rows = z[0].size(0);
  const int64_t numel = z[0].numel();
  const auto stream = at::cuda::getCurrentCUDAStream();
  std::vector<at::Tensor> grads(num_modalities);
  MODGAP_DISPATCH_FLOATING_TYPES(z[0].scalar_type(), "atp_loss_backward_cuda", [&] {
    using acc_t = at::opmath_type<scalar_t>;
    const at::Tensor grad_scalar = grad_output.to(z[0].scalar_type()).contiguous();
    at::Tensor grad_anchor = at::zeros(z[0].sizes(), z[0].options().dtype(c10::CppTypeToScalarType<acc_t>::value));
    const acc_t scale = static_cast<acc_t>(atp::loss_scale<double>(num_modalities, rows));
    for (int64_t m = 0; m < num_modalities; ++m) {
      if (m == anchor) {
        continue;
      }
      grads[m] = at::empty_like(z[m], at::MemoryFormat::Contiguous);
      atp_non_anchor_gradient_kernel<scalar_t, acc_t><<<grid_size_for(numel), kThreadsPerBlock, 0, stream>>>(
          z[m].const_data_ptr<scalar_t>(), z[anchor].const_data_ptr<scalar_t>(), numel,
          grad_scalar.const_data_ptr<scalar_t>(), scale, grads[m].mutable_data_ptr<scalar_t>(),
          grad_anchor.mutable_data_ptr<acc_t>());
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    }
    grads[anchor] = grad_anchor.to(z[0].scalar_type());
  });
  return grads;
}

TORCH_LIBRARY_IMPL(modgap, CUDA, m) {
  m.impl("atp_loss", &atp_loss_forward_cuda);
  m.impl("_atp_loss_backward", &atp_loss_backward_cuda);
}

}  // namespace modgap
