// gap_stats for CPU and CUDA tensors (one ATen implementation registered for both keys; see
// ops/common/evaluation_utils.h for why the evaluation ops are not hand-written kernels).
//
// Definitions (../shared/notes/measures.md §2, §8; paper eq. 2, 3, Tables 3, 4, 10), on the
// L2-normalised rows z^_i of each modality, for modalities a and b with centroids c_a = mean_i z^_i^a:
//   gap               ||c_a - c_b||_2                                    (eq. 2, Liang et al.'s L2M)
//   cos_tp_mean/var   mean / variance over i of <z^_i^a, z^_i^b>          (eq. 3; Table 3)
//   pair_distance_*   mean / variance over i of ||z^_i^a - z^_i^b||_2      (Table 3; Schrodi's L2I)
//   rmg               D_match / (D_match + (D_a + D_b) / 2), d(c) = (1 - c) / 2,
//                     D_match = d(cos_tp_mean) (replaced by 1e-3 when <= 0),
//                     D_a = d(mean_{i != k} <z^_i^a, z^_k^a>)              (Schrodi et al., analysis form)
//   centroid_cosine   cos(c_a, c_b)                                       (Fahim et al.)
//   angular_value[a]  mean_{i != k} <z^_i^a, z^_k^a>                       (Table 10, "AV")
// Variances are population variances (divide by N). Diagonal entries pair a modality with itself.
//
// Nothing N x N is formed: the off-diagonal mean of a Gram matrix is
//   sum_{i != k} <z_i, z_k> = ||sum_i z_i||^2 - sum_i ||z_i||^2,
// so AV and RMG cost one column sum per modality. Pair statistics are one O(N*D) pass per pair.
// With `rmg_include_diagonal` the intra-modal means include the diagonal (||sum z||^2 / N^2), which
// reproduces the training-time RMG of Schrodi et al.'s OpenCLIP fork.
#include <torch/library.h>

#include <vector>

#include "ops/common/evaluation_utils.h"
#include "ops/common/input_checks.h"
#include "ops/gap_stats/gap_stats.h"

namespace modgap {

namespace {
// d(cos) = (1 - cos) / 2, Schrodi et al.'s cosine dissimilarity in [0, 1].
at::Tensor dissimilarity(const at::Tensor& cosine) { return (1.0 - cosine) * 0.5; }
}  // namespace

GapStats gap_stats_kernel(at::TensorList embeddings, bool rmg_include_diagonal) {
  check_embeddings_metadata(kGapStatsName, embeddings, /*min_rows=*/2);
  for (size_t m = 0; m < embeddings.size(); ++m) {
    const std::string name = "embeddings[" + std::to_string(m) + "]";
    check_finite(kGapStatsName, name.c_str(), embeddings[m]);
  }
  const int64_t num_modalities = static_cast<int64_t>(embeddings.size());
  const int64_t n = embeddings[0].size(0);
  const double nd = static_cast<double>(n);

  std::vector<at::Tensor> unit(num_modalities);       // z^ in the compute dtype
  std::vector<at::Tensor> centroid(num_modalities);   // [D] float64
  std::vector<at::Tensor> intra_mean(num_modalities); // mean intra-modal cosine (AV or with diagonal)
  std::vector<at::Tensor> angular_value(num_modalities);
  for (int64_t m = 0; m < num_modalities; ++m) {
    unit[m] = eval::l2_normalize_rows(embeddings[m]);
    const at::Tensor column_sum = unit[m].sum(0, /*keepdim=*/false, at::kDouble);
    const at::Tensor sum_sq_norm = unit[m].pow(2).sum(at::kDouble);  // N unless a row is zero
    const at::Tensor gram_sum = column_sum.dot(column_sum);          // sum over all (i, k) of <z_i, z_k>
    centroid[m] = column_sum / nd;
    angular_value[m] = (gram_sum - sum_sq_norm) / (nd * (nd - 1.0));
    intra_mean[m] = rmg_include_diagonal ? gram_sum / (nd * nd) : angular_value[m];
  }

  const auto zero = at::zeros({}, centroid[0].options());
  std::vector<at::Tensor> gap(num_modalities * num_modalities, zero), cos_mean(gap), cos_var(gap), dist_mean(gap),
      dist_var(gap), rmg(gap), centroid_cos(gap);
  for (int64_t a = 0; a < num_modalities; ++a) {
    for (int64_t b = a; b < num_modalities; ++b) {
      const at::Tensor cosine = (unit[a] * unit[b]).sum(1).to(at::kDouble);                    // [N]
      const at::Tensor distance = (unit[a] - unit[b]).norm(2, {1}).to(at::kDouble);            // [N]
      const at::Tensor mean_cos = cosine.mean();
      const at::Tensor mean_dist = distance.mean();
      const at::Tensor d_match_raw = dissimilarity(mean_cos);
      // On the diagonal D_match is 0 by definition (rounding would leave ~1e-8 instead): the clamp applies.
      const at::Tensor d_match = (a == b) ? at::full_like(d_match_raw, 1e-3)
                                          : at::where(d_match_raw <= 0.0, at::full_like(d_match_raw, 1e-3), d_match_raw);
      const at::Tensor d_intra = 0.5 * (dissimilarity(intra_mean[a]) + dissimilarity(intra_mean[b]));
      const at::Tensor centroid_norms = centroid[a].norm() * centroid[b].norm();
      const int64_t ab = a * num_modalities + b;
      const int64_t ba = b * num_modalities + a;
      gap[ab] = gap[ba] = (centroid[a] - centroid[b]).norm();
      cos_mean[ab] = cos_mean[ba] = mean_cos;
      cos_var[ab] = cos_var[ba] = (cosine - mean_cos).pow(2).mean();
      dist_mean[ab] = dist_mean[ba] = mean_dist;
      dist_var[ab] = dist_var[ba] = (distance - mean_dist).pow(2).mean();
      rmg[ab] = rmg[ba] = d_match / (d_match + d_intra);
      centroid_cos[ab] = centroid_cos[ba] = centroid[a].dot(centroid[b]) / centroid_norms.clamp_min(1e-8);
    }
  }
  const auto square = [num_modalities](const std::vector<at::Tensor>& entries) {
    return at::stack(entries).reshape({num_modalities, num_modalities});
  };
  return {square(gap), square(cos_mean), square(cos_var), square(dist_mean), square(dist_var), square(rmg),
          square(centroid_cos), at::stack(angular_value)};
}

TORCH_LIBRARY_IMPL(modgap, CPU, m) { m.impl("gap_stats", &gap_stats_kernel); }
TORCH_LIBRARY_IMPL(modgap, CUDA, m) { m.impl("gap_stats", &gap_stats_kernel); }

}  // namespace modgap
