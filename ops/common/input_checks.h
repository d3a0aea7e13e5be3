// Argument validation shared by every modgap kernel (CPU, CUDA and Meta). Every message names the
// operator, the argument and what was expected, so a user sees e.g.
//   "modgap::centroid_uniformity: embeddings[1] has shape [8, 3] but embeddings[0] has shape [8, 4];
//    every modality must be [N, D] with the same N and D".
#pragma once

#include <ATen/ATen.h>

#include <string>

namespace modgap {

// Checks that need no data (shape, dtype, device, counts); safe in Meta kernels and with symbolic
// shapes. `min_rows` is the smallest N the op is defined for.
void check_embeddings_metadata(const char* op, at::TensorList embeddings, int64_t min_rows);

// Checks the values: no NaN or Inf in any modality, naming the first one that has some. Reads all the
// data, so the kernels call it only through check_loss_is_finite, once a loss came out non-finite.
void check_embeddings_finite(const char* op, at::TensorList embeddings);

// Checks a computed loss: if it is NaN or Inf, names the modality holding NaN/Inf values (or reports
// an overflow when every input is finite). Costs nothing beyond reading one scalar on the happy
// path (a device sync on CUDA, skipped during CUDA graph capture). `accumulated_loss` is the same value
// before its cast to the embeddings' dtype: when it is finite, the overflow is the float16 result's
// (|x| <= 65504), not the accumulation's, and the message says so.
void check_loss_is_finite(const char* op, const at::Tensor& loss, at::TensorList embeddings,
                          const at::Tensor& accumulated_loss);

// The message of check_loss_is_finite once every input is known to be finite (`inputs`: how the op
// names them with their verb, e.g. "every embedding is", "x and y are").
[[noreturn]] void fail_loss_overflow(const char* op, const char* inputs, const at::Tensor& loss,
                                     const at::Tensor& accumulated_loss);

// The happy-path half of check_loss_is_finite, for ops that name their inputs themselves: true when the
// scalar `loss` is finite, or when it cannot be read because a CUDA graph is being captured.
bool loss_is_finite_or_capturing(const at::Tensor& loss);

void check_anchor(const char* op, int64_t anchor, int64_t num_modalities);

void check_temperature(const char* op, double t);

// The gradient passed to a backward op: a scalar on the embeddings' device.
void check_grad_output(const char* op, const at::Tensor& grad_output, const at::Tensor& like);

// ---- evaluation ops (data matrices, labels, index maps) ----

// `x` is a 2-D floating tensor [rows, D] with at least `min_rows` rows and 1 column.
void check_matrix(const char* op, const char* name, const at::Tensor& x, int64_t min_rows);

// `b` has the dtype, column count and device of `a` (both already checked with check_matrix).
void check_same_columns(const char* op, const char* name_a, const at::Tensor& a, const char* name_b,
                        const at::Tensor& b);

// `labels` is a 1-D integer tensor (any integer dtype, not bool) of `expected_length` entries on `device`.
void check_labels(const char* op, const char* name, const at::Tensor& labels, const c10::SymInt& expected_length,
                  const at::Device& device);

// Every value of `x` is finite; reads the data (the evaluation ops read it anyway), so a NaN in an
// embedding is an error naming the argument instead of a silently wrong metric.
void check_finite(const char* op, const char* name, const at::Tensor& x);

}  // namespace modgap
