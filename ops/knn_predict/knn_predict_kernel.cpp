// knn_predict for CPU and CUDA tensors (one ATen implementation registered for both keys).
//
// scikit-learn's KNeighborsClassifier(n_neighbors=k, weights="uniform") predict, which the paper's
// kNN accuracy uses (measures.md §9.2), with metric "cosine" (1 - cos) or "euclidean":
//   * neighbours: the k training rows nearest to each query. Scores are computed tile by tile (query
//     tile x training tile, one GEMM each) and merged into a running top-k, so memory is one tile, never
//     N_query x N_train. "euclidean" ranks by 2 q.x - ||x||^2 (= ||q||^2 - ||q - x||^2), "cosine" by
//     the inner product of L2-normalised rows.
//   * vote: majority of the k neighbours' labels; a tie goes to the smallest label (sklearn takes the
//     argmax over its sorted classes_, i.e. the first). Equal distances at the k-th neighbour are broken
//     arbitrarily, as in sklearn.
#include <torch/library.h>

#include "ops/common/evaluation_utils.h"
#include "ops/common/input_checks.h"
#include "ops/knn_predict/knn_predict.h"

namespace modgap {

void check_knn_arguments(const at::Tensor& train_x, const at::Tensor& train_y, const at::Tensor& query_x, int64_t k,
                         c10::string_view metric) {
  check_matrix(kKnnPredictName, "train_x", train_x, /*min_rows=*/1);
  check_matrix(kKnnPredictName, "query_x", query_x, /*min_rows=*/0);
  check_same_columns(kKnnPredictName, "train_x", train_x, "query_x", query_x);
  check_labels(kKnnPredictName, "train_y", train_y, train_x.sym_size(0), train_x.device());
  TORCH_CHECK_VALUE(k >= 1 && train_x.sym_size(0) >= k, kKnnPredictName, ": `k` (neighbours) must be in [1, ",
                    train_x.sym_size(0), "] (the number of training rows), got ", k);
  TORCH_CHECK_VALUE(metric == "cosine" || metric == "euclidean", kKnnPredictName,
                    ": `metric` must be \"cosine\" or \"euclidean\", got \"", metric, "\"");
}

at::Tensor knn_predict_kernel(const at::Tensor& train_x, const at::Tensor& train_y, const at::Tensor& query_x,
                              int64_t k, c10::string_view metric) {
  check_knn_arguments(train_x, train_y, query_x, k, metric);
  check_finite(kKnnPredictName, "train_x", train_x);
  check_finite(kKnnPredictName, "query_x", query_x);
  const bool cosine = metric == "cosine";
  const at::Tensor train = cosine ? eval::l2_normalize_rows(train_x)
                                  : train_x.to(eval::compute_dtype(train_x.scalar_type())).contiguous();
  const at::Tensor query = cosine ? eval::l2_normalize_rows(query_x) : query_x.to(train.scalar_type()).contiguous();
  // Euclidean: score = 2 q.x - ||x||^2; the bias is added as the GEMM's input term.
  const at::Tensor bias = cosine ? at::zeros({train.size(0)}, train.options()) : -train.pow(2).sum(1);
  const double alpha = cosine ? 1.0 : 2.0;

  const auto [classes, class_of_train, class_counts] =
      at::_unique2(train_y, /*sorted=*/true, /*return_inverse=*/true, /*return_counts=*/false);
  const int64_t num_classes = classes.size(0);
  const int64_t n_train = train.size(0);
  const int64_t n_query = query.size(0);
  const int64_t cols = std::min(eval::tile_cols(train.device()), n_train);
  // Query rows per tile: one score tile and one vote table of that many rows fit the tile budget.
  const int64_t rows = eval::tile_rows(std::max(cols, num_classes), train.device());

  at::Tensor predictions = at::empty({n_query}, train_y.options());
  for (int64_t q0 = 0; q0 < n_query; q0 += rows) {
    const int64_t q_len = std::min(rows, n_query - q0);
    const at::Tensor q = query.narrow(0, q0, q_len);
    eval::RunningTopK nearest(k);
    for (int64_t t0 = 0; t0 < n_train; t0 += cols) {
      const int64_t t_len = std::min(cols, n_train - t0);
      nearest.add(at::addmm(bias.narrow(0, t0, t_len).unsqueeze(0), q, train.narrow(0, t0, t_len).t(), 1.0, alpha),
                  t0);
    }
    const at::Tensor& best_index = nearest.items();
    const at::Tensor neighbour_class = class_of_train.index_select(0, best_index.flatten()).view(best_index.sizes());
    at::Tensor votes = at::zeros({q_len, num_classes}, train.options().dtype(at::kInt));
    votes.scatter_add_(1, neighbour_class, at::ones_like(neighbour_class, votes.options()));
    // argmax returns the first maximum, i.e. the smallest label among tied classes.
    predictions.narrow(0, q0, q_len).copy_(classes.index_select(0, votes.argmax(1)));
  }
  return predictions;
}

TORCH_LIBRARY_IMPL(modgap, CPU, m) { m.impl("knn_predict", &knn_predict_kernel); }
TORCH_LIBRARY_IMPL(modgap, CUDA, m) { m.impl("knn_predict", &knn_predict_kernel); }

}  // namespace modgap
