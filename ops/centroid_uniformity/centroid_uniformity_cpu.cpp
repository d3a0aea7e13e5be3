// CPU kernels of centroid_uniformity: the two O(N^2) tile epilogues (parallel over the tile's rows
// with at::parallel_for; each row is owned by one thread, so results do not depend on the thread
// count). The tiling itself is shared with CUDA: centroid_uniformity_tiled.h.
#include <ATen/Parallel.h>
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
void pair_weights_cpu_kernel(at::Tensor& tile, const at::Tensor& sq_norms, int64_t row0, int64_t col0, acc_t t,
                             acc_t log_pair_sum) {
  const int64_t rows = tile.size(0);
  const int64_t cols = tile.size(1);
  acc_t* values = tile.mutable_data_ptr<acc_t>();
  const acc_t* sq = sq_norms.const_data_ptr<acc_t>();
  at::parallel_for(0, rows, 8, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const int64_t i = row0 + r;
      const int64_t first = std::min(cols, std::max(col0, i + 1) - col0);
      acc_t* row = values + r * cols;
      const acc_t sq_i = sq[i];
      std::fill(row, row + first, acc_t(0));
      for (int64_t c = first; c < cols; ++c) {
        row[c] = std::exp(cu::pair_logit<acc_t>(t, sq_i, sq[col0 + c], row[c]) - log_pair_sum);
      }
    }
  });
}

struct CentroidUniformityCpuEpilogue {
  // 256 x 1024 float32 tiles (1 MiB) keep the GEMM efficient and the working set in cache.
  static constexpr int64_t kTileRows = 256;
  static constexpr int64_t kTileCols = 1024;

  static void row_logsumexp(const at::Tensor& tile, const at::Tensor& sq_norms, int64_t row0, int64_t col0,
                            double t, at::Tensor& row_max, at::Tensor& row_sum) {
    AT_DISPATCH_FLOATING_TYPES(tile.scalar_type(), "centroid_uniformity_row_logsumexp_cpu", [&] {
      row_logsumexp_cpu_kernel<scalar_t>(tile, sq_norms, row0, col0, static_cast<scalar_t>(t), row_max, row_sum);
    });
  }

  static void pair_weights(at::Tensor& tile, const at::Tensor& sq_norms, int64_t row0, int64_t col0, double t,
                           const at::Tensor& log_pair_sum) {
    AT_DISPATCH_FLOATING_TYPES(tile.scalar_type(), "centroid_uniformity_pair_weights_cpu", [&] {
      pair_weights_cpu_kernel<scalar_t>(tile, sq_norms, row0, col0, static_cast<scalar_t>(t),
                                        log_pair_sum.item<scalar_t>());
    });
  }
};

}  // namespace

std::tuple<at::Tensor, at::Tensor> centroid_uniformity_forward_cpu(at::TensorList embeddings, double t,
                                                                   bool normalize) {
  check_centroid_uniformity_arguments(kCentroidUniformityName, embeddings, t);
  check_embeddings_finite(kCentroidUniformityName, embeddings);
  return cu::centroid_uniformity_forward_tiled<CentroidUniformityCpuEpilogue>(embeddings, t, normalize);
}

std::vector<at::Tensor> centroid_uniformity_backward_cpu(const at::Tensor& grad_output, at::TensorList embeddings,
                                                         const at::Tensor& log_pair_sum, double t, bool normalize) {
  check_centroid_uniformity_arguments("modgap::_centroid_uniformity_backward", embeddings, t);
  check_grad_output("modgap::_centroid_uniformity_backward", grad_output, embeddings[0]);
  return cu::centroid_uniformity_backward_tiled<CentroidUniformityCpuEpilogue>(grad_output, embeddings,
                                                                              log_pair_sum, t, normalize);
}

namespace {
at::Tensor centroid_uniformity_cpu(at::TensorList embeddings, double t, bool normalize) {
  return std::get<0>(centroid_uniformity_forward_cpu(embeddings, t, normalize));
}
}  // namespace

TORCH_LIBRARY_IMPL(modgap, CPU, m) {
  m.impl("centroid_uniformity", &centroid_uniformity_cpu);
  m.impl("_centroid_uniformity_forward", &centroid_uniformity_forward_cpu);
  m.impl("_centroid_uniformity_backward", &centroid_uniformity_backward_cpu);
}

}  // namespace modgap
