// The tiled algorithm of centroid_uniformity, shared by the CPU and CUDA kernels. Host code only:
// it orders the work and calls ATen for the O(N D) steps and for the tile GEMMs (BLAS / cuBLAS);
// the O(N^2) epilogues are the backend's own kernels (centroid_uniformity_cpu.cpp,
// centroid_uniformity_cuda.cu), given as
//
//   struct Epilogue {
//     static TileShape tile_shape();   // rows x cols of a tile of pairs, rows <= cols
//     // dots[r, c] = u_{row0+r} . u_{col0+c}; fold -t d_ij of the pairs j > i into the running
//     // per-row log-sum-exp state (row_max, row_sum).
//     static void row_logsumexp(const at::Tensor& dots, const at::Tensor& sq_norms, int64_t row0,
//                               int64_t col0, double t, at::Tensor& row_max, at::Tensor& row_sum);
//     // overwrite the tile with the logits x_ij = -t d_ij for the pairs j > i and -inf elsewhere.
//     static void pair_logits(at::Tensor& dots, const at::Tensor& sq_norms, int64_t row0, int64_t col0,
//                             double t);
//     // weights[r, c] = exp(x_ij - shift) for the pairs j > i, 0 elsewhere, stored in weights' dtype
//     // (it may alias dots when the dtypes agree); adds the row sums of the unrounded weights to
//     // pair_sum[row0 + r], and the row and column sums of the weights as stored to weight_sum.
//     static void pair_weights(const at::Tensor& dots, const at::Tensor& sq_norms, int64_t row0,
//                              int64_t col0, double t, double shift, at::Tensor& weights,
//                              at::Tensor& pair_sum, at::Tensor& weight_sum);
//   };
//
// Only pairs i < j are visited (row block r against column blocks starting at r). Without gradients
// each pair costs one GEMM entry; with gradients the tile is used twice more (W u and W^T u) in the
// same pass and the backward is a scale: 1.5 N^2 D multiply-adds in all. Extra memory is O(N D) plus a
// few tile_shape() tiles: the N x N matrix is never formed.
//
// Precision of the GEMMs follows the input (GemmOperands): float64 and float32 centroids go to the
// GEMMs as they are (on CUDA, float32 GEMMs use TF32 exactly when PyTorch's own matmul setting,
// torch.backends.cuda.matmul.allow_tf32 / torch.set_float32_matmul_precision, allows it); for
// float16/bfloat16 inputs the centroids are rounded to the input dtype and multiplied with float32
// accumulation (tensor cores on CUDA; the CPU computes the same exact products in float32), and the
// pair weights of the W u GEMMs are stored in bfloat16 (float32's exponent range, which the weights
// need). The O(N) statistics, the log-sum-exp and the gradient assembly stay in float32 (float64
// for float64 inputs).
#pragma once

#include <ATen/ATen.h>
#include <torch/version.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <tuple>
#include <vector>

#include "ops/centroid_uniformity/centroid_uniformity.h"
#include "ops/centroid_uniformity/centroid_uniformity_math.h"
#include "ops/common/input_checks.h"

// aten::mm.dtype (float16/bfloat16 operands, float32 output; CUDA only) arrived in PyTorch 2.8; it is
// used from 2.9 on (compiled here against 2.11 and 2.14). Older versions convert the operands to float32
// first: the same products, without tensor cores.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 9)
#define MODGAP_HAS_MM_OUT_DTYPE 1
#else
#define MODGAP_HAS_MM_OUT_DTYPE 0
#endif
// aten::addmm.dtype_out with `self` in float32 (= out_dtype) and half operands, i.e. an in-place
// float32 accumulation `out += A B` on tensor cores: its CUDA kernel accepts such a `self` ("self dtype
// must match either out_dtype or mat1 dtype") in the torch 2.11 and 2.14 builds (read off both
// libtorch_cuda.so); some earlier versions required `self` in the operands' dtype.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 11)
#define MODGAP_HAS_ADDMM_OUT_DTYPE 1
#else
#define MODGAP_HAS_ADDMM_OUT_DTYPE 0
#endif

namespace modgap {
namespace cu {

// Rows x columns of the tiles of pairs. Each backend has a default; the environment variable it names
// (MODGAP_CU_CPU_TILE / MODGAP_CU_CUDA_TILE, "ROWSxCOLS", read once per process) overrides it, so a
// GPU run can compare tile shapes without a rebuild (scripts/gpu_check.sh tile-sweep). Any shape gives
// the same pairs, hence the same loss up to summation order (tests/python/test_losses.py).
struct TileShape {
  int64_t rows;
  int64_t cols;
};

inline TileShape tile_shape_from_environment(const char* variable, TileShape fallback) {
  const char* text = std::getenv(variable);
  if (text == nullptr || *text == '\0') {
    return fallback;
  }
  long long rows = 0;
  long long cols = 0;
  char separator = 0;
  char trailing = 0;
  const int fields = std::sscanf(text, "%lld%c%lld%c", &rows, &separator, &cols, &trailing);
  TORCH_CHECK_VALUE(fields == 3 && separator == 'x' && rows >= 16 && cols >= rows && cols <= (1LL << 20), variable,
                    " must be ROWSxCOLS with 16 <= ROWS <= COLS <= 2^20 (the tile of pairs of centroid_uniformity), got '",
                    text, "'");
  return {static_cast<int64_t>(rows), static_cast<int64_t>(cols)};
}


// Centroids in the accumulation dtype (float32 for half/bfloat16/float32 inputs, float64 for float64).
struct Centroids {
  at::Tensor u;          // [N, D] centroids, L2-normalised when requested (eq. 9)
  at::Tensor sq_norms;   // [N] |u_i|^2
  at::Tensor norms;      // [N] ||c_i|| before normalisation (only when normalize)
};

inline at::ScalarType accumulation_dtype(at::ScalarType input) {
  return input == at::kDouble ? at::kDouble : at::kFloat;
}

inline Centroids compute_centroids(at::TensorList embeddings, bool normalize) {
  const auto acc_dtype = accumulation_dtype(embeddings[0].scalar_type());
  // c_i = 1/M sum_m z_i^m, accumulated in acc_dtype without converting each modality first.
  at::Tensor c = embeddings[0].to(acc_dtype, /*non_blocking=*/false, /*copy=*/true).contiguous();
  for (size_t m = 1; m < embeddings.size(); ++m) {
    c.add_(embeddings[m]);
  }
  c.div_(static_cast<double>(embeddings.size()));
  Centroids out;
  if (normalize) {
    out.norms = at::linalg_vector_norm(c, 2, {1}, /*keepdim=*/true);
    out.u = c.div_(out.norms.clamp_min(kNormEps));
  } else {
    out.u = c;
  }
  out.sq_norms = at::linalg_vector_norm(out.u, 2, {1}).square_();
  return out;
}

// The operands of the tile GEMMs, in the precision the input asks for (see the header comment).
struct GemmOperands {
  at::Tensor dots_u;          // [N, D] operand of the u_i . u_j GEMMs
  at::Tensor dots_sq_norms;   // [N] |dots_u_i|^2 in the accumulation dtype: d_ij is then the exact
                              // distance of the points the GEMM multiplies (never < 0 beyond rounding)
  at::Tensor weights_u;       // [N, D] operand of the W u GEMMs (dtype of the stored weights)
};

inline GemmOperands make_gemm_operands(const Centroids& centroids, at::ScalarType input_dtype) {
  GemmOperands operands;
  if (!c10::isReducedFloatingType(input_dtype)) {  // float32 / float64 (the inputs are checked)
    operands.dots_u = centroids.u;
    operands.dots_sq_norms = centroids.sq_norms;
    operands.weights_u = centroids.u;
    return operands;
  }
  operands.dots_u = centroids.u.to(input_dtype);
  operands.dots_sq_norms = at::linalg_vector_norm(operands.dots_u.to(centroids.u.scalar_type()), 2, {1}).square_();
  // float16 weights would overflow (exp(x - shift) reaches e^60): the W u GEMMs run in bfloat16.
  operands.weights_u = input_dtype == at::kBFloat16 ? operands.dots_u : centroids.u.to(at::kBFloat16);
  return operands;
}

// rows . cols^T in the accumulation dtype `acc`. Half operands: float32 accumulation (tensor cores)
// through aten::mm.dtype on CUDA; the CPU has no such kernel, and converting first gives the same
// exact products (an 8- or 11-bit by 8- or 11-bit product fits float32's 24-bit significand).
inline at::Tensor tile_dots(const at::Tensor& rows, const at::Tensor& cols, at::ScalarType acc) {
  if (rows.scalar_type() == acc) {
    return at::mm(rows, cols.t());
  }
#if MODGAP_HAS_MM_OUT_DTYPE
  if (rows.is_cuda()) {
    return at::mm(rows, cols.t(), acc);
  }
#endif
  return at::mm(rows.to(acc), cols.to(acc).t());
}

// out += weights @ operand, accumulated in out's dtype (float32 accumulation for bfloat16 weights).
inline void accumulate_weighted(at::Tensor out, const at::Tensor& weights, const at::Tensor& operand) {
  if (weights.scalar_type() == out.scalar_type()) {
    out.addmm_(weights, operand);
    return;
  }
#if MODGAP_HAS_ADDMM_OUT_DTYPE
  if (weights.is_cuda()) {
    // In place with beta = 1: no [rows, D] float32 temporary and no separate add (at N = 32768,
    // D = 1024 they cost about 3 GB of HBM traffic per forward+backward over the 2048 x 8192 tiles).
    at::addmm_out(out, out, weights, operand, out.scalar_type(), /*beta=*/1, /*alpha=*/1);
    return;
  }
#endif
#if MODGAP_HAS_MM_OUT_DTYPE
  if (weights.is_cuda()) {
    out.add_(at::mm(weights, operand, out.scalar_type()));
    return;
  }
#endif
  out.addmm_(weights.to(out.scalar_type()), operand.to(out.scalar_type()));
}

template <class Epilogue>
std::tuple<at::Tensor, at::Tensor> centroid_uniformity_forward_tiled(const Centroids& centroids,
                                                                     const GemmOperands& operands, double t) {
  const at::Tensor& u = centroids.u;
  const int64_t num_rows = u.size(0);
  at::Tensor row_max = at::full({num_rows}, -std::numeric_limits<double>::infinity(), u.options());
  at::Tensor row_sum = at::zeros({num_rows}, u.options());
  const TileShape tile = Epilogue::tile_shape();
  for (int64_t row0 = 0; row0 < num_rows; row0 += tile.rows) {
    const int64_t rows = std::min(tile.rows, num_rows - row0);
    const at::Tensor u_rows = operands.dots_u.narrow(0, row0, rows);
    for (int64_t col0 = row0; col0 < num_rows; col0 += tile.cols) {
      const int64_t cols = std::min(tile.cols, num_rows - col0);
      const at::Tensor dots = tile_dots(u_rows, operands.dots_u.narrow(0, col0, cols), u.scalar_type());
      Epilogue::row_logsumexp(dots, operands.dots_sq_norms, row0, col0, t, row_max, row_sum);
    }
  }
  // log sum_{i<j} exp(-t d_ij) = logsumexp_i (row_max_i + log row_sum_i); the last row has no pair
  // (row_sum = 0, a -inf term that logsumexp ignores).
  const at::Tensor log_pair_sum = at::logsumexp(row_max + at::log(row_sum), {0});
  at::Tensor loss = log_pair_sum - log_num_pairs(num_rows);
  return {loss, at::empty({0}, u.options())};
}

// exp(old - new) for the running maxima, with exp(-inf - (-inf)) taken as 0 (the state was empty).
inline at::Tensor rescale_factor(const at::Tensor& old_max, const at::Tensor& new_max) {
  return at::where(at::isneginf(old_max), at::zeros_like(old_max), at::exp(old_max - new_max));
}

// A shift that is never -inf, so exp(x - shift) of a masked (-inf) entry is 0, not NaN.
inline at::Tensor safe_shift(const at::Tensor& running_max) {
  return at::where(at::isneginf(running_max), at::zeros_like(running_max), running_max);
}

// dL/dc from dL/du: through the normalisation u = c / max(||c||, eps), dL/dc = (I - u u^T) dL/du / ||c||
// where ||c|| >= eps and dL/du / eps below (F.normalize's clamp). In place in `grad`. The projection
// is applied twice ("twice is enough", as in Gram-Schmidt re-orthogonalisation): when dL/du is mostly
// radial (clustered centroids) one projection leaves a rounding residue along u of the size of the
// removed part; the second removes it (float32 gradient error on clustered data 4.5e-6 -> 1.3e-6,
// bench/accuracy_centroid_uniformity.py).
inline at::Tensor centroid_gradient_through_normalisation(const Centroids& centroids, at::Tensor grad,
                                                          bool normalize) {
  if (normalize) {
    const at::Tensor& u = centroids.u;
    for (int pass = 0; pass < 2; ++pass) {
      at::Tensor dot = at::bmm(u.unsqueeze(1), grad.unsqueeze(2)).view({u.size(0), 1});
      dot.masked_fill_(centroids.norms < kNormEps, 0.0);
      grad.addcmul_(u, dot, -1.0);
    }
    grad.div_(centroids.norms.clamp_min(kNormEps));
  }
  return grad;
}

// dL/dc from a_i = sum_{j != i} w_ij u_j and r_i = sum_{j != i} w_ij, both known up to a common factor
// folded into `scale`: dL/du_i = scale (r_i u_i - a_i), then through the normalisation. The radial term
// r_i u_i is annihilated exactly by the projection (I - u u^T), so with normalisation it is left out
// (adding it and projecting it away again cancels a large term against itself: the float32 gradient
// error on random data drops from 1.9e-5 to 3.6e-7 without it); rows with ||c|| < eps (F.normalize's
// clamp, no projection) keep it. Built in place in `weighted`.
inline at::Tensor assemble_centroid_gradient(const Centroids& centroids, at::Tensor weighted, at::Tensor weight_sum,
                                             const at::Tensor& scale, bool normalize) {
  at::Tensor grad = weighted.neg_();
  if (normalize) {
    weight_sum = weight_sum.masked_fill(centroids.norms.squeeze(1) >= kNormEps, 0.0);
  }
  grad.addcmul_(centroids.u, weight_sum.unsqueeze(1)).mul_(scale);
  return centroid_gradient_through_normalisation(centroids, grad, normalize);
}

// The static shift of the gradient pass. Every logit lies in [-4 t R^2, 0] with R = max_i |u_i|
// (d_ij <= (|u_i| + |u_j|)^2), so shift = -2 t R^2 puts every exp(x_ij - shift) in
// [e^-h, e^h] with h = 2 t R^2. With h <= 60 nothing overflows (2^36 pairs times e^60 < 1e37, float32
// and bfloat16 reach 3.4e38) and no weight leaves float32's normal range (e^-60 ~ 9e-27 > 1.2e-38), so a
// single pass needs no running maxima. Normalised centroids (R = 1) qualify for t <= 30; larger t or
// large unnormalised centroids take the online (running-maximum) pass.
constexpr double kStaticShiftMaxHalfRange = 60.0;

// Forward with dL/dc in one pass over the pairs with a static shift (see above): per tile one GEMM of
// dot products, one epilogue kernel that writes the pair weights exp(x_ij - shift) (j > i) and their
// row/column sums, and two GEMMs W u_cols and W^T u_rows. With S = sum_{i<j} exp(x_ij - shift) the loss
// is shift + log S - log P and
//   dL/du_i = -2 t / S ( r_i u_i - sum_{j != i} exp(x_ij - shift) u_j ),   r_i = sum_{j != i} exp(x_ij - shift).
// r_i is summed from the weights as stored (bfloat16 for half inputs), so it matches the W u GEMMs
// exactly and the translation invariance sum_i dL/du_i = 0 survives the rounding; S is summed from the
// unrounded weights.
template <class Epilogue>
std::tuple<at::Tensor, at::Tensor> centroid_uniformity_forward_with_gradient_static_shift(
    const Centroids& centroids, const GemmOperands& operands, double t, double shift, bool normalize) {
  const at::Tensor& u = centroids.u;
  const auto acc_dtype = u.scalar_type();
  const auto weight_dtype = operands.weights_u.scalar_type();
  const int64_t num_rows = u.size(0);
  at::Tensor pair_sum = at::zeros({num_rows}, u.options());    // sum_{j>i} exp(x_ij - shift), unrounded
  at::Tensor weight_sum = at::zeros({num_rows}, u.options());  // r_i from the stored weights
  at::Tensor weighted = at::zeros_like(u);                     // sum_{j!=i} exp(x_ij - shift) u_j
  // Weights in a dtype other than the dots' need their own tile; a flat buffer so that every
  // [rows, cols] view of it is contiguous.
  const TileShape tile = Epilogue::tile_shape();
  at::Tensor weights_buffer;
  if (weight_dtype != acc_dtype) {
    weights_buffer = at::empty({std::min(tile.rows, num_rows) * std::min(tile.cols, num_rows)},
                               u.options().dtype(weight_dtype));
  }
  for (int64_t row0 = 0; row0 < num_rows; row0 += tile.rows) {
    const int64_t rows = std::min(tile.rows, num_rows - row0);
    for (int64_t col0 = row0; col0 < num_rows; col0 += tile.cols) {
      const int64_t cols = std::min(tile.cols, num_rows - col0);
      at::Tensor dots =
          tile_dots(operands.dots_u.narrow(0, row0, rows), operands.dots_u.narrow(0, col0, cols), acc_dtype);
      at::Tensor weights = weight_dtype == acc_dtype ? dots : weights_buffer.narrow(0, 0, rows * cols).view({rows, cols});
      Epilogue::pair_weights(dots, operands.dots_sq_norms, row0, col0, t, shift, weights, pair_sum, weight_sum);
      // Row side: the pairs (i, j > i) seen from i; column side: the same pairs seen from j.
      accumulate_weighted(weighted.narrow(0, row0, rows), weights, operands.weights_u.narrow(0, col0, cols));
      accumulate_weighted(weighted.narrow(0, col0, cols), weights.t(), operands.weights_u.narrow(0, row0, rows));
    }
  }
  const at::Tensor total = pair_sum.to(at::kDouble).sum();  // S: up to 2^36 terms, summed in float64
  const at::Tensor log_pair_sum = at::log(total) + shift;
  at::Tensor loss = log_pair_sum - log_num_pairs(num_rows);
  // dL/du_i = -2 t (r_i u_i - weighted_i) / S.
  const at::Tensor scale = (total.reciprocal() * (-2.0 * t)).to(acc_dtype);
  return {loss, assemble_centroid_gradient(centroids, weighted, weight_sum, scale, normalize)};
}

// Forward that also returns dL/dc for any logit range: the running-maximum form of the pass above,
// used when the static shift does not fit (t R^2 > 30). Each tile's logits are turned into
// unnormalised weights twice, once shifted by the running maximum of its rows and once by that of its
// columns (FlashAttention's online softmax, on both sides of the symmetric pair set), and accumulated
// into r_i = sum_j w_ij and a_i = sum_j w_ij u_j; at the end every index is rescaled from its running
// maximum to log_pair_sum. The GEMMs run in the accumulation dtype.
template <class Epilogue>
std::tuple<at::Tensor, at::Tensor> centroid_uniformity_forward_with_gradient_online(const Centroids& centroids,
                                                                                    double t, bool normalize) {
  const at::Tensor& u = centroids.u;
  const int64_t num_rows = u.size(0);
  at::Tensor running_max = at::full({num_rows}, -std::numeric_limits<double>::infinity(), u.options());
  at::Tensor pair_sum = at::zeros({num_rows}, u.options());      // sum_{j>i} exp(x_ij - m_i): each pair once
  at::Tensor weight_sum = at::zeros({num_rows}, u.options());    // sum_{j!=i} exp(x_ij - m_i)
  at::Tensor weighted = at::zeros_like(u);                       // sum_{j!=i} exp(x_ij - m_i) u_j
  const TileShape tile = Epilogue::tile_shape();
  for (int64_t row0 = 0; row0 < num_rows; row0 += tile.rows) {
    const int64_t rows = std::min(tile.rows, num_rows - row0);
    const at::Tensor u_rows = u.narrow(0, row0, rows);
    for (int64_t col0 = row0; col0 < num_rows; col0 += tile.cols) {
      const int64_t cols = std::min(tile.cols, num_rows - col0);
      const at::Tensor u_cols = u.narrow(0, col0, cols);
      at::Tensor logits = at::mm(u_rows, u_cols.t());
      Epilogue::pair_logits(logits, centroids.sq_norms, row0, col0, t);  // -t d_ij for j > i, -inf otherwise
      // New running maxima. The first column block starts at row0 (tile.cols >= tile.rows), so the
      // tile's rows are then a prefix of its columns and share their state; later blocks are disjoint.
      const bool rows_inside_cols = col0 == row0;
      at::Tensor max_cols = at::maximum(running_max.narrow(0, col0, cols), std::get<0>(logits.max(0)));
      at::Tensor max_rows = at::maximum(running_max.narrow(0, row0, rows), std::get<0>(logits.max(1)));
      if (rows_inside_cols) {
        max_cols.narrow(0, 0, rows).copy_(at::maximum(max_cols.narrow(0, 0, rows), max_rows));
        max_rows = max_cols.narrow(0, 0, rows);
      }
      const auto rescale = [&](int64_t start, int64_t count, const at::Tensor& new_max) {
        const at::Tensor factor = rescale_factor(running_max.narrow(0, start, count), new_max);
        pair_sum.narrow(0, start, count).mul_(factor);
        weight_sum.narrow(0, start, count).mul_(factor);
        weighted.narrow(0, start, count).mul_(factor.unsqueeze(1));
        running_max.narrow(0, start, count).copy_(new_max);
      };
      rescale(col0, cols, max_cols);
      if (!rows_inside_cols) {
        rescale(row0, rows, max_rows);
      }
      // Row side: pairs (i, j>i) seen from i. Column side: the same pairs seen from j.
      const at::Tensor row_weights = at::sub(logits, safe_shift(max_rows).unsqueeze(1)).exp_();
      const at::Tensor row_totals = row_weights.sum(1);
      pair_sum.narrow(0, row0, rows).add_(row_totals);
      weight_sum.narrow(0, row0, rows).add_(row_totals);
      weighted.narrow(0, row0, rows).addmm_(row_weights, u_cols);
      const at::Tensor col_weights = logits.sub_(safe_shift(max_cols).unsqueeze(0)).exp_();  // logits no longer needed
      weight_sum.narrow(0, col0, cols).add_(col_weights.sum(0));
      weighted.narrow(0, col0, cols).addmm_(col_weights.t(), u_rows);
    }
  }
  at::Tensor log_pair_sum = at::logsumexp(running_max + at::log(pair_sum), {0});
  at::Tensor loss = log_pair_sum - log_num_pairs(num_rows);

  // w_ij = exp(x_ij - log_pair_sum) = exp(x_ij - m_i) * exp(m_i - log_pair_sum).
  const at::Tensor to_pair_weights = rescale_factor(running_max, log_pair_sum.expand_as(running_max));
  weight_sum.mul_(to_pair_weights);
  weighted.mul_(to_pair_weights.unsqueeze(1));
  // dL/du_i = -2 t (r_i u_i - sum_j w_ij u_j).
  return {loss, assemble_centroid_gradient(centroids, weighted, weight_sum, at::scalar_tensor(-2.0 * t, u.options()),
                                           normalize)};
}

// The backend-independent body of the forward kernels: checks, then the tiled pass with or without
// dL/dc, then the finite-loss check (which names a modality holding NaN/Inf).
template <class Epilogue>
std::tuple<at::Tensor, at::Tensor> centroid_uniformity_forward_checked(at::TensorList embeddings, double t,
                                                                       bool normalize, bool compute_grad) {
  check_centroid_uniformity_arguments(kCentroidUniformityName, embeddings, t);
  const auto input_dtype = embeddings[0].scalar_type();
  const Centroids centroids = compute_centroids(embeddings, normalize);
  const GemmOperands operands = make_gemm_operands(centroids, input_dtype);
  std::tuple<at::Tensor, at::Tensor> result;
  if (!compute_grad) {
    result = centroid_uniformity_forward_tiled<Epilogue>(centroids, operands, t);
  } else {
    // R^2 = max_i |u_i|^2 decides the pass (one device-to-host read; NaN/Inf take the online pass and
    // then fail the finite-loss check below).
    const double max_sq_norm = operands.dots_sq_norms.max().item<double>();
    const double half_range = 2.0 * t * max_sq_norm;
    if (std::isfinite(half_range) && half_range <= kStaticShiftMaxHalfRange) {
      result = centroid_uniformity_forward_with_gradient_static_shift<Epilogue>(centroids, operands, t, -half_range,
                                                                                normalize);
    } else {
      result = centroid_uniformity_forward_with_gradient_online<Epilogue>(centroids, t, normalize);
    }
  }
  // The passes return the loss in the accumulation dtype; the op returns the embeddings' dtype.
  const at::Tensor accumulated_loss = std::get<0>(result);
  std::get<0>(result) = accumulated_loss.to(input_dtype);
  check_loss_is_finite(kCentroidUniformityName, std::get<0>(result), embeddings, accumulated_loss);
  return result;
}

// Gradients of the M modalities from dL/dc: c_i is their mean (eq. 9), so each gets g * dL/dc / M.
inline std::vector<at::Tensor> centroid_gradient_to_embeddings(const at::Tensor& grad_output,
                                                               const at::Tensor& centroid_grad, int64_t num_modalities,
                                                               at::ScalarType dtype) {
  const at::Tensor scale = grad_output.to(centroid_grad.scalar_type()) / static_cast<double>(num_modalities);
  const at::Tensor grad = (centroid_grad * scale).to(dtype).contiguous();
  std::vector<at::Tensor> grads;
  grads.reserve(num_modalities);
  grads.push_back(grad);
  for (int64_t m = 1; m < num_modalities; ++m) {
    grads.push_back(grad.clone());
  }
  return grads;
}

}  // namespace cu
}  // namespace modgap
