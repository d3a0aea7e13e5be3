// Kernels of cross_uniformity, one for every device: Fahim et al.'s cross-modal uniformity
//   L_xunif = log( 1/P sum_{(i, j)} exp(-t ||x_i - y_j||^2) )
// over the pairs of a row of x and a row of y; with exclude_diagonal (their definition, the NotAGap
// baseline of the paper's Tables 2 and 4) the true pairs i = j are left out and P = N(N-1), otherwise
// every pair counts and P = N_x N_y (x and y may then have different row counts).
//
// No N x N buffer. The pairs are visited in tiles: one GEMM x_rows . y_cols^T per tile, turned into the
// logits -t d_ij = t min(2 x_i.y_j - |x_i|^2 - |y_j|^2, 0) (the distance is clamped at 0: rounding can
// make it slightly negative for near-identical points) and reduced per row of x with a max-shifted
// (online) log-sum-exp, so nothing overflows or underflows for large t or far-apart points.
//
// Backward, with S = log sum_pairs exp(-t d_ij) (the forward's log_pair_sum) and the pair weights
// w_ij = exp(-t d_ij - S), which sum to 1:
//   dL/dx_i = -2 t ( r_i x_i - sum_j w_ij y_j ),   r_i = sum_j w_ij
//   dL/dy_j = -2 t ( c_j y_j - sum_i w_ij x_i ),   c_j = sum_i w_ij
// in a second tiled pass (the weights are at most 1, so it needs no running maximum).
//
// The tile operations are ATen's (BLAS / cuBLAS GEMMs and elementwise kernels), so the one kernel serves
// the CPU and CUDA: this is a baseline, not the fused path centroid_uniformity has. Half inputs are
// computed in float32, float64 in float64; the loss comes back in the input dtype.
#include <torch/library.h>

#include <cmath>
#include <limits>

#include "ops/centroid_uniformity/centroid_uniformity_tiled.h"
#include "ops/common/input_checks.h"
#include "ops/cross_uniformity/cross_uniformity.h"

namespace modgap {

void check_cross_uniformity_arguments(const char* op, const at::Tensor& x, const at::Tensor& y, double t,
                                      bool exclude_diagonal) {
  // Leaving out the true pairs needs at least one other row.
  const int64_t min_rows = exclude_diagonal ? 2 : 1;
  check_matrix(op, "x", x, min_rows);
  check_matrix(op, "y", y, min_rows);
  check_same_columns(op, "x", x, "y", y);
  TORCH_CHECK_VALUE(!exclude_diagonal || x.sym_size(0) == y.sym_size(0), op,
                    ": with exclude_diagonal=True, x and y are paired row by row and must have the same number of "
                    "rows, got ",
                    x.sym_size(0), " and ", y.sym_size(0),
                    "; pass exclude_diagonal=False for every pair of two unpaired sets");
  check_temperature(op, t);
}

namespace {

// Rows x columns of a tile of pairs: 4 MiB of float32 on the CPU, 64 MiB on a GPU (as centroid_uniformity).
cu::TileShape cross_uniformity_tile_shape(const at::Device& device) {
  return device.is_cpu() ? cu::TileShape{512, 2048} : cu::TileShape{2048, 8192};
}

struct CrossOperands {
  at::Tensor x;     // [N_x, D] in the accumulation dtype
  at::Tensor y;     // [N_y, D]
  at::Tensor sq_x;  // [N_x] |x_i|^2
  at::Tensor sq_y;  // [N_y] |y_j|^2
};

CrossOperands make_operands(const at::Tensor& x, const at::Tensor& y) {
  const auto acc_dtype = cu::accumulation_dtype(x.scalar_type());
  CrossOperands operands;
  operands.x = x.to(acc_dtype).contiguous();
  operands.y = y.to(acc_dtype).contiguous();
  operands.sq_x = operands.x.square().sum(1);
  operands.sq_y = operands.y.square().sum(1);
  return operands;
}

// Logits -t d_ij of the tile rows [row0, row0 + rows) x columns [col0, col0 + cols); the true pairs
// (global i == j) are -inf when excluded. A NaN distance stays NaN (clamp propagates it).
at::Tensor tile_logits(const CrossOperands& operands, int64_t row0, int64_t rows, int64_t col0, int64_t cols, double t,
                       bool exclude_diagonal) {
  at::Tensor logits = at::mm(operands.x.narrow(0, row0, rows), operands.y.narrow(0, col0, cols).t());
  logits.mul_(2.0)
      .sub_(operands.sq_x.narrow(0, row0, rows).unsqueeze(1))
      .sub_(operands.sq_y.narrow(0, col0, cols).unsqueeze(0))
      .clamp_max_(0.0)
      .mul_(t);
  if (exclude_diagonal) {
    // Entry (r, c) is the pair (row0 + r, col0 + c): the true pairs lie on the diagonal c - r = row0 - col0
    // (an empty view when the tile holds none).
    logits.diagonal(row0 - col0).fill_(-std::numeric_limits<double>::infinity());
  }
  return logits;
}

double log_num_cross_pairs(int64_t rows_x, int64_t rows_y, bool exclude_diagonal) {
  const double pairs = static_cast<double>(rows_x) * static_cast<double>(rows_y) -
                       (exclude_diagonal ? static_cast<double>(rows_x) : 0.0);
  return std::log(pairs);
}

}  // namespace

std::tuple<at::Tensor, at::Tensor> cross_uniformity_forward_kernel(const at::Tensor& x, const at::Tensor& y, double t,
                                                                   bool exclude_diagonal) {
  check_cross_uniformity_arguments(kCrossUniformityName, x, y, t, exclude_diagonal);
  const CrossOperands operands = make_operands(x, y);
  const int64_t rows_x = x.size(0);
  const int64_t rows_y = y.size(0);
  at::Tensor row_max = at::full({rows_x}, -std::numeric_limits<double>::infinity(), operands.x.options());
  at::Tensor row_sum = at::zeros({rows_x}, operands.x.options());
  const cu::TileShape tile = cross_uniformity_tile_shape(x.device());
  for (int64_t row0 = 0; row0 < rows_x; row0 += tile.rows) {
    const int64_t rows = std::min(tile.rows, rows_x - row0);
    at::Tensor block_max = row_max.narrow(0, row0, rows);
    at::Tensor block_sum = row_sum.narrow(0, row0, rows);
    for (int64_t col0 = 0; col0 < rows_y; col0 += tile.cols) {
      const int64_t cols = std::min(tile.cols, rows_y - col0);
      at::Tensor logits = tile_logits(operands, row0, rows, col0, cols, t, exclude_diagonal);
      const at::Tensor new_max = at::maximum(block_max, std::get<0>(logits.max(1)));
      block_sum.mul_(cu::rescale_factor(block_max, new_max))
          .add_(logits.sub_(cu::safe_shift(new_max).unsqueeze(1)).exp_().sum(1));
      block_max.copy_(new_max);
    }
  }
  // log sum_pairs exp(-t d_ij) = logsumexp_i (row_max_i + log row_sum_i).
  at::Tensor log_pair_sum = at::logsumexp(row_max + at::log(row_sum), {0});
  const at::Tensor accumulated_loss = log_pair_sum - log_num_cross_pairs(rows_x, rows_y, exclude_diagonal);
  at::Tensor loss = accumulated_loss.to(x.scalar_type());
  if (!loss_is_finite_or_capturing(loss)) {  // one scalar read; the data only on the failure path
    check_finite(kCrossUniformityName, "x", x);
    check_finite(kCrossUniformityName, "y", y);
    fail_loss_overflow(kCrossUniformityName, "x and y are", loss, accumulated_loss);
  }
  return {loss, log_pair_sum};
}

std::tuple<at::Tensor, at::Tensor> cross_uniformity_backward_kernel(const at::Tensor& grad_output, const at::Tensor& x,
                                                                    const at::Tensor& y,
                                                                    const at::Tensor& log_pair_sum, double t,
                                                                    bool exclude_diagonal) {
  constexpr const char* op = "modgap::_cross_uniformity_backward";
  check_cross_uniformity_arguments(op, x, y, t, exclude_diagonal);
  check_grad_output(op, grad_output, x);
  TORCH_CHECK_VALUE(log_pair_sum.dim() == 0 && log_pair_sum.device() == x.device(), op,
                    ": `log_pair_sum` must be the scalar the forward returned, on x's device, got shape ",
                    log_pair_sum.sizes(), " on ", log_pair_sum.device());
  const CrossOperands operands = make_operands(x, y);
  const int64_t rows_x = x.size(0);
  const int64_t rows_y = y.size(0);
  const at::Tensor shift = log_pair_sum.to(operands.x.scalar_type());
  at::Tensor weighted_x = at::zeros_like(operands.x);  // sum_j w_ij y_j
  at::Tensor weighted_y = at::zeros_like(operands.y);  // sum_i w_ij x_i
  at::Tensor weight_sum_x = at::zeros({rows_x}, operands.x.options());
  at::Tensor weight_sum_y = at::zeros({rows_y}, operands.y.options());
  const cu::TileShape tile = cross_uniformity_tile_shape(x.device());
  for (int64_t row0 = 0; row0 < rows_x; row0 += tile.rows) {
    const int64_t rows = std::min(tile.rows, rows_x - row0);
    for (int64_t col0 = 0; col0 < rows_y; col0 += tile.cols) {
      const int64_t cols = std::min(tile.cols, rows_y - col0);
      const at::Tensor weights = tile_logits(operands, row0, rows, col0, cols, t, exclude_diagonal).sub_(shift).exp_();
      weight_sum_x.narrow(0, row0, rows).add_(weights.sum(1));
      weight_sum_y.narrow(0, col0, cols).add_(weights.sum(0));
      weighted_x.narrow(0, row0, rows).addmm_(weights, operands.y.narrow(0, col0, cols));
      weighted_y.narrow(0, col0, cols).addmm_(weights.t(), operands.x.narrow(0, row0, rows));
    }
  }
  const at::Tensor scale = grad_output.to(operands.x.scalar_type()) * (-2.0 * t);
  at::Tensor grad_x = operands.x.mul(weight_sum_x.unsqueeze(1)).sub_(weighted_x).mul_(scale);
  at::Tensor grad_y = operands.y.mul(weight_sum_y.unsqueeze(1)).sub_(weighted_y).mul_(scale);
  return {grad_x.to(x.scalar_type()).contiguous(), grad_y.to(y.scalar_type()).contiguous()};
}

namespace {
at::Tensor cross_uniformity_kernel(const at::Tensor& x, const at::Tensor& y, double t, bool exclude_diagonal) {
  return std::get<0>(cross_uniformity_forward_kernel(x, y, t, exclude_diagonal));
}
}  // namespace

TORCH_LIBRARY_IMPL(modgap, CPU, m) {
  m.impl("cross_uniformity", &cross_uniformity_kernel);
  m.impl("_cross_uniformity_forward", &cross_uniformity_forward_kernel);
  m.impl("_cross_uniformity_backward", &cross_uniformity_backward_kernel);
}

TORCH_LIBRARY_IMPL(modgap, CUDA, m) {
  m.impl("cross_uniformity", &cross_uniformity_kernel);
  m.impl("_cross_uniformity_forward", &cross_uniformity_forward_kernel);
  m.impl("_cross_uniformity_backward", &cross_uniformity_backward_kernel);
}

}  // namespace modgap
