"""The paper's Fig. 1: set the modality gap of trained embeddings post hoc and watch retrieval vs clustering.

Starting from the embeddings of a CLIP run, the matching pairs are shifted along the centroid difference
(Liang et al.'s shift, modgap.shift_modalities) so that the gap (eq. 2) takes each target value, from 0
up to --max-gap; at every point the held-out pairs are scored with modgap.evaluate: R@1 both ways
(instance-wise) and the V-measure of the joint k-means (group-wise). The paper's claim: the V-measure
peaks at gap 0 while R@1 hardly moves.

    .venv/bin/python scripts/gap_shift.py                                   # the main job's CLIP (LT) embeddings
    .venv/bin/python scripts/gap_shift.py --embeddings build/av_digits/embeddings_clip_lt.pt --pair image,audio

--embeddings takes a torch.save file: {"embeddings": {name: [N, D]}, "labels": [N]} (what
scripts/openclip_digits.py and scripts/av_mnist.py write) or a flat dict of tensors as `modgap eval`
reads it. The shift that reaches a target gap is found by bisection on the shift length (see
shift_to_gap: closing to exactly 0 takes a few shifts, because renormalising the rows turns the centroid
difference; the gap is bounded by 2 on the unit sphere, so a target above the reachable maximum is an error).
Writes a table, a JSON file and a plot (R@1 and V-measure against the gap) next to the embeddings.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

import modgap

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_EMBEDDINGS = ROOT / "build" / "digits" / "embeddings_clip_lt.pt"


def load_embeddings(path: Path) -> tuple[dict, torch.Tensor]:
    data = torch.load(path, map_location="cpu", weights_only=False)
    if not isinstance(data, dict):
        raise SystemExit(f"{path}: expected a dict saved with torch.save, got {type(data).__name__}")
    if isinstance(data.get("embeddings"), dict):
        embeddings = dict(data["embeddings"])
    else:
        embeddings = {k: v for k, v in data.items() if torch.is_tensor(v) and v.dim() == 2 and v.is_floating_point()}
    labels = data.get("labels")
    if not torch.is_tensor(labels) or labels.is_floating_point():
        raise SystemExit(f"{path}: no integer tensor under 'labels' (the V-measure needs the classes)")
    if len(embeddings) < 2:
        raise SystemExit(f"{path}: expected at least two [N, D] floating tensors, found {sorted(embeddings)}")
    return embeddings, labels


def gap_of(x: torch.Tensor, y: torch.Tensor) -> float:
    return float(modgap.gap_stats([x, y])["gap"][0, 1])


def _unit_centroid_difference(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    direction = x.mean(0) - y.mean(0)
    return direction / direction.norm()


def _bisect(gap_at, low: float, high: float, target: float, tol: float) -> float:
    """delta in [low, high] with gap_at(delta) = target, gap_at monotone between them."""
    increasing = gap_at(high) > gap_at(low)
    for _ in range(200):
        middle = (low + high) / 2
        value = gap_at(middle)
        if abs(value - target) <= tol:
            return middle
        if (value < target) == increasing:
            low = middle
        else:
            high = middle
    return (low + high) / 2


def shift_to_gap(x: torch.Tensor, y: torch.Tensor, target: float, tol: float = 1e-4, max_rounds: int = 20):
    """(x', y', total shift length) with gap(x', y') = target within tol.

    Opening (target above the trained gap): one shift along the trained centroid difference, the length
    found by bisection (the gap grows monotonically as the shift turns negative). Closing: the gap along a
    fixed direction falls to a small positive minimum, not 0 (each row is renormalised after the shift,
    which turns the centroid difference a little), so closing repeats: shift along the current centroid
    difference, by bisection when the target is reachable along it, else to the minimum along it
    (golden-section search) and again from there."""
    xs = torch.nn.functional.normalize(x.double(), dim=1)
    ys = torch.nn.functional.normalize(y.double(), dim=1)
    total = 0.0
    for _ in range(max_rounds):
        current = gap_of(xs, ys)
        if abs(current - target) <= tol:
            return xs, ys, total
        direction = _unit_centroid_difference(xs, ys)

        def gap_at(delta: float, xs=xs, ys=ys, direction=direction) -> float:
            return gap_of(*modgap.shift_modalities(xs, ys, delta, direction))

        if target > current:
            high = -0.5
            while gap_at(high) < target and high > -64:
                high *= 2
            if gap_at(high) < target - tol:
                raise ValueError(f"gap {target} is above the largest reachable gap {gap_at(high):.4f}")
            delta = _bisect(gap_at, 0.0, high, target, tol)
        else:
            low, high = 0.0, 2.0 * current + 0.1  # the minimum lies near delta = current gap
            ratio = (5 ** 0.5 - 1) / 2
            a, b = high - ratio * (high - low), low + ratio * (high - low)
            gap_a, gap_b = gap_at(a), gap_at(b)
            for _ in range(80):  # golden-section search for the minimiser: one new gap per step
                if gap_a < gap_b:
                    high, b, gap_b = b, a, gap_a
                    a = high - ratio * (high - low)
                    gap_a = gap_at(a)
                else:
                    low, a, gap_a = a, b, gap_b
                    b = low + ratio * (high - low)
                    gap_b = gap_at(b)
            argmin = (low + high) / 2
            delta = _bisect(gap_at, 0.0, argmin, target, tol) if gap_at(argmin) <= target else argmin
        xs, ys = modgap.shift_modalities(xs, ys, delta, direction)
        total += delta
    final = gap_of(xs, ys)
    if abs(final - target) > tol:
        raise ValueError(f"gap {target} not reached after {max_rounds} shifts (at {final:.5f})")
    return xs, ys, total


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--embeddings", type=Path, default=DEFAULT_EMBEDDINGS)
    parser.add_argument("--pair", default=None, help="two modality names, e.g. image,text (default: the first two)")
    parser.add_argument("--max-gap", type=float, default=1.0)
    parser.add_argument("--steps", type=int, default=10, help="target gaps: 0, max/steps, ..., max, plus the trained gap")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-init", type=int, default=10, help="k-means restarts per point (one restart is noisy)")
    parser.add_argument("--out", type=Path, default=None, help="output prefix (default: next to the embeddings)")
    args = parser.parse_args(argv)
    if not args.embeddings.exists():
        hint = " (run the main job first: bash scripts/main_job.sh)" if args.embeddings == DEFAULT_EMBEDDINGS else ""
        raise SystemExit(f"{args.embeddings} does not exist{hint}")
    embeddings, labels = load_embeddings(args.embeddings)
    names = args.pair.split(",") if args.pair else list(embeddings)[:2]
    if len(names) != 2 or any(n not in embeddings for n in names):
        raise SystemExit(f"--pair must name two of {sorted(embeddings)}, got {args.pair!r}")
    x, y = embeddings[names[0]], embeddings[names[1]]
    trained = gap_of(x, y)
    targets = sorted({round(args.max_gap * i / args.steps, 6) for i in range(args.steps + 1)} | {round(trained, 6)})
    rows = []
    for target in targets:
        if target == round(trained, 6):  # the trained embeddings themselves, as the training run evaluated them
            xs, ys, delta = x, y, 0.0
        else:
            xs, ys, delta = shift_to_gap(x, y, target)
        evaluation = modgap.evaluate({names[0]: xs.to(x.dtype), names[1]: ys.to(y.dtype)}, labels, seed=args.seed,
                                     n_init=args.n_init, fill_gap_k=0, probe_max_iter=0)
        pair = evaluation["pairs"][f"{names[0]}-{names[1]}"]
        rows.append({"target_gap": target, "gap": pair["gap"], "delta": delta, "trained": abs(target - round(trained, 6)) < 1e-9,
                     "cos_tp": pair["cos_tp_mean"],
                     "recall_1": {d: 100 * r["R@1"] for d, r in pair["recall"].items()},
                     "v_measure": 100 * evaluation["clustering"]["v_measure"],
                     "knn_joint": 100 * evaluation["knn"]["accuracy"]["joint"]})
    directions = list(rows[0]["recall_1"])
    header = ["gap", "Cos TP"] + [f"R@1 {d}" for d in directions] + ["V-measure", "kNN joint"]
    lines = ["| " + " | ".join(header) + " |", "|" + " ---: |" * len(header)]
    for r in rows:
        mark = " (trained)" if r["trained"] else ""
        lines.append(f"| {r['gap']:.3f}{mark} | {r['cos_tp']:.3f} | " + " | ".join(f"{r['recall_1'][d]:.1f}" for d in directions)
                     + f" | {r['v_measure']:.1f} | {r['knn_joint']:.1f} |")
    table = "\n".join(lines)
    best = max(rows, key=lambda r: r["v_measure"])
    out = args.out or args.embeddings.with_name(args.embeddings.stem + "_gap_shift")
    print(f"{args.embeddings} ({names[0]}-{names[1]}, {len(labels)} pairs): post-hoc shift from the trained gap {trained:.3f}\n")
    print(table)
    print(f"\nV-measure peaks at gap {best['gap']:.3f} ({best['v_measure']:.1f}); R@1 {directions[0]} spans "
          f"{min(r['recall_1'][directions[0]] for r in rows):.1f}-{max(r['recall_1'][directions[0]] for r in rows):.1f}")
    Path(f"{out}.json").write_text(json.dumps({"embeddings": str(args.embeddings), "pair": names, "trained_gap": trained,
                                               "protocol": evaluation["protocol"], "rows": rows}, indent=2))
    Path(f"{out}.md").write_text(table + "\n")
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        figure, axis = plt.subplots(figsize=(5, 3.5))
        gaps = [r["gap"] for r in rows]
        axis.plot(gaps, [r["v_measure"] for r in rows], "o-", label="V-measure (group-wise)")
        for d in directions:
            axis.plot(gaps, [r["recall_1"][d] for r in rows], "s--", label=f"R@1 {d} (instance-wise)")
        axis.axvline(trained, color="grey", linestyle=":", label="trained gap")
        axis.set_xlabel("modality gap (eq. 2)")
        axis.set_ylabel("%")
        axis.legend(fontsize=7)
        figure.tight_layout()
        figure.savefig(f"{out}.png", dpi=120)
        plt.close(figure)
        print(f"wrote {out}.json, {out}.md, {out}.png")
    except ImportError:
        print(f"wrote {out}.json, {out}.md (matplotlib missing: no plot)")


if __name__ == "__main__":
    main(sys.argv[1:])
