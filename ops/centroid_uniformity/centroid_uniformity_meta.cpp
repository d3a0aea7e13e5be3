// Meta (fake) kernels of centroid_uniformity: shapes only, symbolic sizes kept (outputs are scalars or
// shaped like the inputs), so torch.compile(dynamic=True) and torch.export need no Python registration.
#include <torch/library.h>

#include "ops/centroid_uniformity/centroid_uniformity.h"
#include "ops/centroid_uniformity/centroid_uniformity_tiled.h"
#include "ops/common/input_checks.h"

namespace modgap {
namespace {

std::tuple<at::Tensor, at::Tensor> centroid_uniformity_forward_meta(at::TensorList embeddings, double t,
                                                                    bool normalize) {
  check_centroid_uniformity_arguments(kCentroidUniformityName, embeddings, t);
  const auto options = embeddings[0].options();
  return {at::empty({}, options),
          at::empty({}, options.dtype(cu::accumulation_dtype(embeddings[0].scalar_type())))};
}

at::Tensor centroid_uniformity_meta(at::TensorList embeddings, double t, bool normalize) {
  return std::get<0>(centroid_uniformity_forward_meta(embeddings, t, normalize));
}

std::vector<at::Tensor> centroid_uniformity_backward_meta(const at::Tensor& grad_output, at::TensorList embeddings,
                                                          const at::Tensor& log_pair_sum, double t, bool normalize) {
  check_centroid_uniformity_arguments("modgap::_centroid_uniformity_backward", embeddings, t);
  std::vector<at::Tensor> grads;
  for (const auto& z : embeddings) {
    grads.push_back(at::empty_like(z, at::MemoryFormat::Contiguous));
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
