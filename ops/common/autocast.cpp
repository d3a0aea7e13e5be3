// Autocast kernels of every modgap op that takes tensors (the AutocastCPU and AutocastCUDA dispatch keys),
// so the ops give the same numbers inside `torch.autocast(...)` as outside it.
//
// Why they are needed: without a kernel here the dispatcher falls through the autocast key, and autocast
// stays switched on while our kernels run. The ATen calls inside them (matmul, mm, cdist, ...) are then
// autocast themselves: float32 accumulators become bf16 / fp16 halfway through a kernel. That crashed
// centroid_uniformity ("expected scalar type Float but found BFloat16"), silently moved cross_uniformity
// by 3e-2, and changed knn_predict's predictions and spectral_align's embeddings (measured on the CPU
// before this file existed; tests/python/test_autocast.py keeps each case).
//
// Two policies, one boxed kernel each (the stack is the op's own arguments; torchvision's autocast
// kernels do the same per op, unboxed):
//   * the differentiable losses (atp_loss eq. 7, centroid_uniformity eq. 8/9, cross_uniformity) follow
//     PyTorch's float32 policy for losses (F.cross_entropy, F.mse_loss, ... under autocast): fp16 / bf16
//     inputs on the autocast device are cast to float32, so the loss is float32, modalities of mixed
//     precision (a bf16 image tower beside float32 cached text features) are accepted, and the cast is
//     recorded by autograd, which hands each input its gradient in its own dtype;
//   * every other op (metrics, post-hoc methods, and the internal `_` halves that the autograd kernels
//     and modgap.distributed call) keeps its inputs as given; only autocast is switched off, so its
//     result is the one it gives outside autocast.
// Both run the op with every autocast key excluded, as PyTorch's own autocast wrappers do.
#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <c10/core/impl/LocalDispatchKeySet.h>
#include <torch/library.h>

namespace modgap {
namespace {

void autocast_keep_dtypes(const c10::OperatorHandle& op, c10::DispatchKeySet, torch::jit::Stack* stack) {
  c10::impl::ExcludeDispatchKeyGuard no_autocast(c10::autocast_dispatch_keyset);
  op.callBoxed(stack);
}

bool casts_to_float32(const at::Tensor& tensor, c10::DeviceType device_type) {
  return tensor.defined() && tensor.device().type() == device_type &&
         (tensor.scalar_type() == at::kHalf || tensor.scalar_type() == at::kBFloat16);
}

template <c10::DeviceType device_type>
void autocast_to_float32(const c10::OperatorHandle& op, c10::DispatchKeySet dispatch_keys, torch::jit::Stack* stack) {
  const size_t num_arguments = op.schema().arguments().size();
  for (auto argument = stack->end() - static_cast<std::ptrdiff_t>(num_arguments); argument != stack->end();
       ++argument) {
    if (argument->isTensor()) {
      const at::Tensor tensor = argument->toTensor();
      if (casts_to_float32(tensor, device_type)) *argument = tensor.to(at::kFloat);
    } else if (argument->isTensorList()) {
      // A new list: the one on the stack may be shared with the caller (a TorchScript list it still uses).
      c10::List<at::Tensor> cast;
      for (const at::Tensor& tensor : argument->toTensorList().vec()) {
        cast.push_back(casts_to_float32(tensor, device_type) ? tensor.to(at::kFloat) : tensor);
      }
      *argument = cast;
    }
  }
  autocast_keep_dtypes(op, dispatch_keys, stack);
}

// The losses of the float32 policy; tests/python/test_autocast.py checks that every op of the schema
// (registration/schema.cpp) that takes a tensor is in one of the two lists.
const char* const kFloat32Losses[] = {"atp_loss", "centroid_uniformity", "cross_uniformity"};
const char* const kKeepDtypes[] = {
    // internal halves of the losses (autograd kernels, modgap.distributed)
    "_atp_loss_backward", "_centroid_uniformity_forward", "_centroid_uniformity_backward", "_centroids",
    "_centroid_uniformity_partial", "_centroid_uniformity_partial_backward", "_cross_uniformity_forward",
    "_cross_uniformity_backward",
    // evaluation and post-hoc methods
    "gap_stats", "vmeasure", "kmeans", "knn_predict", "logistic_regression", "linear_probe_predict",
    "retrieval_recall", "retrieval_recall_any", "fill_gap_stats", "spectral_align", "emd", "emd_laplace",
    "ot_map_new_points", "shift_modalities", "_evaluate"};

template <c10::DeviceType device_type>
void register_autocast_kernels(torch::Library& m) {
  for (const char* name : kFloat32Losses) {
    m.impl(name, torch::CppFunction::makeFromBoxedFunction<&autocast_to_float32<device_type>>());
  }
  for (const char* name : kKeepDtypes) {
    m.impl(name, torch::CppFunction::makeFromBoxedFunction<&autocast_keep_dtypes>());
  }
}

}  // namespace

TORCH_LIBRARY_IMPL(modgap, AutocastCPU, m) { register_autocast_kernels<c10::DeviceType::CPU>(m); }
TORCH_LIBRARY_IMPL(modgap, AutocastCUDA, m) { register_autocast_kernels<c10::DeviceType::CUDA>(m); }

}  // namespace modgap
