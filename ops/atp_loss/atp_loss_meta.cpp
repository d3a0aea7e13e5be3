// Meta (fake) kernels of atp_loss: shapes only, symbolic sizes kept, so torch.compile and
// torch.export trace the op without any Python registration.
#include <torch/library.h>

#include "ops/atp_loss/atp_loss.h"
#include "ops/common/input_checks.h"
#include "ops/common/tensor_utils.h"

namespace modgap {
namespace {

at::Tensor atp_loss_forward_meta(at::TensorList embeddings, int64_t anchor) {
  check_embeddings_metadata(kAtpLossName, embeddings, /*min_rows=*/1);
  check_anchor(kAtpLossName, anchor, static_cast<int64_t>(embeddings.size()));
  return at::empty({}, embeddings[0].options());
}

std::vector<at::Tensor> atp_loss_backward_meta(const at::Tensor& grad_output, at::TensorList embeddings,
                                               int64_t anchor) {
  check_embeddings_metadata("modgap::_atp_loss_backward", embeddings, /*min_rows=*/1);
  check_anchor("modgap::_atp_loss_backward", anchor, static_cast<int64_t>(embeddings.size()));
  return empty_gradients_like(embeddings);
}

}  // namespace

TORCH_LIBRARY_IMPL(modgap, Meta, m) {
  m.impl("atp_loss", &atp_loss_forward_meta);
  m.impl("_atp_loss_backward", &atp_loss_backward_meta);
}

}  // namespace modgap
