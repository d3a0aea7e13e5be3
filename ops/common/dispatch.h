// Dtype dispatch used by every kernel: the four floating types the ops accept. Arithmetic runs in
// at::opmath_type<scalar_t> (float for half/bfloat16/float, double for double).
#pragma once

#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>

#define MODGAP_DISPATCH_FLOATING_TYPES(TYPE, NAME, ...) \
  AT_DISPATCH_FLOATING_TYPES_AND2(at::ScalarType::Half, at::ScalarType::BFloat16, TYPE, NAME, __VA_ARGS__)
