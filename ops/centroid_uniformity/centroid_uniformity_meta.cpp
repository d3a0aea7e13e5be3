// Meta (fake) kernels of centroid_uniformity: shapes only, symbolic sizes kept (outputs are scalars or
// shaped like the inputs), so torch.compile(dynamic=True) and torch.export need no Python registration.
#include <torch/library.h>

#include "ops/centroid_uniformity/centroid_uniformity.h"
#include "ops/centroid_uniformity/centroid_uniformity_tiled.h"
#include "ops/common/input_checks.h"

namespace modgap {
namespace {

std::tuple<at::Tensor, at::Tensor> centroid_uniformity_forward_meta(at::TensorList embeddings, double t,
                                                                    bool normalize, bool compute_grad) {
  check_centroid_uniformity_arguments(kCentroidUniformityName, embeddings, t);
  const auto options = embeddings[0].options();
  const auto acc_options = options.dtype(cu::accumulation_dtype(embeddings[0].scalar_type()));
  at::Tensor centroid_grad = compute_grad
                                 ? at::empty_symint({embeddings[0].sym_size(0), embeddings[0].sym_size(1)}, acc_options)
                                 : at::empty({0}, acc_options);
  return {at::empty({}, options), centroid_grad};
}

at::Tensor centroid_uniformity_meta(at::TensorList embeddings, double t, bool normalize) {
  return std::get<0>(centroid_uniformity_forward_meta(embeddings, t, normalize, /*compute_grad=*/false));
}

std::vector<at::Tensor> centroid_uniformity_backward_meta(const at::Tensor& grad_output, const at::Tensor& centroid_grad,
                                                          int64_t num_modalities, at::ScalarType dtype) {
  TORCH_CHECK_VALUE(num_modalities >= 2, "modgap::_centroid_uniformity_backward: `num_modalities` must be >= 2, got ",
                    num_modalities);
  std::vector<at::Tensor> grads;
  for (int64_t m = 0; m < num_modalities; ++m) {
    grads.push_back(at::empty_like(centroid_grad, centroid_grad.options().dtype(dtype), at::MemoryFormat::Contiguous));
  }
  return grads;
}

}  // namespace

TORCH_LIBRARY_IMPL(modgap, Meta, m) {
  m.impl("centroid_uniformity", &centroid_uniformity_meta);
  m.impl("_centroid_uniformity_forward", &centroid_uniformity_forward_meta);
  m.impl("_centroid_uniformity_backward", &centroid_uniformity_backward_meta);
}

}  // namespace modgap
