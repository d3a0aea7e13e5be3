"""The paper's Fig. 3: the loss landscape of InfoNCE and of L_CLgap along the gap, with mismatched pairs.

Following Liang et al. (2022)'s mismatch simulation (their mismatched_simulation.ipynb: points on two
rings of S^2, symmetric InfoNCE with logits s * cos, the texts of two pairs swapped to model mismatched
data), `--pairs` image-text pairs sit on two rings of the unit sphere in R^3: image i at azimuth 2*pi*i/n
and latitude +theta/2, its text at the same azimuth and latitude -theta/2, so that theta is the angle
between every matched pair and the gap (eq. 2, centroid distance) is 2 sin(theta/2). The texts of the
pairs named by `--swap` are exchanged (one swap = two mismatched pairs; the paper uses six pairs, two
mismatched; swapping antipodal pairs, e.g. 0,3 of 6, makes their centroids the zero vector, which
L_CU's normalisation maps to zero). For theta from 0 to 180 degrees it evaluates

    InfoNCE     = CLIP's symmetric cross-entropy with logits s * v_i . t_j       (s = 1 / temperature)
    L_CLgap     = InfoNCE + lambda1 * L_ATP + lambda2 * L_CU                        (eq. 21)

with L_ATP and L_CU from modgap's operators, and, under L_CLgap, the gradient norm each pair receives
(Fig. 3b). It reports where each landscape has its global minimum, whether theta = 0 is a minimum, and
the smallest lambda1 for which theta = 0 is L_CLgap's global minimum at each scale.

    .venv/bin/python scripts/loss_landscape.py                            # 6 pairs, pairs 0 and 1 swapped
    .venv/bin/python scripts/loss_landscape.py --swap 0,3 --scales 14.2857 100
    .venv/bin/python scripts/loss_landscape.py --swap none                # no mismatch: Liang et al.'s control

Writes build/landscape/landscape_<swap>.{json,md,png}. Runs in seconds on a CPU.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

import modgap

sys.path.insert(0, str(Path(__file__).resolve().parent))
ROOT = Path(__file__).resolve().parents[1]
PAPER_SCALE = 1 / 0.07  # the fixed temperature of the paper's OpenCLIP runs


def rings(theta: float, pairs: int, swap: tuple[int, int] | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Unit image and text embeddings [pairs, 3] (float64) with angle theta (radians) between the rings."""
    phi = torch.arange(pairs, dtype=torch.float64) * (2 * math.pi / pairs)
    c, s = math.cos(theta / 2), math.sin(theta / 2)
    image = torch.stack([c * phi.cos(), c * phi.sin(), torch.full_like(phi, s)], 1)
    text = torch.stack([c * phi.cos(), c * phi.sin(), torch.full_like(phi, -s)], 1)
    if swap is not None:
        a, b = swap
        text[[a, b]] = text[[b, a]]
    return image, text


def infonce(image: torch.Tensor, text: torch.Tensor, scale: float) -> torch.Tensor:
    """CLIP's symmetric InfoNCE with logit scale `scale` (OpenCLIP's ClipLoss on one batch)."""
    logits = scale * image @ text.T
    target = torch.arange(image.shape[0])
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


def terms(image, text, scale: float, t: float) -> dict[str, torch.Tensor]:
    return {"infonce": infonce(image, text, scale), "atp": modgap.atp_loss([image, text]),
            "cu": modgap.centroid_uniformity([image, text], t)}


def landscape(thetas: torch.Tensor, pairs: int, swap, scale: float, lambda1: float, lambda2: float, t: float) -> dict:
    """Every term along theta, and under L_CLgap the gradient norm of each pair ([dL/dv_i, dL/dt_i])."""
    out = {"infonce": [], "atp": [], "cu": [], "clgap": [], "pair_gradient": []}
    for theta in thetas.tolist():
        image, text = rings(theta, pairs, swap)
        image.requires_grad_(True)
        text.requires_grad_(True)
        values = terms(image, text, scale, t)
        clgap = values["infonce"] + lambda1 * values["atp"] + lambda2 * values["cu"]
        grad_image, grad_text = torch.autograd.grad(clgap, [image, text])
        for key, value in values.items():
            out[key].append(float(value.detach()))
        out["clgap"].append(float(clgap.detach()))
        out["pair_gradient"].append(torch.cat([grad_image, grad_text], 1).norm(dim=1).tolist())
    return out


def minimum(thetas: torch.Tensor, values: list[float]) -> dict:
    """Global minimum (degrees, gap 2 sin(theta/2)) and whether theta = 0 is a (one-sided) local minimum."""
    i = min(range(len(values)), key=values.__getitem__)  # the first of equal minima: the smallest theta
    theta = float(thetas[i])
    return {"theta_deg": math.degrees(theta), "gap": 2 * math.sin(theta / 2), "value": values[i],
            "zero_is_local_min": values[0] <= values[1]}


def lambda1_for_zero(landscape_terms: dict, lambda2: float, high: float = 1e3) -> float | None:
    """Smallest lambda1 (to 1e-3) for which theta = 0 is L_CLgap's global minimum on the grid of a
    `landscape` result (its InfoNCE, L_ATP and L_CU along theta); None above `high`.
    L_ATP is minimal at theta = 0 and L_CU does not depend on theta, so the set of such lambda1 is [x, inf)."""
    info, atp, cu = (torch.tensor(landscape_terms[key]) for key in ("infonce", "atp", "cu"))

    def zero_is_global(lam: float) -> bool:
        total = info + lam * atp + lambda2 * cu
        return bool(total[0] <= total.min())

    if zero_is_global(0.0):
        return 0.0
    if not zero_is_global(high):
        return None
    low = 0.0
    while high - low > 1e-3:
        mid = (low + high) / 2
        low, high = (low, mid) if zero_is_global(mid) else (mid, high)
    return high


def parse_swap(text: str, pairs: int) -> tuple[int, int] | None:
    if text == "none":
        return None
    try:
        a, b = (int(x) for x in text.split(","))
    except ValueError:
        raise SystemExit(f"--swap: expected two pair indices 'a,b' or 'none', got {text!r}") from None
    if not (0 <= a < pairs and 0 <= b < pairs and a != b):
        raise SystemExit(f"--swap: expected two different pair indices in [0, {pairs}), got {text!r}")
    return a, b


def plot(thetas, results: dict, swap_name: str, pairs: int, swap, out: Path) -> Path:
    from training_plots import _pyplot, save
    plt = _pyplot()
    degrees = [math.degrees(x) for x in thetas.tolist()]
    fig, (ax_loss, ax_grad) = plt.subplots(1, 2, figsize=(12, 4.5))
    for scale, r in results.items():
        for key, style in (("infonce", "--"), ("clgap", "-")):
            values = torch.tensor(r[key])
            line, = ax_loss.plot(degrees, (values - values.min()).tolist(), style,
                                 label=f"{'InfoNCE' if key == 'infonce' else 'L_CLgap'}, s = {scale:g}")
            m = r["minimum"][key]["theta_deg"]
            ax_loss.plot([m], [0.0], "o", color=line.get_color())
    ax_loss.set(xlabel="angle between matched pairs θ (degrees)", ylabel="loss − its minimum",
                title=f"(a) landscape, {pairs} pairs, swapped: {swap_name}")
    ax_loss.legend(fontsize=7)
    scale = min(results, key=lambda s: abs(s - PAPER_SCALE))
    gradients = torch.tensor(results[scale]["pair_gradient"])
    for i in range(pairs):
        mismatched = swap is not None and i in swap
        ax_grad.plot(degrees, gradients[:, i].tolist(), "-" if mismatched else ":",
                     label=f"pair {i}{' (mismatched)' if mismatched else ''}")
    ax_grad.set_yscale("log")  # L_CU's normalised centroids shrink towards 180 degrees: its gradient grows as 1/|mu|
    ax_grad.set(xlabel="angle between matched pairs θ (degrees)", ylabel="‖∂L_CLgap / ∂(v_i, t_i)‖",
                title=f"(b) gradient per pair under L_CLgap, s = {scale:g}")
    ax_grad.legend(fontsize=7)
    return save(fig, out)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("--pairs", type=int, default=6)
    parser.add_argument("--swap", default="0,1", help="two pairs whose texts are exchanged, 'a,b', or 'none'")
    parser.add_argument("--scales", type=float, nargs="+", default=[1.0, 5.0, PAPER_SCALE, 100.0],
                        help="InfoNCE logit scales s = 1/temperature (default 1, 5, 1/0.07, 100)")
    parser.add_argument("--lambda1", type=float, default=1.0)
    parser.add_argument("--lambda2", type=float, default=1.0)
    parser.add_argument("--t", type=float, default=2.0)
    parser.add_argument("--step", type=float, default=0.25, help="grid step in degrees (the grid stops short of 180)")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "landscape")
    args = parser.parse_args(argv)
    if args.pairs < 3:
        raise SystemExit(f"--pairs: expected at least 3 pairs (the rings need distinct points), got {args.pairs}")
    if not 0 < args.step < 90:
        raise SystemExit(f"--step: expected a grid step in (0, 90) degrees, got {args.step}")
    if any(not (s > 0 and math.isfinite(s)) for s in args.scales):
        raise SystemExit(f"--scales: expected positive finite logit scales, got {args.scales}")
    swap = parse_swap(args.swap, args.pairs)
    started = time.time()
    # theta = 180 degrees puts every image on one pole and every text on the other (no centroid direction)
    thetas = torch.deg2rad(torch.arange(0.0, 180.0, args.step, dtype=torch.float64))
    results = {}
    for scale in args.scales:
        r = landscape(thetas, args.pairs, swap, scale, args.lambda1, args.lambda2, args.t)
        r["minimum"] = {key: minimum(thetas, r[key]) for key in ("infonce", "clgap")}
        r["lambda1_for_zero"] = lambda1_for_zero(r, args.lambda2)
        r["cu_range"] = max(r["cu"]) - min(r["cu"])
        results[scale] = r
    swap_name = "none" if swap is None else f"{swap[0]},{swap[1]}"
    lines = [f"| s (1/temperature) | InfoNCE min θ° (gap) | L_CLgap min θ° (gap) | θ = 0 a local min of L_CLgap | "
             f"smallest λ1 with global min at θ = 0 |", "| ---: | ---: | ---: | --- | ---: |"]
    for scale, r in results.items():
        info, clgap = r["minimum"]["infonce"], r["minimum"]["clgap"]
        lam = r["lambda1_for_zero"]
        lines.append(f"| {scale:g} | {info['theta_deg']:.2f} ({info['gap']:.3f}) | {clgap['theta_deg']:.2f} ({clgap['gap']:.3f}) | "
                     f"{'yes' if clgap['zero_is_local_min'] else 'no'} | {'> 1000' if lam is None else f'{lam:.3f}'} |")
    table = "\n".join(lines)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"landscape_{swap_name.replace(',', '-')}"
    figure = plot(thetas, results, swap_name, args.pairs, swap, stem.with_suffix(".png"))
    setup = {"pairs": args.pairs, "swap": swap, "lambda1": args.lambda1, "lambda2": args.lambda2, "t": args.t,
             "step_deg": args.step}
    stem.with_suffix(".json").write_text(json.dumps({"setup": setup, "thetas_deg": torch.rad2deg(thetas).tolist(),
                                                     "scales": {str(s): r for s, r in results.items()}}))
    stem.with_suffix(".md").write_text(table + "\n")
    print(f"{args.pairs} pairs on two rings, texts of pairs {swap_name} swapped; L_CLgap = InfoNCE + "
          f"{args.lambda1:g} L_ATP + {args.lambda2:g} L_CU (t = {args.t:g}); grid 0-{180 - args.step:g} degrees by {args.step:g}. "
          f"L_CU varies along θ by at most {max(r['cu_range'] for r in results.values()):.1e} (the paper: ∂L_CU/∂θ = 0).\n")
    print(table)
    print(f"\nplot: {figure}; data: {stem.with_suffix('.json')}; {time.time() - started:.1f}s")


if __name__ == "__main__":
    main(sys.argv[1:])
