// knn_predict: k-nearest-neighbour classification. Schema: registration/schema.cpp.
// Kernel (CPU and CUDA): knn_predict_kernel.cpp. Meta: knn_predict_meta.cpp.
#pragma once

#include <ATen/ATen.h>

#include <string>

namespace modgap {

constexpr const char* kKnnPredictName = "modgap::knn_predict";

at::Tensor knn_predict_kernel(const at::Tensor& train_x, const at::Tensor& train_y, const at::Tensor& query_x,
                              int64_t k, c10::string_view metric);

void check_knn_arguments(const at::Tensor& train_x, const at::Tensor& train_y, const at::Tensor& query_x, int64_t k,
                         c10::string_view metric);

}  // namespace modgap
