"""Closing the gap after training (post hoc) against closing it in training (the paper's L_ATP + L_CU).

The paper's claim is about training: L_ATP + L_CU close the gap *and* align group-wise semantics. "Fill the
Gap" (Role et al. 2025, seed 003) and Liang et al. (2022) close it after training instead, on frozen
embeddings. This script puts the three post-hoc methods modgap provides next to the trained ones, on the
same held-out pairs and with the same evaluation (modgap.evaluate):

    CLIP, as trained                      the contrastive run's held-out embeddings (--embeddings)
    + shift to gap 0 (Liang et al.)       every pair moved along the centroid difference until the gap
                                          (eq. 2) is 0 (gap_shift.shift_to_gap, modgap.shift_modalities)
    + spectral (Fill the Gap)             both modalities re-embedded in k dimensions by the Laplacian of
                                          their bipartite cosine graph (modgap.spectral_align; transductive)
    + optimal transport (Fill the Gap)    the images moved onto the texts by the EMD-Laplace coupling
                                          (modgap.emd_laplace, POT's EMDLaplaceTransport defaults), fitted on
                                          --ot-fit-fraction of the pairs and applied to all of them
                                          (modgap.ot_map_new_points: exact on the fitted rows)
    Ours, as trained                      the L_ATP + L_CU run's held-out embeddings (--trained), if present

Every row reports the gap and Cos TP (eq. 2, 3), Fill the Gap's ITR / TIR (top-1 neighbour in the mixed
collection: about 1 without a gap) and FID between the modalities, R@1 both ways (instance-wise), the
V-measure of the joint k-means and the joint kNN accuracy (group-wise), and linear separability (0.5 =
the modalities cannot be told apart). The rows are L2-normalised before each method (the methods work on
cosine geometry; modgap.evaluate normalises again).

    .venv/bin/python scripts/post_hoc.py                        # after bash scripts/main_job.sh
    .venv/bin/python scripts/post_hoc.py --embeddings build/av_digits/embeddings_clip_lt.pt \\
        --trained build/av_digits/embeddings_ours.pt --pair image,audio

Writes <embeddings stem>_post_hoc.{json,md} next to --embeddings.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

import modgap

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gap_shift import load_embeddings, shift_to_gap  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_EMBEDDINGS = ROOT / "build" / "digits" / "embeddings_clip_lt.pt"
DEFAULT_TRAINED = ROOT / "build" / "digits" / "embeddings_ours.pt"


def select_pair(embeddings: dict, pair: str | None, path: Path) -> tuple[list[str], torch.Tensor, torch.Tensor]:
    names = pair.split(",") if pair else list(embeddings)[:2]
    if len(names) != 2 or any(n not in embeddings for n in names):
        raise SystemExit(f"{path}: --pair must name two of {sorted(embeddings)}, got {pair!r}")
    x, y = (F.normalize(embeddings[n].double(), dim=1) for n in names)
    return names, x, y


def fit_rows(n: int, fraction: float, seed: int) -> torch.Tensor:
    """The sorted rows the transport is fitted on: a seeded random `fraction` of the n pairs (all when 1)."""
    if fraction >= 1.0:
        return torch.arange(n)
    count = max(2, round(fraction * n))
    g = torch.Generator().manual_seed(seed)
    return torch.randperm(n, generator=g)[:count].sort().values


def optimal_transport(x: torch.Tensor, y: torch.Tensor, rows: torch.Tensor, k: int) -> torch.Tensor:
    """Images x moved onto the texts by the EMD-Laplace transport fitted on `rows` (images and texts of those
    pairs, as unpaired sets): every row of x goes through the out-of-sample map, which for a fitted row is
    exactly its barycentric image."""
    xs = x[rows]
    _, xs_transported = modgap.emd_laplace(xs, y[rows], k=k)
    return modgap.ot_map_new_points(x, xs, xs_transported)


def scores(names: list[str], x: torch.Tensor, y: torch.Tensor, labels: torch.Tensor, seed: int, n_init: int) -> dict:
    evaluation = modgap.evaluate({names[0]: x.float(), names[1]: y.float()}, labels, seed=seed, n_init=n_init,
                                 fill_gap_k=1)
    pair = evaluation["pairs"][f"{names[0]}-{names[1]}"]
    return {"dim": x.shape[1], "gap": pair["gap"], "cos_tp": pair["cos_tp_mean"],
            "itr": pair["fill_the_gap"]["itr"], "tir": pair["fill_the_gap"]["tir"], "fid": pair["fill_the_gap"]["fid"],
            "recall_1": {d: 100 * r["R@1"] for d, r in pair["recall"].items()},
            "v_measure": 100 * evaluation["clustering"]["v_measure"],
            "knn_joint": 100 * evaluation["knn"]["accuracy"]["joint"],
            "linear_separability": pair["linear_separability"], "protocol": evaluation["protocol"]}


def methods(x: torch.Tensor, y: torch.Tensor, spectral_k: int, ot_rows: torch.Tensor, ot_k: int):
    """(name, images, texts, seconds) of each post-hoc method applied to the contrastive run's pairs."""
    yield "as trained", x, y, 0.0
    started = time.time()
    xs, ys, _ = shift_to_gap(x, y, 0.0)
    yield "shift to gap 0 (Liang et al.)", xs, ys, time.time() - started
    started = time.time()
    xs, ys = modgap.spectral_align(x, y, spectral_k)
    yield f"spectral, k = {spectral_k} (Fill the Gap)", xs, ys, time.time() - started
    started = time.time()
    xs = optimal_transport(x, y, ot_rows, ot_k)
    yield f"optimal transport, fit on {len(ot_rows)} pairs (Fill the Gap)", xs, y, time.time() - started


def ratio(value: float) -> str:
    return "inf" if value == float("inf") else f"{value:.2f}"


def table(rows: list[dict], directions: list[str]) -> str:
    header = (["method", "dim", "gap", "Cos TP", "ITR", "TIR", "FID"] + [f"R@1 {d}" for d in directions]
              + ["V-measure", "kNN joint", "lin. sep."])
    lines = ["| " + " | ".join(header) + " |", "| --- |" + " ---: |" * (len(header) - 1)]
    for r in rows:
        lines.append(f"| {r['method']} | {r['dim']} | {r['gap']:.3f} | {r['cos_tp']:.3f} | {ratio(r['itr'])} | "
                     f"{ratio(r['tir'])} | {r['fid']:.3f} | "
                     + " | ".join(f"{r['recall_1'][d]:.1f}" for d in directions)
                     + f" | {r['v_measure']:.1f} | {r['knn_joint']:.1f} | {r['linear_separability']:.3f} |")
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--embeddings", type=Path, default=DEFAULT_EMBEDDINGS, help="the contrastive run's embeddings")
    parser.add_argument("--trained", type=Path, default=None,
                        help="a run trained to close the gap, for comparison (default: the main job's L_ATP + L_CU "
                             "run when --embeddings is the main job's and that file exists)")
    parser.add_argument("--pair", default=None, help="two modality names, e.g. image,text (default: the first two)")
    parser.add_argument("--spectral-k", type=int, default=60, help="dimensions of the spectral embedding (Fill the Gap: 60, 120)")
    parser.add_argument("--ot-fit-fraction", type=float, default=1.0,
                        help="share of the pairs the transport is fitted on (seeded); the rest are mapped out of sample")
    parser.add_argument("--ot-k", type=int, default=3, help="neighbours of the kNN graphs of EMD-Laplace (POT's default 3)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-init", type=int, default=10, help="k-means restarts (one restart is noisy)")
    parser.add_argument("--out", type=Path, default=None, help="output prefix (default: next to --embeddings)")
    args = parser.parse_args(argv)
    if not args.embeddings.exists():
        hint = " (run the main job first: bash scripts/main_job.sh)" if args.embeddings == DEFAULT_EMBEDDINGS else ""
        raise SystemExit(f"{args.embeddings} does not exist{hint}")
    if not 0.0 < args.ot_fit_fraction <= 1.0:
        raise SystemExit(f"--ot-fit-fraction: expected a share in (0, 1], got {args.ot_fit_fraction}")
    if args.trained is None:
        # the main job writes both runs; any other --embeddings names its comparison itself
        if args.embeddings == DEFAULT_EMBEDDINGS and DEFAULT_TRAINED.exists():
            args.trained = DEFAULT_TRAINED
    elif not args.trained.exists():
        raise SystemExit(f"--trained: {args.trained} does not exist")
    embeddings, labels = load_embeddings(args.embeddings)
    names, x, y = select_pair(embeddings, args.pair, args.embeddings)
    n = x.shape[0]
    if not 1 <= args.spectral_k <= n - 2:
        raise SystemExit(f"--spectral-k: expected 1 to {n - 2} dimensions for {n} pairs (the trivial component "
                         f"is skipped), got {args.spectral_k}")
    ot_rows = fit_rows(n, args.ot_fit_fraction, args.seed)

    rows = []
    for method, xs, ys, seconds in methods(x, y, args.spectral_k, ot_rows, args.ot_k):
        rows.append({"method": f"{args.embeddings.stem}: {method}", "seconds": seconds,
                     **scores(names, xs, ys, labels, args.seed, args.n_init)})
        print(f"  {rows[-1]['method']}: gap {rows[-1]['gap']:.3f}, V-measure {rows[-1]['v_measure']:.1f} "
              f"({seconds:.1f} s)", flush=True)
    if args.trained is not None:
        trained_embeddings, trained_labels = load_embeddings(args.trained)
        if not torch.equal(trained_labels, labels):
            raise SystemExit(f"{args.trained} holds other rows than {args.embeddings} (their labels differ): "
                             "compare runs evaluated on the same held-out pairs")
        _, tx, ty = select_pair(trained_embeddings, ",".join(names), args.trained)
        rows.append({"method": f"{args.trained.stem}: as trained", "seconds": 0.0,
                     **scores(names, tx, ty, labels, args.seed, args.n_init)})
    directions = list(rows[0]["recall_1"])
    text = table(rows, directions)
    print(f"\n{args.embeddings} ({names[0]}-{names[1]}, {n} held-out pairs; k-means with {args.n_init} restarts, "
          f"seed {args.seed})\n")
    print(text)
    out = args.out or args.embeddings.with_name(args.embeddings.stem + "_post_hoc")
    setup = {"embeddings": str(args.embeddings), "trained": str(args.trained) if args.trained else None, "pair": names,
             "spectral_k": args.spectral_k, "ot_fit_rows": len(ot_rows), "ot_k": args.ot_k, "seed": args.seed,
             "n_init": args.n_init}
    Path(f"{out}.json").write_text(json.dumps({"setup": setup, "rows": rows}, indent=2))
    Path(f"{out}.md").write_text(text + "\n")
    print(f"\nwrote {out}.json, {out}.md")


if __name__ == "__main__":
    main(sys.argv[1:])
