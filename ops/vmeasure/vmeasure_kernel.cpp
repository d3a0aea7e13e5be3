// vmeasure for CPU and CUDA tensors: scikit-learn's homogeneity_completeness_v_measure, reproduced
// term by term (sklearn/metrics/cluster/_supervised.py; measures.md §9.1), in float64:
//   H(C) = -sum_c (n_c/n)(log n_c - log n)          (0 for a single class)
//   I(C;K) = sum over non-zero cells of (n_ck/n)(log n_ck - log n) + (n_ck/n)(log n + log n - log(n_c n_k)),
//            every term with |term| < float64 eps set to 0, the sum clipped at 0, and 0 when either
//            labelling has a single value
//   h = I/H(C) (1 if H(C) = 0), c = I/H(K) (1 if H(K) = 0), V = (1+beta) h c / (beta h + c) (0 if h+c = 0)
//   empty input: (1, 1, 1).
// Labels are arbitrary integers (relabelled with a sorted unique). The contingency table is built from
// the non-zero cells only (unique over the combined code class * K + cluster), so its size is the
// number of distinct (class, cluster) pairs, never classes x clusters.
#include <torch/library.h>

#include <cmath>
#include <limits>

#include "ops/common/input_checks.h"
#include "ops/vmeasure/vmeasure.h"

namespace modgap {

namespace {

// Entropy of a labelling from its label counts, as sklearn's _entropy.
at::Tensor entropy_from_counts(const at::Tensor& counts, double n) {
  const at::Tensor p = counts.to(at::kDouble);
  return -((p / n) * (p.log() - std::log(n))).sum();
}

}  // namespace

std::tuple<at::Tensor, at::Tensor, at::Tensor> vmeasure_kernel(const at::Tensor& labels_true,
                                                               const at::Tensor& labels_pred, double beta) {
  TORCH_CHECK_VALUE(labels_true.defined() && labels_true.dim() == 1, kVMeasureName,
                    ": `labels_true` must be a 1-D tensor of integer labels");
  check_labels(kVMeasureName, "labels_true", labels_true, labels_true.sym_size(0), labels_true.device());
  check_labels(kVMeasureName, "labels_pred", labels_pred, labels_true.sym_size(0), labels_true.device());
  TORCH_CHECK_VALUE(std::isfinite(beta) && beta >= 0.0, kVMeasureName,
                    ": `beta` (weight of homogeneity vs completeness) must be a finite number >= 0, got ", beta);
  const auto options = labels_true.options().dtype(at::kDouble);
  const int64_t n = labels_true.size(0);
  if (n == 0) {
    const at::Tensor one = at::ones({}, options);
    return {one, one.clone(), one.clone()};
  }
  const double nd = static_cast<double>(n);
  const auto [classes, class_index, class_counts] =
      at::_unique2(labels_true.to(at::kLong), /*sorted=*/true, /*return_inverse=*/true, /*return_counts=*/true);
  const auto [clusters, cluster_index, cluster_counts] =
      at::_unique2(labels_pred.to(at::kLong), /*sorted=*/true, /*return_inverse=*/true, /*return_counts=*/true);
  const int64_t num_classes = classes.size(0);
  const int64_t num_clusters = clusters.size(0);

  const at::Tensor entropy_classes = entropy_from_counts(class_counts, nd);
  const at::Tensor entropy_clusters = entropy_from_counts(cluster_counts, nd);

  at::Tensor mutual_information = at::zeros({}, options);
  if (num_classes > 1 && num_clusters > 1) {
    const at::Tensor code = class_index * num_clusters + cluster_index;
    const auto [cells, cell_inverse, cell_counts] =
        at::_unique2(code, /*sorted=*/true, /*return_inverse=*/false, /*return_counts=*/true);
    const at::Tensor nz = cell_counts.to(at::kDouble);
    const at::Tensor row = at::floor_divide(cells, num_clusters);
    const at::Tensor col = cells - row * num_clusters;
    const at::Tensor outer = class_counts.index_select(0, row).to(at::kDouble) *
                             cluster_counts.index_select(0, col).to(at::kDouble);
    const at::Tensor log_outer = -outer.log() + 2.0 * std::log(nd);
    const at::Tensor p = nz / nd;
    at::Tensor terms = p * (nz.log() - std::log(nd)) + p * log_outer;
    terms = at::where(terms.abs() < std::numeric_limits<double>::epsilon(), at::zeros_like(terms), terms);
    mutual_information = terms.sum().clamp_min(0.0);
  }
  const at::Tensor one = at::ones({}, options);
  const at::Tensor homogeneity = at::where(entropy_classes != 0.0, mutual_information / entropy_classes, one);
  const at::Tensor completeness = at::where(entropy_clusters != 0.0, mutual_information / entropy_clusters, one);
  const at::Tensor h_plus_c = homogeneity + completeness;
  const at::Tensor v = at::where(h_plus_c == 0.0, at::zeros_like(one),
                                 (1.0 + beta) * homogeneity * completeness / (beta * homogeneity + completeness));
  return {homogeneity, completeness, v};
}

TORCH_LIBRARY_IMPL(modgap, CPU, m) { m.impl("vmeasure", &vmeasure_kernel); }
TORCH_LIBRARY_IMPL(modgap, CUDA, m) { m.impl("vmeasure", &vmeasure_kernel); }

}  // namespace modgap
