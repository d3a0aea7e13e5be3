// Lets one header of math be compiled by both the host compiler (CPU kernels) and nvcc (CUDA kernels).
#pragma once

#if defined(__CUDACC__) || defined(__HIPCC__)
#define MODGAP_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define MODGAP_HOST_DEVICE inline
#endif
