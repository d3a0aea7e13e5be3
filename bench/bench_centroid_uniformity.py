"""Forward+backward of centroid_uniformity vs the seed reference (torch.pdist), measured in one run; with
--loss cross_uniformity, NotAGap's cross term vs Fahim et al.'s N x N form (torch.cdist, off-diagonal).

For each N (D = 512 by default) and each implementation a fresh subprocess
  1. builds two modalities of unit-norm float32 embeddings (requires_grad),
  2. records the process's peak RSS, runs forward+backward once and records the peak again:
     the difference is the peak extra memory of one step (gradients of the inputs included),
  3. times `repeats` further forward+backward steps (median).
Prints a table with the ratios reference / modgap and writes it as JSON (--json).

  .venv/bin/python bench/bench_centroid_uniformity.py [--sizes 256 1024 2048 4096] [--dim 512] [--device cpu]
      [--loss centroid_uniformity|cross_uniformity]
"""
from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import time

import torch
import torch.nn.functional as F


def seed_reference(image, text, t=2.0):
    # ispamm/ModGap: lunif_loss(F.normalize(compute_centroids_only(image, text)), t)
    centroids = F.normalize((image + text) / 2.0, dim=-1)
    return torch.pdist(centroids, p=2).pow(2).mul(-t).exp().mean().log()


def modgap_op(image, text, t=2.0):
    import modgap
    return modgap.centroid_uniformity([image, text], t=t)


def fahim_cross_uniformity(image, text, t=2.0):
    # abrar-fahim/contrastive-gap's cross-uniformity: the off-diagonal image-text pairs of the N x N matrix
    # (what patches/open_clip/loss.py computed before the op existed).
    sq = torch.cdist(image, text).pow(2)
    off = ~torch.eye(sq.shape[0], dtype=torch.bool, device=sq.device)
    return (torch.logsumexp(-t * sq[off], 0) - torch.log(off.sum().to(sq.dtype)))


def modgap_cross_uniformity(image, text, t=2.0):
    import modgap
    return modgap.cross_uniformity(image, text, t, exclude_diagonal=True)


IMPLEMENTATIONS = {
    "centroid_uniformity": {"modgap": modgap_op, "reference": seed_reference},
    "cross_uniformity": {"modgap": modgap_cross_uniformity, "reference": fahim_cross_uniformity},
}


def _peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def measure(impl: str, n: int, dim: int, repeats: int, device: str, loss: str = "centroid_uniformity") -> dict:
    import modgap  # noqa: F401  load before the baseline so the library is not counted
    fn = IMPLEMENTATIONS[loss][impl]
    gen = torch.Generator().manual_seed(n)
    image = F.normalize(torch.randn(n, dim, generator=gen), dim=-1).to(device).requires_grad_(True)
    text = F.normalize(torch.randn(n, dim, generator=gen), dim=-1).to(device).requires_grad_(True)

    def step():
        image.grad = None
        text.grad = None
        loss = fn(image, text)
        loss.backward()
        if device == "cuda":
            torch.cuda.synchronize()
        return loss

    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        step()
        extra = torch.cuda.max_memory_allocated() - base
    else:
        base = _peak_rss_bytes()
        step()
        extra = _peak_rss_bytes() - base
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        loss = step()
        times.append(time.perf_counter() - start)
    return {"impl": impl, "n": n, "dim": dim, "seconds": statistics.median(times), "peak_extra_bytes": extra,
            "loss": loss.item()}


def run_isolated(impl: str, n: int, dim: int, repeats: int, device: str, loss: str = "centroid_uniformity") -> dict:
    cmd = [sys.executable, __file__, "--worker", impl, str(n), str(dim), str(repeats), device, loss]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        tail = result.stderr.strip().splitlines()[-1:] or ["killed"]
        return {"impl": impl, "n": n, "dim": dim, "error": tail[0]}
    return json.loads(result.stdout)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        impl, n, dim, repeats, device = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
        print(json.dumps(measure(impl, n, dim, repeats, device, sys.argv[7])))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 1024, 2048, 4096])
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--loss", default="centroid_uniformity", choices=sorted(IMPLEMENTATIONS))
    parser.add_argument("--json", default=None, help="write the rows here")
    args = parser.parse_args()

    rows = []
    print(f"{args.loss} forward+backward, D={args.dim}, float32, device={args.device}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.processor() or platform.machine()}")
    header = f"{'N':>6} | {'modgap ms':>10} | {'reference ms':>12} | {'speed-up':>8} | {'modgap MiB':>10} | {'reference MiB':>13} | {'|dloss|':>8}"
    print(header)
    print("-" * len(header))
    for n in args.sizes:
        ours = run_isolated("modgap", n, args.dim, args.repeats, args.device, args.loss)
        ref = run_isolated("reference", n, args.dim, args.repeats, args.device, args.loss)
        row = {"n": n, "dim": args.dim, "modgap": ours, "reference": ref}
        rows.append(row)
        if "error" in ours or "error" in ref:
            print(f"{n:>6} | error: modgap={ours.get('error')} reference={ref.get('error')}")
            continue
        row["speedup"] = ref["seconds"] / ours["seconds"]
        print(f"{n:>6} | {ours['seconds'] * 1e3:>10.1f} | {ref['seconds'] * 1e3:>12.1f} | {row['speedup']:>7.1f}x | "
              f"{ours['peak_extra_bytes'] / 2**20:>10.1f} | {ref['peak_extra_bytes'] / 2**20:>13.1f} | "
              f"{abs(ours['loss'] - ref['loss']):>8.1e}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"loss": args.loss, "torch": torch.__version__, "threads": torch.get_num_threads(),
                       "device": args.device, "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
