// CPU kernels of atp_loss (eq. 7). Rows are split into fixed-size blocks processed in parallel; each
// block's partial sum goes to its own slot and the slots are added in order, so the result does not
// depend on the number of threads.
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <vector>

#include "ops/atp_loss/atp_loss.h"
#include "ops/atp_loss/atp_loss_math.h"
#include "ops/common/dispatch.h"
#include "ops/common/input_checks.h"
#include "ops/common/tensor_utils.h"

namespace modgap {
namespace {

constexpr int64_t kRowsPerBlock = 64;

template <typename scalar_t>
at::Tensor atp_loss_forward_cpu_kernel(const std::vector<at::Tensor>& z, int64_t anchor) {
  using acc_t = at::opmath_type<scalar_t>;
  const int64_t num_modalities = static_cast<int64_t>(z.size());
  const int64_t num_rows = z[0].size(0);
  const int64_t dim = z[0].size(1);
  std::vector<const scalar_t*> data(num_modalities);
  for (int64_t m = 0; m < num_modalities; ++m) {
    data[m] = z[m].const_data_ptr<scalar_t>();
  }
  const scalar_t* anchor_data = data[anchor];

  const int64_t num_blocks = (num_rows + kRowsPerBlock - 1) / kRowsPerBlock;
  std::vector<double> block_sums(num_blocks, 0.0);
  at::parallel_for(0, num_blocks, 1, [&](int64_t block_begin, int64_t block_end) {
    for (int64_t block = block_begin; block < block_end; ++block) {
      const int64_t row_end = std::min(num_rows, (block + 1) * kRowsPerBlock);
      acc_t block_sum = 0;
      for (int64_t m = 0; m < num_modalities; ++m) {
        if (m == anchor) {
          continue;
        }
        for (int64_t i = block * kRowsPerBlock; i < row_end; ++i) {
          const scalar_t* zm = data[m] + i * dim;
          const scalar_t* za = anchor_data + i * dim;
          acc_t row_sum = 0;
          for (int64_t d = 0; d < dim; ++d) {
            row_sum += atp::squared_difference<acc_t>(static_cast<acc_t>(zm[d]), static_cast<acc_t>(za[d]));
          }
          block_sum += row_sum;
        }
      }
      block_sums[block] = static_cast<double>(block_sum);
    }
  });
  double total = 0.0;
  for (double s : block_sums) {
    total += s;
  }
  // The loss in float64 (the sum above); the caller casts it to the embeddings' dtype after its check.
  return at::scalar_tensor(total * atp::loss_scale<double>(num_modalities, num_rows), z[0].options().dtype(at::kDouble));
}

template <typename scalar_t>
std::vector<at::Tensor> atp_loss_backward_cpu_kernel(const at::Tensor& grad_output,
                                                     const std::vector<at::Tensor>& z, int64_t anchor) {
  using acc_t = at::opmath_type<scalar_t>;
  const int64_t num_modalities = static_cast<int64_t>(z.size());
  const int64_t num_rows = z[0].size(0);
  const int64_t dim = z[0].size(1);
  const acc_t grad_times_scale =
      static_cast<acc_t>(grad_output.item<double>() * atp::loss_scale<double>(num_modalities, num_rows));

  std::vector<at::Tensor> grads;
  std::vector<const scalar_t*> data(num_modalities);
  std::vector<scalar_t*> grad_data(num_modalities);
  for (int64_t m = 0; m < num_modalities; ++m) {
    grads.push_back(at::empty_like(z[m], at::MemoryFormat::Contiguous));
    data[m] = z[m].const_data_ptr<scalar_t>();
    grad_data[m] = grads[m].mutable_data_ptr<scalar_t>();
  }
  at::parallel_for(0, num_rows, kRowsPerBlock, [&](int64_t row_begin, int64_t row_end) {
    for (int64_t i = row_begin; i < row_end; ++i) {
      const int64_t offset = i * dim;
      for (int64_t d = 0; d < dim; ++d) {
        const acc_t za = static_cast<acc_t>(data[anchor][offset + d]);
        acc_t anchor_grad = 0;
        for (int64_t m = 0; m < num_modalities; ++m) {
          if (m == anchor) {
            continue;
          }
          const acc_t g = atp::non_anchor_gradient<acc_t>(static_cast<acc_t>(data[m][offset + d]), za,
                                                          grad_times_scale);
          grad_data[m][offset + d] = static_cast<scalar_t>(g);
          anchor_grad -= g;
        }
        grad_data[anchor][offset + d] = static_cast<scalar_t>(anchor_grad);
      }
    }
  });
  return grads;
}

}  // namespace

at::Tensor atp_loss_forward_cpu(at::TensorList embeddings, int64_t anchor) {
  check_embeddings_metadata(kAtpLossName, embeddings, /*min_rows=*/1);
  check_anchor(kAtpLossName, anchor, static_cast<int64_t>(embeddings.size()));
  const auto z = contiguous_embeddings(embeddings);
  at::Tensor accumulated_loss;
  MODGAP_DISPATCH_FLOATING_TYPES(z[0].scalar_type(), "atp_loss_forward_cpu",
                                 [&] { accumulated_loss = atp_loss_forward_cpu_kernel<scalar_t>(z, anchor); });
  const at::Tensor loss = accumulated_loss.to(z[0].scalar_type());
  check_loss_is_finite(kAtpLossName, loss, embeddings, accumulated_loss);
  return loss;
}

std::vector<at::Tensor> atp_loss_backward_cpu(const at::Tensor& grad_output, at::TensorList embeddings,
                                              int64_t anchor) {
  check_embeddings_metadata("modgap::_atp_loss_backward", embeddings, /*min_rows=*/1);
  check_anchor("modgap::_atp_loss_backward", anchor, static_cast<int64_t>(embeddings.size()));
  check_grad_output("modgap::_atp_loss_backward", grad_output, embeddings[0]);
  const auto z = contiguous_embeddings(embeddings);
  std::vector<at::Tensor> grads;
  MODGAP_DISPATCH_FLOATING_TYPES(z[0].scalar_type(), "atp_loss_backward_cpu",
                                 [&] { grads = atp_loss_backward_cpu_kernel<scalar_t>(grad_output, z, anchor); });
  return grads;
}

TORCH_LIBRARY_IMPL(modgap, CPU, m) {
  m.impl("atp_loss", &atp_loss_forward_cpu);
  m.impl("_atp_loss_backward", &atp_loss_backward_cpu);
}

}  // namespace modgap
