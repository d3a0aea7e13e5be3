// fill_gap_stats for CPU and CUDA tensors (one ATen implementation registered for both keys; see
// ops/common/evaluation_utils.h for why the evaluation ops are not hand-written kernels).
//
// The measures of "Fill the Gap" (Role, Meyer, Amblard 2025; seed 003) as a reproduction of the paper
// defines them (../shared/notes/measures.md §1.2: the paper body could not be read, so these are the
// reproduction's definitions, not checked against the paper). On the mixed collection
// Z = [x^_1..x^_N; y^_1..y^_M] of L2-normalised image rows x^ and text rows y^, with cosine similarity
// S = Z Z^T and every item excluded from its own neighbours:
//   neighbour_counts[q][m]  over the k nearest neighbours in Z of every query of modality q (0 image,
//                           1 text), how many are of modality m
//   ITR = counts[0][0] / counts[0][1], TIR = counts[1][1] / counts[1][0] (the reproduction's rule:
//                           inf when the denominator is 0 and the numerator is not, else num / max(den, 1));
//                           about 1 without a gap, very large with one
//   TMR = mean over image queries i of 1 + #{images j != i : S_ij > max_t S_it}, the 1-based rank of the
//         best text in i's mixed list; IMR symmetric (the best image for each text query)
//   FID = Frechet distance of Gaussian fits of x^ and y^: sqrt(||mu_x - mu_y||^2 + tr(C_x + C_y
//         - 2 (C_x C_y)^(1/2))), unbiased covariances plus 1e-6 I, float64.
// Ties between equal similarities at the k-th neighbour are broken arbitrarily.
//
// Nothing (N + M) x (N + M) is formed: one pass over tiles of S (one GEMM each) keeps a running top-k of
// every query, its best other-modality similarity and the count of same-modality items above it.
// tr((C_x C_y)^(1/2)) is computed as the trace of the square root of the symmetric C_x^(1/2) C_y C_x^(1/2)
// (the same eigenvalues), with eigh.
#include <torch/library.h>

#include <limits>

#include "ops/common/evaluation_utils.h"
#include "ops/common/input_checks.h"
#include "ops/fill_gap_stats/fill_gap_stats.h"

namespace modgap {

void check_fill_gap_stats_arguments(const at::Tensor& x, const at::Tensor& y, int64_t k) {
  // Two rows per modality: the covariances of the FID are unbiased (divide by N - 1).
  check_matrix(kFillGapStatsName, "x", x, /*min_rows=*/2);
  check_matrix(kFillGapStatsName, "y", y, /*min_rows=*/2);
  check_same_columns(kFillGapStatsName, "x", x, "y", y);
  TORCH_CHECK_VALUE(k >= 1 && k <= x.sym_size(0) + y.sym_size(0) - 1, kFillGapStatsName,
                    ": `k` (neighbours) must be in [1, ", x.sym_size(0) + y.sym_size(0) - 1,
                    "] (all rows of x and y but the query), got ", k);
}

namespace {

constexpr double kNegInf = -std::numeric_limits<double>::infinity();

// S tile of the query rows [row0, row0 + rows) against the items [col0, col0 + cols), with every item's
// similarity to itself set to -inf (it lies on the diagonal with offset row0 - col0).
at::Tensor similarity_tile(const at::Tensor& z, int64_t row0, int64_t rows, int64_t col0, int64_t cols) {
  at::Tensor s = at::mm(z.narrow(0, row0, rows), z.narrow(0, col0, cols).t());
  s.diagonal(row0 - col0).fill_(kNegInf);
  return s;
}

// The reproduction's ratio: inf if the denominator is 0 and the numerator is not, else num / max(den, 1).
double neighbour_ratio(int64_t numerator, int64_t denominator) {
  if (denominator == 0 && numerator > 0) {
    return std::numeric_limits<double>::infinity();
  }
  return static_cast<double>(numerator) / static_cast<double>(std::max<int64_t>(denominator, 1));
}

at::Tensor frechet_distance(const at::Tensor& x_unit, const at::Tensor& y_unit) {
  const auto covariance = [](const at::Tensor& z, at::Tensor& mean) {
    const at::Tensor zd = z.to(at::kDouble);
    mean = zd.mean(0);
    const at::Tensor centred = zd - mean;
    at::Tensor cov = centred.t().mm(centred) / static_cast<double>(z.size(0) - 1);
    cov.diagonal().add_(1e-6);
    return cov;
  };
  at::Tensor mean_x, mean_y;
  const at::Tensor cov_x = covariance(x_unit, mean_x);
  const at::Tensor cov_y = covariance(y_unit, mean_y);
  auto [eigenvalues_x, eigenvectors_x] = at::linalg_eigh(cov_x);
  const at::Tensor sqrt_cov_x = (eigenvectors_x * eigenvalues_x.clamp_min(0.0).sqrt()).mm(eigenvectors_x.t());
  at::Tensor inner = sqrt_cov_x.mm(cov_y).mm(sqrt_cov_x);
  inner = (inner + inner.t()) * 0.5;  // symmetric up to rounding
  const at::Tensor trace_sqrt = at::linalg_eigvalsh(inner).clamp_min(0.0).sqrt().sum();
  const at::Tensor squared =
      (mean_x - mean_y).pow(2).sum() + cov_x.diagonal().sum() + cov_y.diagonal().sum() - 2.0 * trace_sqrt;
  return squared.clamp_min(0.0).sqrt();
}

}  // namespace

FillGapStats fill_gap_stats_kernel(const at::Tensor& x, const at::Tensor& y, int64_t k) {
  check_fill_gap_stats_arguments(x, y, k);
  check_finite(kFillGapStatsName, "x", x);
  check_finite(kFillGapStatsName, "y", y);
  const int64_t num_images = x.size(0);
  const int64_t total = num_images + y.size(0);
  const at::Tensor x_unit = eval::l2_normalize_rows(x);
  const at::Tensor y_unit = eval::l2_normalize_rows(y);
  const at::Tensor z = at::cat({x_unit, y_unit}, 0).contiguous();
  const auto device = z.device();
  const int64_t cols_per_tile = std::min(total, eval::tile_cols(device));
  const int64_t rows_per_tile = eval::tile_rows(cols_per_tile, device);

  // One pass over the tiles of S. A row tile holds queries of one modality (tiles stop at the image /
  // text boundary) and visits the other modality's items first: by the time it reaches its own
  // modality's items, every query's best other-modality similarity (the TMR / IMR threshold) is known,
  // so the same-modality items above it are counted on the same tiles (S is formed once).
  at::Tensor counts = at::zeros({2, 2}, z.options().dtype(at::kLong));
  at::Tensor above = at::zeros({total}, z.options().dtype(at::kLong));
  for (const int64_t query_modality : {0, 1}) {  // 0: image queries, 1: text queries
    const int64_t same_begin = query_modality == 0 ? 0 : num_images;
    const int64_t same_end = query_modality == 0 ? num_images : total;
    const int64_t other_begin = query_modality == 0 ? num_images : 0;
    const int64_t other_end = query_modality == 0 ? total : num_images;
    for (int64_t row0 = same_begin; row0 < same_end; row0 += rows_per_tile) {
      const int64_t rows = std::min(rows_per_tile, same_end - row0);
      eval::RunningTopK nearest(k);
      at::Tensor best_other = at::full({rows}, kNegInf, z.options());
      for (int64_t col0 = other_begin; col0 < other_end; col0 += cols_per_tile) {
        const int64_t cols = std::min(cols_per_tile, other_end - col0);
        const at::Tensor s = similarity_tile(z, row0, rows, col0, cols);
        best_other = at::maximum(best_other, std::get<0>(s.max(1)));
        nearest.add(s, col0);
      }
      const at::Tensor threshold = best_other.unsqueeze(1);
      at::Tensor above_rows = above.narrow(0, row0, rows);
      for (int64_t col0 = same_begin; col0 < same_end; col0 += cols_per_tile) {
        const int64_t cols = std::min(cols_per_tile, same_end - col0);
        const at::Tensor s = similarity_tile(z, row0, rows, col0, cols);  // the query itself is -inf
        above_rows.add_(s.gt(threshold).sum(1));
        nearest.add(s, col0);
      }
      // counts[q][m] += #{(query of modality q, one of its k nearest of modality m)}; items >= N are texts.
      const at::Tensor text_neighbours = nearest.items().ge(num_images).sum();
      counts[query_modality][1].add_(text_neighbours);
      counts[query_modality][0].add_(nearest.items().numel() - text_neighbours);
    }
  }
  const at::Tensor ranks = above.to(at::kDouble).add_(1.0);
  const at::Tensor mean_ranks =
      at::stack({ranks.narrow(0, 0, num_images).mean(), ranks.narrow(0, num_images, total - num_images).mean()});

  const at::Tensor counts_cpu = counts.cpu();
  const auto c = counts_cpu.accessor<int64_t, 2>();
  const at::Tensor ratios = at::tensor({neighbour_ratio(c[0][0], c[0][1]), neighbour_ratio(c[1][1], c[1][0])},
                                       at::TensorOptions().dtype(at::kDouble))
                                .to(device);
  return {counts, ratios, mean_ranks, frechet_distance(x_unit, y_unit)};
}

TORCH_LIBRARY_IMPL(modgap, CPU, m) { m.impl("fill_gap_stats", &fill_gap_stats_kernel); }
TORCH_LIBRARY_IMPL(modgap, CUDA, m) { m.impl("fill_gap_stats", &fill_gap_stats_kernel); }

}  // namespace modgap
