// Meta (fake) kernel of kmeans: centroids [k, D] (dtype of x), labels [N] int64, inertia float64 scalar.
#include <torch/library.h>

#include "ops/kmeans/kmeans.h"

namespace modgap {
namespace {

std::tuple<at::Tensor, at::Tensor, at::Tensor> kmeans_meta(const at::Tensor& x, int64_t k, int64_t max_iter,
                                                           double tol, int64_t n_init, int64_t seed) {
  check_kmeans_arguments(x, k, max_iter, tol, n_init);
  return {at::empty_symint({c10::SymInt(k), x.sym_size(1)}, x.options()),
          at::empty_symint({x.sym_size(0)}, x.options().dtype(at::kLong)),
          at::empty({}, x.options().dtype(at::kDouble))};
}

}  // namespace

TORCH_LIBRARY_IMPL(modgap, Meta, m) { m.impl("kmeans", &kmeans_meta); }

}  // namespace modgap
