#pragma once

#include <ATen/ATen.h>

#include <vector>

namespace modgap {

// Contiguous copies (or the tensors themselves when already contiguous) for raw-pointer kernels.
inline std::vector<at::Tensor> contiguous_embeddings(at::TensorList embeddings) {
  std::vector<at::Tensor> out;
  out.reserve(embeddings.size());
  for (const auto& z : embeddings) {
    out.push_back(z.contiguous());
  }
  return out;
}

// Uninitialised gradients shaped like each modality (contiguous): the outputs of backward Meta kernels.
inline std::vector<at::Tensor> empty_gradients_like(at::TensorList embeddings) {
  std::vector<at::Tensor> grads;
  grads.reserve(embeddings.size());
  for (const auto& z : embeddings) {
    grads.push_back(at::empty_like(z, at::MemoryFormat::Contiguous));
  }
  return grads;
}

}  // namespace modgap
