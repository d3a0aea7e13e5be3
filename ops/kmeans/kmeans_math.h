// Per-block body of the deterministic cluster sums of a Lloyd step (the M-step of k-means), shared by
// the CUDA kernel (kmeans_cuda.cu, one call per thread) and the GoogleTest emulation of that kernel
// (tests/cpp/test_ops.cpp, a loop over blocks and threads on the CPU).
//
// Block b owns the rows [b * rows_per_block, min(n, (b + 1) * rows_per_block)); thread `thread` of
// `threads` owns the feature columns thread, thread + threads, ... and adds them row by row, in row
// order, into the block's [k, d] sums; thread 0 also counts the rows per cluster. No two threads write
// the same element and the order of every sum is fixed, so the result does not depend on scheduling;
// the host then adds the blocks' partial sums in block order. (atomicAdd into one [k, d] buffer would
// make the centroids, hence the labels of later iterations, vary from run to run.)
#pragma once

#include <cstdint>

#include "ops/common/host_device.h"

namespace modgap::kmeans_math {

template <typename scalar_t>
MODGAP_HOST_DEVICE void accumulate_block_cluster_sums(const scalar_t* x, const int64_t* labels, int64_t n, int64_t d,
                                                      int64_t rows_per_block, int64_t block, int64_t thread,
                                                      int64_t threads, scalar_t* block_sums, int64_t* block_counts) {
  const int64_t begin = block * rows_per_block;
  const int64_t end = begin + rows_per_block < n ? begin + rows_per_block : n;
  for (int64_t col = thread; col < d; col += threads) {
    for (int64_t i = begin; i < end; ++i) {
      block_sums[labels[i] * d + col] += x[i * d + col];
    }
  }
  if (thread == 0) {
    for (int64_t i = begin; i < end; ++i) {
      block_counts[labels[i]] += 1;
    }
  }
}

// Blocks of a cluster-sum pass over n rows: about 128 rows each, at most 1024 blocks, and at most 2^24
// partial-sum elements ([blocks, k, d]) in all. A function of (n, k, d) only, so a seed gives the same
// centroids on any GPU.
inline int64_t cluster_sum_blocks(int64_t n, int64_t k, int64_t d) {
  const int64_t by_rows = (n + 127) / 128;
  const int64_t by_memory = (int64_t{1} << 24) / (k * d > 0 ? k * d : 1);
  int64_t blocks = by_rows < 1024 ? by_rows : 1024;
  blocks = blocks < by_memory ? blocks : by_memory;
  return blocks > 1 ? blocks : 1;
}

}  // namespace modgap::kmeans_math
