// Helpers shared by the evaluation ops (gap_stats, kmeans, knn_predict, retrieval_recall).
//
// The evaluation ops are written once with ATen operations and registered for both the CPU and the
// CUDA dispatch keys: their cost is dominated by matrix products (cuBLAS / MKL-DNN do those better than a
// hand-written kernel would), by sorts (`unique`) and by O(N*D) reductions. What differs per device is
// chosen here: tile sizes, and the deterministic way to sum rows per cluster.
#pragma once

#include <ATen/ATen.h>

#include <algorithm>
#include <cstdint>

namespace modgap::eval {

// Arithmetic dtype: float64 for float64 inputs, float32 otherwise (half types are upcast).
inline at::ScalarType compute_dtype(at::ScalarType input) {
  return input == at::kDouble ? at::kDouble : at::kFloat;
}

// Rows divided by max(||row||, 1e-8) in the compute dtype. This is the normalisation every gap measure
// is defined on (measures.md: "every measure is computed on L2-normalised embeddings"; norm clamp 1e-8
// as Schrodi et al.'s code). A zero row stays zero.
inline at::Tensor l2_normalize_rows(const at::Tensor& x) {
  at::Tensor xc = x.to(compute_dtype(x.scalar_type()));
  return xc / xc.norm(2, {1}, /*keepdim=*/true).clamp_min(1e-8);
}

// Rows per tile of a [rows x cols] score block so that a block holds about `budget` elements: 2^22
// (16 MiB in float32) on the CPU, where it stays in the last-level cache's neighbourhood, and 2^26
// (256 MiB) on a GPU, where larger GEMMs keep the tensor cores busy. Never an N x N buffer.
inline int64_t tile_rows(int64_t cols, const at::Device& device) {
  const int64_t budget = device.is_cuda() ? (int64_t{1} << 26) : (int64_t{1} << 22);
  return std::max<int64_t>(1, budget / std::max<int64_t>(cols, 1));
}

// Squared Euclidean distances [rows(x), rows(y)] as POT's euclidean_distances(squared=True) computes them,
// -2 x y^T + |x|^2 + |y|^2 clamped at 0, given |y|^2 (`y_sq_norms`, reused across tiles of x).
inline at::Tensor squared_distances(const at::Tensor& x, const at::Tensor& y, const at::Tensor& y_sq_norms) {
  return at::mm(x, y.t()).mul_(-2.0).add_(x.square().sum(1).unsqueeze(1)).add_(y_sq_norms.unsqueeze(0)).clamp_min_(0.0);
}

// Gallery columns per tile for the query x gallery scans (kNN, Recall@K).
inline int64_t tile_cols(const at::Device& device) { return device.is_cuda() ? 16384 : 4096; }

// The k largest scores of every row across column tiles (kNN, Fill-the-Gap neighbours): each tile's own
// top k is merged with the running one, so memory stays one tile plus [rows, 2k].
class RunningTopK {
 public:
  explicit RunningTopK(int64_t k) : k_(k) {}

  // `tile` [rows, cols] holds the scores of the items col0 .. col0 + cols - 1.
  void add(const at::Tensor& tile, int64_t col0) {
    auto [tile_scores, tile_items] = tile.topk(std::min(k_, tile.size(1)), 1);
    tile_items += col0;
    if (!scores_.defined()) {
      scores_ = tile_scores;
      items_ = tile_items;
      return;
    }
    const at::Tensor merged_scores = at::cat({scores_, tile_scores}, 1);
    const at::Tensor merged_items = at::cat({items_, tile_items}, 1);
    auto [top_scores, position] = merged_scores.topk(std::min<int64_t>(k_, merged_scores.size(1)), 1);
    scores_ = top_scores;
    items_ = merged_items.gather(1, position);
  }

  const at::Tensor& items() const { return items_; }  // [rows, min(k, columns seen)], best first

 private:
  int64_t k_;
  at::Tensor scores_, items_;
};

}  // namespace modgap::eval
