// Meta (fake) kernels of cross_uniformity: shapes only, symbolic sizes kept, so torch.compile(dynamic=True)
// and torch.export trace the op without any Python registration.
#include <torch/library.h>

#include "ops/centroid_uniformity/centroid_uniformity_tiled.h"
#include "ops/common/input_checks.h"
#include "ops/cross_uniformity/cross_uniformity.h"

namespace modgap {
namespace {

std::tuple<at::Tensor, at::Tensor> cross_uniformity_forward_meta(const at::Tensor& x, const at::Tensor& y, double t,
                                                                 bool exclude_diagonal) {
  check_cross_uniformity_arguments(kCrossUniformityName, x, y, t, exclude_diagonal);
  const auto acc_dtype = cu::accumulation_dtype(x.scalar_type());
  return {at::empty({}, x.options()), at::empty({}, x.options().dtype(acc_dtype))};
}

at::Tensor cross_uniformity_meta(const at::Tensor& x, const at::Tensor& y, double t, bool exclude_diagonal) {
  return std::get<0>(cross_uniformity_forward_meta(x, y, t, exclude_diagonal));
}

std::tuple<at::Tensor, at::Tensor> cross_uniformity_backward_meta(const at::Tensor& grad_output, const at::Tensor& x,
                                                                  const at::Tensor& y, const at::Tensor& log_pair_sum,
                                                                  double t, bool exclude_diagonal) {
  check_cross_uniformity_arguments("modgap::_cross_uniformity_backward", x, y, t, exclude_diagonal);
  return {at::empty_like(x, at::MemoryFormat::Contiguous), at::empty_like(y, at::MemoryFormat::Contiguous)};
}

}  // namespace

TORCH_LIBRARY_IMPL(modgap, Meta, m) {
  m.impl("cross_uniformity", &cross_uniformity_meta);
  m.impl("_cross_uniformity_forward", &cross_uniformity_forward_meta);
  m.impl("_cross_uniformity_backward", &cross_uniformity_backward_meta);
}

}  // namespace modgap
