"""Where the GPU time goes, for the two ops that missed their H100 targets on 2026-11-23
(centroid_uniformity bf16 N=32768 D=1024 fwd+bwd: 13.25 ms vs <= 10; k-means 100k x 512, k=20: 43.3 ms
per run vs <= 40 ms per 100 iterations). torch.profiler over a few steps: kernels by total device time,
and the host-side synchronisations (each drains the launch queue).

  python bench/profile_gpu.py [--out profile.txt]      # on the GPU machine (scripts/gpu_check.sh profile)
"""
from __future__ import annotations

import argparse
import sys

import torch
import torch.nn.functional as F
from torch.profiler import ProfilerActivity, profile

import modgap


def centroid_uniformity_case(n: int = 32768, d: int = 1024, steps: int = 3):
    generator = torch.Generator().manual_seed(0)
    z = [F.normalize(torch.randn(n, d, generator=generator), dim=-1).cuda().bfloat16().requires_grad_(True)
         for _ in range(2)]

    def run():
        for _ in range(steps):
            for x in z:
                x.grad = None
            modgap.centroid_uniformity(z, 2.0).backward()
    return f"centroid_uniformity bf16 N={n} D={d}, {steps} forward+backward steps", run


def kmeans_case(n: int = 100_000, d: int = 512, k: int = 20):
    generator = torch.Generator().manual_seed(0)
    centers = torch.randn(k, d, generator=generator)
    x = (centers[torch.randint(0, k, (n,), generator=generator)] + 2 * torch.randn(n, d, generator=generator)).cuda()

    def run():
        modgap.kmeans(x, k, 100, 0.0, 1, 0)
    return f"kmeans {n} x {d}, k={k}, max_iter=100, tol=0, one run", run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    out = open(args.out, "w") if args.out else sys.stdout
    for title, run in (centroid_uniformity_case(), kmeans_case()):
        run()  # warm-up: cuBLAS handles, allocator
        torch.cuda.synchronize()
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        run()
        end.record()
        torch.cuda.synchronize()
        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            run()
            torch.cuda.synchronize()
        events = prof.key_averages()
        print(f"== {title}: {start.elapsed_time(end):.2f} ms unprofiled", file=out)
        print(events.table(sort_by="cuda_time_total", row_limit=25, max_name_column_width=70), file=out)
        syncs = {e.key: e.count for e in events
                 if any(word in e.key for word in ("Synchronize", "cudaMemcpy", "item", "_local_scalar_dense"))}
        print(f"host synchronisations and copies: {syncs}\n", file=out, flush=True)


if __name__ == "__main__":
    main()
