#include "ops/common/input_checks.h"

#include <c10/core/SymIntArrayRef.h>

#include <cmath>
#include <sstream>

#ifdef MODGAP_WITH_CUDA
#include <ATen/cuda/CUDAGraphsUtils.cuh>
#endif

namespace modgap {
namespace {

std::string shape_string(c10::SymIntArrayRef sizes) {
  std::ostringstream out;
  out << "[";
  for (size_t i = 0; i < sizes.size(); ++i) {
    out << (i ? ", " : "") << sizes[i];
  }
  out << "]";
  return out.str();
}

bool is_supported_float(at::ScalarType type) {
  return type == at::kFloat || type == at::kDouble || type == at::kHalf || type == at::kBFloat16;
}

}  // namespace

void check_embeddings_metadata(const char* op, at::TensorList embeddings, int64_t min_rows) {
  const int64_t num_modalities = static_cast<int64_t>(embeddings.size());
  TORCH_CHECK_VALUE(num_modalities >= 2, op, ": expected at least 2 modalities in `embeddings`, got ",
                    num_modalities);
  for (int64_t m = 0; m < num_modalities; ++m) {
    TORCH_CHECK_VALUE(embeddings[m].defined(), op, ": embeddings[", m, "] is an undefined tensor");
  }
  const at::Tensor& first = embeddings[0];
  for (int64_t m = 0; m < num_modalities; ++m) {
    const at::Tensor& z = embeddings[m];
    TORCH_CHECK_VALUE(z.dim() == 2, op, ": embeddings[", m, "] must be a 2-D tensor [N, D], got shape ",
                      shape_string(z.sym_sizes()));
    TORCH_CHECK_TYPE(is_supported_float(z.scalar_type()), op, ": embeddings[", m,
                     "] must have a floating dtype (float32, float64, float16 or bfloat16), got ",
                     z.scalar_type());
    if (m == 0) {
      continue;
    }
    TORCH_CHECK_VALUE(z.sym_size(0) == first.sym_size(0) && z.sym_size(1) == first.sym_size(1), op,
                      ": embeddings[", m, "] has shape ", shape_string(z.sym_sizes()),
                      " but embeddings[0] has shape ", shape_string(first.sym_sizes()),
                      "; every modality must be [N, D] with the same N and D");
    TORCH_CHECK_TYPE(z.scalar_type() == first.scalar_type(), op, ": embeddings[", m, "] has dtype ",
                     z.scalar_type(), " but embeddings[0] has dtype ", first.scalar_type(),
                     "; every modality must have the same dtype");
    TORCH_CHECK_VALUE(z.device() == first.device(), op, ": embeddings[", m, "] is on ", z.device(),
                      " but embeddings[0] is on ", first.device(),
                      "; every modality must be on the same device");
  }
  TORCH_CHECK_VALUE(first.sym_size(0) >= min_rows, op, ": expected at least ", min_rows,
                    " rows (N) in every embedding, got N = ", first.sym_size(0));
  TORCH_CHECK_VALUE(first.sym_size(1) >= 1, op, ": expected at least 1 column (D) in every embedding, got D = ",
                    first.sym_size(1));
}

void check_embeddings_finite(const char* op, at::TensorList embeddings) {
  for (size_t m = 0; m < embeddings.size(); ++m) {
    const at::Tensor& z = embeddings[m];
    if (z.numel() == 0 || z.is_meta()) {
      continue;
    }
#ifdef MODGAP_WITH_CUDA
    if (z.is_cuda() && at::cuda::currentStreamCaptureStatus() != at::cuda::CaptureStatus::None) {
      continue;  // no host sync inside CUDA graph capture
    }
#endif
    const bool all_finite = at::isfinite(z).all().item<bool>();
    TORCH_CHECK_VALUE(all_finite, op, ": embeddings[", m,
                      "] contains NaN or Inf values; the loss would be NaN. Check the encoder outputs "
                      "(e.g. an overflow in float16) before calling the loss");
  }
}

bool loss_is_finite_or_capturing(const at::Tensor& loss) {
#ifdef MODGAP_WITH_CUDA
  if (loss.is_cuda() && at::cuda::currentStreamCaptureStatus() != at::cuda::CaptureStatus::None) {
    return true;
  }
#endif
  return std::isfinite(loss.item<double>());
}

void check_loss_is_finite(const char* op, const at::Tensor& loss, at::TensorList embeddings,
                          const at::Tensor& accumulated_loss) {
  if (loss_is_finite_or_capturing(loss)) {
    return;
  }
  check_embeddings_finite(op, embeddings);  // throws, naming the modality, if an input is NaN/Inf
  fail_loss_overflow(op, "every embedding is", loss, accumulated_loss);
}

void fail_loss_overflow(const char* op, const char* inputs, const at::Tensor& loss,
                        const at::Tensor& accumulated_loss) {
  const double accumulated = accumulated_loss.item<double>();
  if (std::isfinite(accumulated)) {
    // Only float16 can get here: bfloat16 has float32's range.
    TORCH_CHECK_VALUE(false, op, ": the loss is ", accumulated, " (computed in ", accumulated_loss.scalar_type(),
                      "), which does not fit in ", loss.scalar_type(),
                      ", the dtype of the embeddings that the op returns (float16 holds |x| <= 65504); "
                      "pass float32 embeddings, call the loss inside torch.autocast (which computes the "
                      "losses in float32), or rescale the embeddings");
  }
  TORCH_CHECK_VALUE(false, op, ": the loss is not finite although ", inputs, " finite; the squared "
                    "distances (times t for a uniformity term) overflow ", accumulated_loss.scalar_type(),
                    ", the accumulation dtype (rescale the embeddings or lower t)");
}

void check_anchor(const char* op, int64_t anchor, int64_t num_modalities) {
  TORCH_CHECK_VALUE(anchor >= 0 && anchor < num_modalities, op, ": `anchor` must index one of the ",
                    num_modalities, " modalities (0 <= anchor < ", num_modalities, "), got ", anchor);
}

void check_temperature(const char* op, double t) {
  TORCH_CHECK_VALUE(std::isfinite(t) && t > 0.0, op,
                    ": `t` (the uniformity temperature) must be a finite number > 0, got ", t);
}

void check_grad_output(const char* op, const at::Tensor& grad_output, const at::Tensor& like) {
  TORCH_CHECK_VALUE(grad_output.defined() && grad_output.dim() == 0, op,
                    ": `grad_output` must be a scalar tensor (the gradient of a scalar loss)");
  TORCH_CHECK_VALUE(grad_output.device() == like.device(), op, ": `grad_output` is on ", grad_output.device(),
                    " but the embeddings are on ", like.device());
}

void check_matrix(const char* op, const char* name, const at::Tensor& x, int64_t min_rows) {
  TORCH_CHECK_VALUE(x.defined(), op, ": `", name, "` is an undefined tensor");
  TORCH_CHECK_VALUE(x.dim() == 2, op, ": `", name, "` must be a 2-D tensor [rows, D], got shape ",
                    shape_string(x.sym_sizes()));
  TORCH_CHECK_TYPE(is_supported_float(x.scalar_type()), op, ": `", name,
                   "` must have a floating dtype (float32, float64, float16 or bfloat16), got ", x.scalar_type());
  TORCH_CHECK_VALUE(x.sym_size(0) >= min_rows, op, ": `", name, "` must have at least ", min_rows,
                    " rows, got shape ", shape_string(x.sym_sizes()));
  TORCH_CHECK_VALUE(x.sym_size(1) >= 1, op, ": `", name, "` must have at least 1 column, got shape ",
                    shape_string(x.sym_sizes()));
}

void check_same_columns(const char* op, const char* name_a, const at::Tensor& a, const char* name_b,
                        const at::Tensor& b) {
  TORCH_CHECK_VALUE(a.sym_size(1) == b.sym_size(1), op, ": `", name_b, "` has ", b.sym_size(1), " columns but `",
                    name_a, "` has ", a.sym_size(1), "; both must live in the same D-dimensional space");
  TORCH_CHECK_TYPE(a.scalar_type() == b.scalar_type(), op, ": `", name_b, "` has dtype ", b.scalar_type(),
                   " but `", name_a, "` has dtype ", a.scalar_type(), "; both must have the same dtype");
  TORCH_CHECK_VALUE(a.device() == b.device(), op, ": `", name_b, "` is on ", b.device(), " but `", name_a,
                    "` is on ", a.device(), "; both must be on the same device");
}

void check_labels(const char* op, const char* name, const at::Tensor& labels, const c10::SymInt& expected_length,
                  const at::Device& device) {
  TORCH_CHECK_VALUE(labels.defined(), op, ": `", name, "` is an undefined tensor");
  TORCH_CHECK_TYPE(at::isIntegralType(labels.scalar_type(), /*includeBool=*/false), op, ": `", name,
                   "` must hold integer labels (int64, int32, ...), got dtype ", labels.scalar_type());
  TORCH_CHECK_VALUE(labels.dim() == 1, op, ": `", name, "` must be a 1-D tensor of labels, got shape ",
                    shape_string(labels.sym_sizes()));
  TORCH_CHECK_VALUE(labels.sym_size(0) == expected_length, op, ": `", name, "` has ", labels.sym_size(0),
                    " entries but ", expected_length, " were expected (one per row)");
  TORCH_CHECK_VALUE(labels.device() == device, op, ": `", name, "` is on ", labels.device(), " but the data is on ",
                    device, "; move both to the same device");
}

void check_finite(const char* op, const char* name, const at::Tensor& x) {
  if (x.numel() == 0 || x.is_meta()) {
    return;
  }
  // Fast path: one reduction in the input dtype (a NaN or Inf anywhere makes the sum non-finite). Only when it is not
  // finite is every value tested, so an overflowing sum of finite values is not reported as NaN/Inf.
  if (std::isfinite(x.sum().item<double>())) {
    return;
  }
  TORCH_CHECK_VALUE(at::isfinite(x).all().item<bool>(), op, ": `", name,
                    "` contains NaN or Inf values; the result would be meaningless");
}

}  // namespace modgap
