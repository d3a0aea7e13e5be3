// CPU kernels of centroid_uniformity: the two O(N^2) tile epilogues (parallel over the tile's rows
// with at::parallel_for; each row is owned by one thread, so results do not depend on the thread
// count). The tiling itself is shared with CUDA: centroid_uniformity_tiled.h.
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/cpu/vec/functional.h>
#include <ATen/cpu/vec/vec.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "ops/centroid_uniformity/centroid_uniformity.h"
#include "ops/centroid_uniformity/centroid_uniformity_math.h"
#include "ops/centroid_uniformity/centroid_uniformity_tiled.h"
#include "ops/common/input_checks.h"

namespace modgap {
namespace {

template <typename acc_t>
void row_logsumexp_cpu_kernel(const at::Tensor& tile, const at::Tensor& sq_norms, int64_t row0, int64_t col0,
                              acc_t t, at::Tensor& row_max, at::Tensor& row_sum) {
  const int64_t rows = tile.size(0);
  const int64_t cols = tile.size(1);
  const acc_t* dots = tile.const_data_ptr<acc_t>();
  const acc_t* sq = sq_norms.const_data_ptr<acc_t>();
  acc_t* max_out = row_max.mutable_data_ptr<acc_t>();
  acc_t* sum_out = row_sum.mutable_data_ptr<acc_t>();
  at::parallel_for(0, rows, 8, [&](int64_t begin, int64_t end) {
    std::vector<acc_t> logits(cols);
    for (int64_t r = begin; r < end; ++r) {
      const int64_t i = row0 + r;
      const int64_t first = std::max(col0, i + 1) - col0;  // only pairs j > i
      if (first >= cols) {
        continue;
      }
      const acc_t* dot_row = dots + r * cols;
      const acc_t sq_i = sq[i];
      acc_t tile_max = -std::numeric_limits<acc_t>::infinity();
      for (int64_t c = first; c < cols; ++c) {
        const acc_t x = cu::pair_logit<acc_t>(t, sq_i, sq[col0 + c], dot_row[c]);
        logits[c] = x;
        tile_max = std::max(tile_max, x);
      }
      acc_t tile_sum = 0;
      for (int64_t c = first; c < cols; ++c) {
        tile_sum += std::exp(logits[c] - tile_max);
      }
      cu::online_logsumexp_merge<acc_t>(max_out[i], sum_out[i], tile_max, tile_sum);
    }
  });
}

template <typename acc_t>
void pair_logits_cpu_kernel(at::Tensor& tile, const at::Tensor& sq_norms, int64_t row0, int64_t col0, acc_t t) {
  const int64_t rows = tile.size(0);
  const int64_t cols = tile.size(1);
  acc_t* values = tile.mutable_data_ptr<acc_t>();
  const acc_t* sq = sq_norms.const_data_ptr<acc_t>();
  at::parallel_for(0, rows, 8, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const int64_t i = row0 + r;
      const int64_t first = std::min(cols, std::max(col0, i + 1) - col0);  // only pairs j > i
      acc_t* row = values + r * cols;
      const acc_t sq_i = sq[i];
      std::fill(row, row + first, -std::numeric_limits<acc_t>::infinity());
      for (int64_t c = first; c < cols; ++c) {  // plain arithmetic: the compiler vectorises it
        row[c] = cu::pair_logit<acc_t>(t, sq_i, sq[col0 + c], row[c]);
      }
    }
  });
}

// Pair weights of one tile (the static-shift gradient pass, centroid_uniformity_tiled.h): each row
// is owned by one thread (weights and row sums), then each column by one thread (column sums, summed
// over the rows in order), so the result does not depend on the thread count. `dots` and `weights`
// may be the same tensor.
template <typename acc_t, typename weight_t>
void pair_weights_cpu_kernel(const at::Tensor& dots, const at::Tensor& sq_norms, int64_t row0, int64_t col0, acc_t t,
                             acc_t shift, at::Tensor& weights, at::Tensor& pair_sum, at::Tensor& weight_sum) {
  using Vec = at::vec::Vectorized<acc_t>;
  const int64_t rows = dots.size(0);
  const int64_t cols = dots.size(1);
  const acc_t* dot_values = dots.const_data_ptr<acc_t>();
  weight_t* weight_values = weights.mutable_data_ptr<weight_t>();
  const acc_t* sq = sq_norms.const_data_ptr<acc_t>();
  acc_t* pair_out = pair_sum.mutable_data_ptr<acc_t>();
  acc_t* weight_out = weight_sum.mutable_data_ptr<acc_t>();
  at::parallel_for(0, rows, 8, [&](int64_t begin, int64_t end) {
    std::vector<acc_t> row_weights(cols);
    for (int64_t r = begin; r < end; ++r) {
      const int64_t i = row0 + r;
      const int64_t first = std::min(cols, std::max(col0, i + 1) - col0);  // only pairs j > i
      const acc_t* dot_row = dot_values + r * cols;
      weight_t* weight_row = weight_values + r * cols;
      const acc_t sq_i = sq[i];
      for (int64_t c = first; c < cols; ++c) {  // plain arithmetic: the compiler vectorises it
        row_weights[c] = cu::pair_logit<acc_t>(t, sq_i, sq[col0 + c], dot_row[c]) - shift;
      }
      at::vec::map([](Vec x) { return x.exp(); }, row_weights.data() + first, row_weights.data() + first,
                   cols - first);
      acc_t exact_sum = 0;
      acc_t stored_sum = 0;
      std::fill(weight_row, weight_row + first, static_cast<weight_t>(acc_t(0)));
      for (int64_t c = first; c < cols; ++c) {
        const weight_t stored = static_cast<weight_t>(row_weights[c]);
        weight_row[c] = stored;
        exact_sum += row_weights[c];
        stored_sum += static_cast<acc_t>(stored);
      }
      pair_out[i] += exact_sum;
      weight_out[i] += stored_sum;
    }
  });
  at::parallel_for(0, cols, 256, [&](int64_t begin, int64_t end) {
    std::vector<acc_t> col_sums(end - begin, acc_t(0));
    for (int64_t r = 0; r < rows; ++r) {
      const weight_t* weight_row = weight_values + r * cols;
      for (int64_t c = begin; c < end; ++c) {
        col_sums[c - begin] += static_cast<acc_t>(weight_row[c]);
      }
    }
    for (int64_t c = begin; c < end; ++c) {
      weight_out[col0 + c] += col_sums[c - begin];
    }
  });
}

struct CentroidUniformityCpuEpilogue {
  // 512 x 2048 float32 tiles (4 MiB): measured on 2 cores, BLAS runs ~1.5x faster on them than on
  // 256 x 1024 tiles, and three of them stay well inside the memory budget.
  static cu::TileShape tile_shape() {
    static const cu::TileShape shape = cu::tile_shape_from_environment("MODGAP_CU_CPU_TILE", {512, 2048});
    return shape;
  }

  static void row_logsumexp(const at::Tensor& tile, const at::Tensor& sq_norms, int64_t row0, int64_t col0,
                            double t, at::Tensor& row_max, at::Tensor& row_sum) {
    AT_DISPATCH_FLOATING_TYPES(tile.scalar_type(), "centroid_uniformity_row_logsumexp_cpu", [&] {
      row_logsumexp_cpu_kernel<scalar_t>(tile, sq_norms, row0, col0, static_cast<scalar_t>(t), row_max, row_sum);
    });
  }

  static void pair_logits(at::Tensor& tile, const at::Tensor& sq_norms, int64_t row0, int64_t col0, double t) {
    AT_DISPATCH_FLOATING_TYPES(tile.scalar_type(), "centroid_uniformity_pair_logits_cpu", [&] {
      pair_logits_cpu_kernel<scalar_t>(tile, sq_norms, row0, col0, static_cast<scalar_t>(t));
    });
  }

  static void pair_weights(const at::Tensor& dots, const at::Tensor& sq_norms, int64_t row0, int64_t col0, double t,
                           double shift, at::Tensor& weights, at::Tensor& pair_sum, at::Tensor& weight_sum) {
    if (weights.scalar_type() == at::kBFloat16) {  // half inputs: float32 dots, bfloat16 weights
      pair_weights_cpu_kernel<float, at::BFloat16>(dots, sq_norms, row0, col0, static_cast<float>(t),
                                                   static_cast<float>(shift), weights, pair_sum, weight_sum);
      return;
    }
    AT_DISPATCH_FLOATING_TYPES(dots.scalar_type(), "centroid_uniformity_pair_weights_cpu", [&] {
      pair_weights_cpu_kernel<scalar_t, scalar_t>(dots, sq_norms, row0, col0, static_cast<scalar_t>(t),
                                                  static_cast<scalar_t>(shift), weights, pair_sum, weight_sum);
    });
  }
};

}  // namespace

std::tuple<at::Tensor, at::Tensor> centroid_uniformity_forward_cpu(at::TensorList embeddings, double t,
                                                                   bool normalize, bool compute_grad) {
  return cu::centroid_uniformity_forward_checked<CentroidUniformityCpuEpilogue>(embeddings, t, normalize, compute_grad);
}

namespace {
at::Tensor centroid_uniformity_cpu(at::TensorList embeddings, double t, bool normalize) {
  return std::get<0>(centroid_uniformity_forward_cpu(embeddings, t, normalize, /*compute_grad=*/false));
}
}  // namespace

TORCH_LIBRARY_IMPL(modgap, CPU, m) {
  m.impl("centroid_uniformity", &centroid_uniformity_cpu);
  m.impl("_centroid_uniformity_forward", &centroid_uniformity_forward_cpu);
  m.impl("_centroid_uniformity_backward", &centroid_uniformity_backward_kernel);
}

}  // namespace modgap
