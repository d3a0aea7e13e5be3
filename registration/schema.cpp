// The one TORCH_LIBRARY block of the `modgap` namespace: every operator's schema is here.
// Kernels live beside each other in ops/<op>/: <op>_cpu.cpp, <op>_cuda.cu, <op>_meta.cpp and
// <op>_autograd.cpp, each with its own TORCH_LIBRARY_IMPL block.
//
// Schemas are part of the public contract; ops whose name starts with `_` are internal (the
// forward/backward halves the autograd kernels call through the dispatcher, so that torch.compile
// and TorchScript see registered ops on both passes).
#include <torch/library.h>

#ifdef MODGAP_WITH_CUDA
#include <cuda_runtime_api.h>
#endif

#include <modgap/modgap.h>

namespace modgap {
namespace detail {
int64_t link_anchor() { return 1; }
}  // namespace detail

int64_t cuda_version() {
#ifdef MODGAP_WITH_CUDA
  return CUDART_VERSION;
#else
  return -1;
#endif
}
}  // namespace modgap

TORCH_LIBRARY(modgap, m) {
  // ---- losses (paper eq. 7, 8/9, 21) ----
  // Eq. 7: alignment of true pairs to the anchor modality.
  m.def("atp_loss(Tensor[] embeddings, int anchor=0) -> Tensor", {at::Tag::pt2_compliant_tag});
  m.def("_atp_loss_backward(Tensor grad_output, Tensor[] embeddings, int anchor) -> Tensor[]",
        {at::Tag::pt2_compliant_tag});

  // Eq. 8/9: uniformity of the (normalised) per-sample centroids, as the reference code's
  // lunif_loss(F.normalize(centroids)). The internal forward half also returns, when compute_grad,
  // dL/dc (gradient with respect to the centroids for an upstream gradient of 1, [N, D] in the
  // accumulation dtype; an empty tensor otherwise): it is computed in the same pass over the pairs, so
  // the backward half only scales it and hands 1/M of it to each modality.
  m.def("centroid_uniformity(Tensor[] embeddings, float t=2.0, bool normalize=True) -> Tensor",
        {at::Tag::pt2_compliant_tag});
  m.def(
      "_centroid_uniformity_forward(Tensor[] embeddings, float t, bool normalize, bool compute_grad) -> (Tensor, "
      "Tensor)",
      {at::Tag::pt2_compliant_tag});
  m.def(
      "_centroid_uniformity_backward(Tensor grad_output, Tensor centroid_grad, int num_modalities, ScalarType dtype) "
      "-> Tensor[]",
      {at::Tag::pt2_compliant_tag});

  // ---- library information ----
  m.def("_cuda_version() -> int", &modgap::cuda_version);
}
