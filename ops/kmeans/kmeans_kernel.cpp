// kmeans for CPU and CUDA tensors (one ATen implementation registered for both keys).
//
// scikit-learn's KMeans(init="k-means++", algorithm="lloyd") step by step (sklearn/cluster/_kmeans.py;
// style-perf.md §4.3), because the paper's V-measures come from it (measures.md §9.2):
//   * the data are centred on their mean first (as sklearn does for dense input) and the mean is added
//     back to the centroids at the end;
//   * k-means++: first centre uniform at random; then each centre is the best of 2 + floor(log k)
//     candidates drawn with probability proportional to the squared distance to the nearest centre
//     (the one that lowers the potential most);
//   * Lloyd: assign to the nearest centre (ties: lowest index), recompute means; an empty cluster is
//     re-seeded with the point farthest from its centre; stop when the labels do not change ("strict"
//     convergence) or when sum ||c_new - c_old||^2 <= tol * mean_d var(x_d) (sklearn's relative tol);
//     without strict convergence the labels are recomputed for the final centres;
//   * n_init initialisations, the one with the lowest inertia wins (the first on ties).
// Random numbers come from a CPU generator seeded with `seed` (one stream for all initialisations), so
// a seed gives the same result on a given device. Per-cluster sums are deterministic on both devices
// (see cluster_sums_and_counts).
// Distances use ||x||^2 + ||c||^2 - 2 x.c in tiles of rows; no N x k buffer beyond one tile, no N x N.
#include <torch/library.h>

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include <cmath>
#include <limits>

#include "ops/common/evaluation_utils.h"
#include "ops/common/input_checks.h"
#include "ops/kmeans/kmeans.h"

namespace modgap {

namespace {

// Squared Euclidean distances between the rows of `x` and of `a`, clamped at 0 like sklearn's
// euclidean_distances: [rows(x), rows(a)]. Only used for the few k-means++ candidates; the GEMM is laid
// out as x @ a^T (tall-skinny output), which BLAS runs several times faster than a @ x^T.
at::Tensor squared_distances(const at::Tensor& x, const at::Tensor& x_sq, const at::Tensor& a,
                             const at::Tensor& a_sq) {
  return at::addmm(x_sq.unsqueeze(1) + a_sq.unsqueeze(0), x, a.t(), 1.0, -2.0).clamp_min_(0.0);
}

// sum_j ||x_j||^2 without an [N, D] temporary.
at::Tensor row_squared_norms(const at::Tensor& x) {
  at::Tensor out = at::empty({x.size(0)}, x.options());
  const int64_t rows = eval::tile_rows(x.size(1), x.device());
  for (int64_t start = 0; start < x.size(0); start += rows) {
    const int64_t len = std::min(rows, x.size(0) - start);
    const at::Tensor tile = x.narrow(0, start, len);
    out.narrow(0, start, len).copy_((tile * tile).sum(1));
  }
  return out;
}

// E-step: nearest centre of every row (ties: the lowest index, as sklearn).
at::Tensor assign_to_nearest(const at::Tensor& x, const at::Tensor& centers) {
  const int64_t n = x.size(0);
  const int64_t k = centers.size(0);
  const at::Tensor c_sq = centers.pow(2).sum(1);
  at::Tensor labels = at::empty({n}, x.options().dtype(at::kLong));
  const int64_t rows = eval::tile_rows(k, x.device());
  for (int64_t start = 0; start < n; start += rows) {
    const int64_t len = std::min(rows, n - start);
    // ||c||^2 - 2 x.c orders the centres like the full distance (||x||^2 is constant in a row).
    const at::Tensor partial = at::addmm(c_sq.unsqueeze(0), x.narrow(0, start, len), centers.t(), 1.0, -2.0);
    labels.narrow(0, start, len).copy_(partial.argmin(1));
  }
  return labels;
}

// Sum of the rows of each cluster on CUDA, [k, D], and the cluster sizes, [k], deterministically
// (atomic index_add_ would make the sums, hence the centroids, vary from run to run): the kernel of
// kmeans_cuda.cu. A build without the CUDA kernels (MODGAP_USE_CUDA=OFF) still serves CUDA tensors, with
// a one-hot GEMM per tile of rows; the one-hot tile is built with scatter_, not
// at::one_hot, and the sizes are its column sums, not at::bincount: both of those read the labels' range
// back to the host, two device syncs per Lloyd iteration.
std::pair<at::Tensor, at::Tensor> cluster_sums_and_counts(const at::Tensor& x, const at::Tensor& labels, int64_t k) {
#ifdef MODGAP_WITH_CUDA
  if (x.is_cuda()) {
    return cluster_sums_and_counts_cuda(x, labels.contiguous(), k);
  }
#endif
  at::Tensor sums = at::zeros({k, x.size(1)}, x.options());
  at::Tensor counts = at::zeros({k}, labels.options());
  const int64_t n = x.size(0);
  const int64_t tile = eval::tile_rows(k, x.device());
  for (int64_t start = 0; start < n; start += tile) {
    const int64_t len = std::min(tile, n - start);
    const at::Tensor one_hot =
        at::zeros({len, k}, x.options()).scatter_(1, labels.narrow(0, start, len).unsqueeze(1), 1.0);
    sums.addmm_(one_hot.t(), x.narrow(0, start, len));
    counts.add_(one_hot.sum(0, /*keepdim=*/false, at::kLong));  // exact: each entry is 0 or 1
  }
  return {sums, counts};
}

// The CPU path reads x once per Lloyd iteration, as scikit-learn's chunked loop does: the rows are
// split into a fixed number of blocks (fixed by k and D, not by the thread count, so results are
// bit-reproducible on any machine); a block takes 256 rows at a time, computes their distances to the
// centres with a small GEMM, picks the nearest and adds the rows to the block's partial sums while they
// are still in cache. Partial sums are then added in block order.
int64_t cpu_blocks(int64_t n, int64_t k, int64_t d) {
  const int64_t by_memory = std::max<int64_t>(1, (int64_t{1} << 24) / std::max<int64_t>(k * d, 1));
  return std::max<int64_t>(1, std::min<int64_t>({16, by_memory, (n + 255) / 256}));
}

void lloyd_step_cpu(const at::Tensor& x, const at::Tensor& centers, at::Tensor& labels, at::Tensor& sums,
                    at::Tensor& counts) {
  const int64_t n = x.size(0);
  const int64_t d = x.size(1);
  const int64_t k = centers.size(0);
  const int64_t blocks = cpu_blocks(n, k, d);
  const int64_t rows_per_block = (n + blocks - 1) / blocks;
  const at::Tensor c_sq = (centers * centers).sum(1).unsqueeze(0);
  const at::Tensor centers_t = centers.t().contiguous();
  at::Tensor partial_sums = at::zeros({blocks, k, d}, x.options());
  at::Tensor partial_counts = at::zeros({blocks, k}, x.options().dtype(at::kLong));
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "lloyd_step_cpu", [&] {
    at::parallel_for(0, blocks, 1, [&](int64_t b0, int64_t b1) {
      for (int64_t block = b0; block < b1; ++block) {
        const int64_t begin = block * rows_per_block;
        const int64_t end = std::min(n, begin + rows_per_block);
        scalar_t* block_sums = partial_sums[block].data_ptr<scalar_t>();
        int64_t* block_counts = partial_counts[block].data_ptr<int64_t>();
        int64_t* label = labels.data_ptr<int64_t>();
        for (int64_t start = begin; start < end; start += 256) {
          const int64_t len = std::min<int64_t>(256, end - start);
          const at::Tensor rows = x.narrow(0, start, len);
          // ||c||^2 - 2 x.c orders the centres like the full distance; ties go to the lowest index.
          const at::Tensor nearest = std::get<1>(at::addmm(c_sq, rows, centers_t, 1.0, -2.0).min(1));
          const int64_t* nearest_ptr = nearest.const_data_ptr<int64_t>();
          const scalar_t* row_ptr = rows.const_data_ptr<scalar_t>();
          for (int64_t i = 0; i < len; ++i) {
            const int64_t c = nearest_ptr[i];
            label[start + i] = c;
            block_counts[c] += 1;
            scalar_t* target = block_sums + c * d;
            const scalar_t* row = row_ptr + i * d;
            for (int64_t j = 0; j < d; ++j) {
              target[j] += row[j];
            }
          }
        }
      }
    });
  });
  sums = partial_sums.sum(0);  // block order, deterministic
  counts = partial_counts.sum(0);
}

// Exact inertia sum_i ||x_i - c_{label_i}||^2 in float64 (not the expanded form, which cancels).
at::Tensor exact_inertia(const at::Tensor& x, const at::Tensor& labels, const at::Tensor& centers) {
  const int64_t n = x.size(0);
  const int64_t d = x.size(1);
  if (!x.is_cuda()) {
    // Per-row float64 sums in parallel, then one ordered reduction.
    at::Tensor per_row = at::empty({n}, x.options().dtype(at::kDouble));
    const at::Tensor labels_contiguous = labels.contiguous();
    AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "exact_inertia_cpu", [&] {
      const scalar_t* rows = x.const_data_ptr<scalar_t>();
      const scalar_t* c = centers.const_data_ptr<scalar_t>();
      const int64_t* label = labels_contiguous.const_data_ptr<int64_t>();
      double* out = per_row.data_ptr<double>();
      at::parallel_for(0, n, 1024, [&](int64_t i0, int64_t i1) {
        for (int64_t i = i0; i < i1; ++i) {
          const scalar_t* row = rows + i * d;
          const scalar_t* center = c + label[i] * d;
          double total = 0.0;
          for (int64_t j = 0; j < d; ++j) {
            const double diff = static_cast<double>(row[j]) - static_cast<double>(center[j]);
            total += diff * diff;
          }
          out[i] = total;
        }
      });
    });
    return per_row.sum();
  }
  at::Tensor total = at::zeros({}, x.options().dtype(at::kDouble));
  const int64_t rows = eval::tile_rows(d, x.device());
  for (int64_t start = 0; start < n; start += rows) {
    const int64_t len = std::min(rows, n - start);
    const at::Tensor diff = x.narrow(0, start, len) - centers.index_select(0, labels.narrow(0, start, len));
    total += diff.pow(2).sum(at::kDouble);
  }
  return total;
}

// k-means++ (sklearn's _kmeans_plusplus with n_local_trials = 2 + floor(log k)).
at::Tensor kmeans_plusplus(const at::Tensor& x, const at::Tensor& x_sq, int64_t k, at::Generator& generator) {
  const int64_t n = x.size(0);
  const int64_t n_local_trials = 2 + static_cast<int64_t>(std::log(static_cast<double>(k)));
  const auto cpu_long = at::TensorOptions().dtype(at::kLong);
  const auto cpu_double = at::TensorOptions().dtype(at::kDouble);
  at::Tensor centers = at::empty({k, x.size(1)}, x.options());

  const at::Tensor first = at::randint(n, {1}, generator, cpu_long).to(x.device());
  centers.narrow(0, 0, 1).copy_(x.index_select(0, first));
  at::Tensor closest = squared_distances(x, x_sq, x.index_select(0, first), x_sq.index_select(0, first)).squeeze(1);
  at::Tensor potential = closest.sum(at::kDouble);
  // All candidate draws in one host-to-device copy (a copy from pageable host memory waits for the
  // device queue); the CPU generator gives the same stream as k - 1 draws of n_local_trials.
  const at::Tensor all_uniforms =
      k > 1 ? at::rand({k - 1, n_local_trials}, generator, cpu_double).to(x.device()) : at::Tensor();
  for (int64_t c = 1; c < k; ++c) {
    const at::Tensor uniforms = all_uniforms[c - 1];
    const at::Tensor cumulative = closest.cumsum(0, at::kDouble);
    at::Tensor candidates = at::searchsorted(cumulative, uniforms * potential).clamp_max_(n - 1);
    // [N, trials]: distance of every point to its nearest centre if the candidate were added.
    const at::Tensor distances = at::minimum(
        closest.unsqueeze(1),
        squared_distances(x, x_sq, x.index_select(0, candidates), x_sq.index_select(0, candidates)));
    const at::Tensor candidate_potentials = distances.sum(0, /*keepdim=*/false, at::kDouble);
    const at::Tensor best = candidate_potentials.argmin().unsqueeze(0);
    potential = candidate_potentials.index_select(0, best).squeeze(0);
    closest = distances.index_select(1, best).squeeze(1).contiguous();
    centers.narrow(0, c, 1).copy_(x.index_select(0, candidates.index_select(0, best)));
  }
  return centers;
}

// sklearn's _relocate_empty_clusters_dense: each empty cluster takes one of the points farthest from
// their current centre (and that point's old cluster loses it). Skipped when all points sit on their
// centres (more clusters than distinct points).
void relocate_empty_clusters(const at::Tensor& x, const at::Tensor& labels, const at::Tensor& old_centers,
                             at::Tensor& sums, at::Tensor& counts) {
  const at::Tensor empty_clusters = (counts == 0).nonzero().flatten().cpu();
  const int64_t num_empty = empty_clusters.size(0);
  const at::Tensor distances = (x - old_centers.index_select(0, labels)).pow(2).sum(1);
  if (distances.max().item<double>() == 0.0) {
    return;
  }
  const at::Tensor farthest = std::get<1>(distances.topk(num_empty)).cpu();
  const at::Tensor labels_of_farthest = labels.index_select(0, farthest.to(labels.device())).cpu();
  for (int64_t e = 0; e < num_empty; ++e) {
    const int64_t new_cluster = empty_clusters[e].item<int64_t>();
    const int64_t point = farthest[e].item<int64_t>();
    const int64_t old_cluster = labels_of_farthest[e].item<int64_t>();
    sums[old_cluster] -= x[point];
    sums[new_cluster].copy_(x[point]);
    counts[old_cluster] -= 1;
    counts[new_cluster] = 1;
  }
}

struct LloydResult {
  at::Tensor centers, labels, inertia;
  int64_t iterations;
};

LloydResult lloyd(const at::Tensor& x, at::Tensor centers, int64_t max_iter,
                  double tolerance) {
  const int64_t k = centers.size(0);
  at::Tensor labels_old = at::full({x.size(0)}, -1, x.options().dtype(at::kLong));
  at::Tensor labels;
  bool strict_convergence = false;
  int64_t iteration = 0;
  while (iteration < max_iter) {
    ++iteration;
    at::Tensor sums, counts;
    if (x.is_cuda()) {
      labels = assign_to_nearest(x, centers);
      std::tie(sums, counts) = cluster_sums_and_counts(x, labels, k);
    } else {
      labels = at::empty({x.size(0)}, x.options().dtype(at::kLong));
      lloyd_step_cpu(x, centers.contiguous(), labels, sums, counts);
    }
    const auto cluster_means = [&] { return sums / counts.clamp_min(1).to(x.scalar_type()).unsqueeze(1); };
    at::Tensor new_centers = cluster_means();
    // One host sync per iteration: did any label change, how far did the centres move, and is a
    // cluster empty (rare: then its centre is re-seeded and the move measured again).
    at::Tensor status = at::stack({(labels != labels_old).any().to(at::kDouble),
                                   (new_centers - centers).pow(2).sum(at::kDouble),
                                   (counts == 0).any().to(at::kDouble)})
                            .cpu();
    if (status.const_data_ptr<double>()[2] != 0.0) {
      relocate_empty_clusters(x, labels, centers, sums, counts);
      new_centers = cluster_means();
      status[1] = (new_centers - centers).pow(2).sum(at::kDouble).cpu();
    }
    centers = new_centers;
    const double* values = status.const_data_ptr<double>();
    if (values[0] == 0.0) {
      strict_convergence = true;
      break;
    }
    if (values[1] <= tolerance) {
      break;
    }
    labels_old = labels;
  }
  if (!strict_convergence) {
    labels = assign_to_nearest(x, centers);  // labels that match the final centres
  }
  return {centers, labels, exact_inertia(x, labels, centers), iteration};
}

}  // namespace

void check_kmeans_arguments(const at::Tensor& x, int64_t k, int64_t max_iter, double tol, int64_t n_init) {
  check_matrix(kKMeansName, "x", x, /*min_rows=*/1);
  TORCH_CHECK_VALUE(k >= 1, kKMeansName, ": `k` (the number of clusters) must be >= 1, got ", k);
  TORCH_CHECK_VALUE(x.sym_size(0) >= k, kKMeansName, ": `k` = ", k, " clusters need at least ", k,
                    " rows in `x`, got ", x.sym_size(0));
  TORCH_CHECK_VALUE(max_iter >= 1, kKMeansName, ": `max_iter` must be >= 1, got ", max_iter);
  TORCH_CHECK_VALUE(std::isfinite(tol) && tol >= 0.0, kKMeansName, ": `tol` must be a finite number >= 0, got ",
                    tol);
  TORCH_CHECK_VALUE(n_init >= 1, kKMeansName, ": `n_init` (the number of initialisations) must be >= 1, got ",
                    n_init);
}

KMeansResult kmeans_fit(const at::Tensor& x, int64_t k, int64_t max_iter, double tol, int64_t n_init, int64_t seed,
                        const KMeansProgress& progress) {
  check_kmeans_arguments(x, k, max_iter, tol, n_init);
  check_finite(kKMeansName, "x", x);
  const at::Tensor data = x.to(eval::compute_dtype(x.scalar_type())).contiguous();
  const at::Tensor mean = data.mean(0, /*keepdim=*/true);
  const at::Tensor centred = data - mean;
  const at::Tensor x_sq = row_squared_norms(centred);
  // sklearn's _tolerance: tol scaled by the mean per-feature variance.
  // For centred data mean_d var(x_d) = sum_i ||x_i||^2 / (N D): no [N, D] temporary.
  const double tolerance =
      tol == 0.0 ? 0.0 : x_sq.sum(at::kDouble).item<double>() / static_cast<double>(x.numel()) * tol;

  at::Generator generator = at::detail::createCPUGenerator(static_cast<uint64_t>(seed));
  LloydResult best;
  double best_inertia = std::numeric_limits<double>::infinity();
  for (int64_t run = 0; run < n_init; ++run) {
    const at::Tensor init = kmeans_plusplus(centred, x_sq, k, generator);
    LloydResult result = lloyd(centred, init, max_iter, tolerance);
    const double inertia = result.inertia.item<double>();
    if (progress) {
      progress(run, n_init, result.iterations, inertia);
    }
    if (run == 0 || inertia < best_inertia) {
      best_inertia = inertia;
      best = std::move(result);
    }
  }
  return {(best.centers + mean).to(x.scalar_type()), best.labels, best.inertia, best.iterations};
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> kmeans_kernel(const at::Tensor& x, int64_t k, int64_t max_iter,
                                                             double tol, int64_t n_init, int64_t seed) {
  KMeansResult result = kmeans_fit(x, k, max_iter, tol, n_init, seed);
  return {result.centroids, result.labels, result.inertia};
}

TORCH_LIBRARY_IMPL(modgap, CPU, m) { m.impl("kmeans", &kmeans_kernel); }
TORCH_LIBRARY_IMPL(modgap, CUDA, m) { m.impl("kmeans", &kmeans_kernel); }

}  // namespace modgap
