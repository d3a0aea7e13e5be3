"""Accuracy of centroid_uniformity in each precision mode against float64, on random and clustered data.

The scale-out issue asks for the accuracy of every mode documented against a float64 reference, on
random and on clustered centroids (clustered is the hard case: d_ij = |u_i|^2 + |u_j|^2 - 2 u_i.u_j
cancels when centroids nearly coincide). For each data set and mode this script reports, against the
float64 formula evaluated on the very values the op received (inputs already rounded to the mode's
dtype, so only the op's own arithmetic is measured):

  loss_rel_err   |L - L64| / |L64|
  grad_rel_err   ||g - g64|| / ||g64||   (gradient with respect to the first modality)
  ..._rounding   the error of the float64 truth merely rounded to the mode's dtype (loss and gradient
                 are returned in the input dtype): a floor no implementation returning that dtype beats;
                 float16 gradients of unit-vector embeddings are often subnormal, so it is large there
  ..._pytorch    the same errors of plain PyTorch ops computing the same quantity in that dtype
                 (matmul, logsumexp over the upper triangle), the yardstick of PyTorch's own precision

Modes: fp64, fp32 (full float32 GEMMs), tf32 (CUDA only: torch.backends.cuda.matmul.allow_tf32),
fp16, bf16 (centroids rounded to the input dtype for the GEMMs, float32 accumulation, bfloat16 pair
weights; the CPU computes the same products as the GPU's tensor cores, so the CPU rows describe the
GPU's half modes up to the order of float32 accumulation).

  python bench/accuracy_centroid_uniformity.py [--device cpu|cuda] [--n 4096] [--d 512]
Writes JSON and markdown to --out (default bench/results/<device>_accuracy_centroid_uniformity).
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import torch
import torch.nn.functional as F

import modgap

T = 2.0
DTYPES = {"fp64": torch.float64, "fp32": torch.float32, "tf32": torch.float32, "fp16": torch.float16,
          "bf16": torch.bfloat16}


def make_data(kind: str, n: int, d: int, seed: int = 0) -> list[torch.Tensor]:
    """Two modalities of unit vectors. random: independent directions. clustered: 16 tight groups
    (angular spread ~0.02) with paired rows close to each other, as after training with ATP + CU."""
    g = torch.Generator().manual_seed(seed)
    if kind == "random":
        return [F.normalize(torch.randn(n, d, generator=g, dtype=torch.float64), dim=-1) for _ in range(2)]
    centers = F.normalize(torch.randn(16, d, generator=g, dtype=torch.float64), dim=-1)
    groups = torch.randint(0, 16, (n,), generator=g)
    base = centers[groups] + 0.02 * torch.randn(n, d, generator=g, dtype=torch.float64) / math.sqrt(d)
    return [F.normalize(base + 0.005 * torch.randn(n, d, generator=g, dtype=torch.float64) / math.sqrt(d), dim=-1)
            for _ in range(2)]


def formula(z: list[torch.Tensor]) -> torch.Tensor:
    """The float64 truth: normalised centroids, log-mean-exp of -t d_ij over i < j (pdist in float64)."""
    u = F.normalize(torch.stack(z).mean(0), dim=-1)
    sq = torch.pdist(u).square()
    return torch.logsumexp(-T * sq, 0) - math.log(sq.numel())


def pytorch_same_dtype(z: list[torch.Tensor]) -> torch.Tensor:
    """Plain PyTorch in the inputs' dtype: the matmul + logsumexp form of the issue's reference."""
    u = F.normalize((z[0] + z[1]) / 2, dim=-1)
    n = u.shape[0]
    sq_norms = (u * u).sum(1)
    sq = (sq_norms[:, None] + sq_norms[None, :] - 2 * (u @ u.T)).clamp_min(0)
    iu = torch.triu_indices(n, n, offset=1, device=u.device)
    return torch.logsumexp(-T * sq[iu[0], iu[1]], 0) - math.log(n * (n - 1) / 2)


def errors(fn, z_mode: list[torch.Tensor], loss64: torch.Tensor, grad64: torch.Tensor) -> tuple[float, float]:
    z = [x.detach().clone().requires_grad_(True) for x in z_mode]
    loss = fn(z)
    (grad,) = torch.autograd.grad(loss, z[:1])
    loss_err = abs(loss.double().item() - loss64.item()) / abs(loss64.item())
    grad_err = ((grad.double().cpu() - grad64).norm() / grad64.norm()).item()
    return loss_err, grad_err


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--n", type=int, default=4096)
    parser.add_argument("--d", type=int, default=512)
    parser.add_argument("--modes", nargs="+", default=None)
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    modes = args.modes or (["fp64", "fp32", "tf32", "fp16", "bf16"] if args.device == "cuda"
                           else ["fp64", "fp32", "fp16", "bf16"])
    out = Path(args.out or f"bench/results/{args.device}_accuracy_centroid_uniformity")
    rows = []
    for kind in ("random", "clustered"):
        z64 = make_data(kind, args.n, args.d)
        for mode in modes:
            dtype = DTYPES[mode]
            if args.device == "cuda":
                torch.backends.cuda.matmul.allow_tf32 = mode == "tf32"
            z_mode = [x.to(device=args.device, dtype=dtype) for x in z64]
            # truth on exactly the values the op receives
            z_true = [x.detach().double().cpu().requires_grad_(True) for x in z_mode]
            loss64 = formula(z_true)
            (grad64,) = torch.autograd.grad(loss64, z_true[:1])
            ours = errors(lambda z: modgap.centroid_uniformity(z, t=T), z_mode, loss64.detach(), grad64)
            theirs = errors(pytorch_same_dtype, z_mode, loss64.detach(), grad64)
            loss_rounding = abs(loss64.to(dtype).double().item() - loss64.item()) / abs(loss64.item())
            grad_rounding = ((grad64.to(dtype).double() - grad64).norm() / grad64.norm()).item()
            row = {"data": kind, "mode": mode, "n": args.n, "d": args.d, "loss": loss64.item(),
                   "loss_rel_err": ours[0], "grad_rel_err": ours[1],
                   "loss_rel_err_rounding": loss_rounding, "grad_rel_err_rounding": grad_rounding,
                   "loss_rel_err_pytorch": theirs[0], "grad_rel_err_pytorch": theirs[1]}
            rows.append(row)
            print(f"{kind:9s} {mode:5s} loss {row['loss']:+.6f}  modgap: loss {ours[0]:.2e} grad {ours[1]:.2e}"
                  f"   pytorch in {mode}: loss {theirs[0]:.2e} grad {theirs[1]:.2e}", flush=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"device": args.device, "torch": torch.__version__, "t": T,
            "gpu": torch.cuda.get_device_name() if args.device == "cuda" else None}
    out.with_suffix(".json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    lines = [f"centroid_uniformity accuracy vs float64 (N={args.n}, D={args.d}, t={T}, device={args.device}, "
             f"torch {torch.__version__})", "",
             "Loss and gradient are returned in the input dtype; 'truth rounded' is the error of the float64",
             "truth merely rounded to that dtype, a floor no implementation returning that dtype goes below.",
             "",
             "| data | mode | loss rel. err | truth rounded | grad rel. err | truth rounded | "
             "PyTorch same dtype: loss | grad |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['data']} | {r['mode']} | {r['loss_rel_err']:.1e} | {r['loss_rel_err_rounding']:.1e} | "
                     f"{r['grad_rel_err']:.1e} | {r['grad_rel_err_rounding']:.1e} | "
                     f"{r['loss_rel_err_pytorch']:.1e} | {r['grad_rel_err_pytorch']:.1e} |")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(f"wrote {out}.json and {out}.md")


if __name__ == "__main__":
    main()
