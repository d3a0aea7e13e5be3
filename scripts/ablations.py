"""The paper's loss comparisons and ablations on the main job's data: Tables 2, 4, 8, 10 and 11.

Each arm below trains OpenCLIP from scratch on scikit-learn's digits exactly as the main job does
(scripts/openclip_digits.py: OpenCLIP's own training loop through modgap's patch, the same data, split
and captions; configs/train.yaml plus the arm's overrides plus yours), then encodes the held-out digits
and scores them with modgap.evaluate. One table gives the space measures (gap, Cos TP, RMG, AV per
modality, linear separability of the modalities), a second the tasks (Recall@1/5/10 both ways,
V-measure of the joint k-means, joint kNN accuracy); a sweep in your overrides (e.g. `seed=0,1,2`)
runs every arm once per job and reports mean ± sample standard deviation over them.

    .venv/bin/python scripts/ablations.py                                  # every arm, seed 0
    .venv/bin/python scripts/ablations.py seed=0,1,2 eval.n_init=10        # three seeds per arm
    .venv/bin/python scripts/ablations.py --arms clip_lt,ours_no_cu,ours epochs=10

Arms (the paper's table in brackets):
    clip_lt          CLIP (LT): InfoNCE, learnable temperature            [Tables 1, 2, 4]
    clip_ft          CLIP (FT): InfoNCE, fixed temperature 0.07            [Tables 1, 2, 4]
    clip_ts          CLIP (TS): InfoNCE, Yaras et al.'s temperature rising 0.01 -> 0.05           [not in the paper]
    notagap          NotAGap (Fahim et al.): InfoNCE + uniformity + alignment, temperature 0.01   [Table 2]
    ours_no_cu       InfoNCE + L_ATP, without L_CU (loss=ours loss.lambda2=0)                    [Table 10]
    atp_uniformity   InfoNCE + L_ATP + Wang & Isola's uniformity of every embedding instead of L_CU [Table 11]
    ours_no_infonce  L_ATP + L_CU without InfoNCE                                              [Table 8]
    ours             InfoNCE + L_ATP + L_CU (eq. 21, lambda1 = lambda2 = 1)                    [all]

Results go to <data.root>/ablations/ablation_results.json (one entry per run, written as each finishes;
a run whose overrides are in the file already is not trained again), table.md and latent_spaces.png (the
paper's Fig. 11: a PCA of both modalities for the first run of every arm, from its last checkpoint).
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import modgap

sys.path.insert(0, str(Path(__file__).resolve().parent))
import openclip_digits  # noqa: E402
from openclip_digits import ROOT, log  # noqa: E402
from sweep import run_jobs  # noqa: E402

# (key, title, overrides, the paper's tables)
ARMS = [
    ("clip_lt", "CLIP (LT)", ["loss=clip_lt"], "1, 2, 4"),
    ("clip_ft", "CLIP (FT)", ["loss=clip_ft"], "1, 2, 4"),
    ("clip_ts", "CLIP (TS)", ["loss=clip_ts"], "-"),
    ("notagap", "NotAGap", ["loss=notagap"], "2"),
    ("ours_no_cu", "InfoNCE + L_ATP (w/o L_CU)", ["loss=ours", "loss.lambda2=0"], "10"),
    ("atp_uniformity", "InfoNCE + L_ATP + L_uniform", ["loss=atp_uniformity"], "11"),
    ("ours_no_infonce", "L_ATP + L_CU (w/o InfoNCE)", ["loss=ours_no_infonce"], "8"),
    ("ours", "Ours", ["loss=ours"], "all"),
]


def _pair(e: dict) -> dict:
    return e["pairs"]["image-text"]


def _recall(direction: str, k: int):
    return lambda e: 100 * _pair(e)["recall"][direction][f"R@{k}"]


# (column, value from a modgap.evaluate result, format, which is better: "low", "high" or "zero")
SPACE_COLUMNS = [
    ("Gap", lambda e: _pair(e)["gap"], "{:.3f}", "low"),
    ("Cos TP", lambda e: _pair(e)["cos_tp_mean"], "{:.3f}", "high"),
    ("RMG", lambda e: _pair(e)["rmg"], "{:.3f}", "low"),
    ("AV (image)", lambda e: e["modalities"]["image"]["angular_value"], "{:.3f}", "zero"),
    ("AV (text)", lambda e: e["modalities"]["text"]["angular_value"], "{:.3f}", "zero"),
    ("lin. sep.", lambda e: _pair(e)["linear_separability"], "{:.3f}", "low"),
]
TASK_COLUMNS = [
    ("I→T R@1", _recall("image->text", 1), "{:.1f}", "high"),
    ("I→T R@5", _recall("image->text", 5), "{:.1f}", "high"),
    ("I→T R@10", _recall("image->text", 10), "{:.1f}", "high"),
    ("T→I R@1", _recall("text->image", 1), "{:.1f}", "high"),
    ("T→I R@5", _recall("text->image", 5), "{:.1f}", "high"),
    ("T→I R@10", _recall("text->image", 10), "{:.1f}", "high"),
    ("V-measure", lambda e: 100 * e["clustering"]["v_measure"], "{:.1f}", "high"),
    ("kNN", lambda e: 100 * e["knn"]["accuracy"]["joint"], "{:.1f}", "high"),
]


def arm_jobs(arms: list[tuple], overrides: list[str]) -> list[tuple[str, list[str]]]:
    """(arm key, overrides) for every job: each job of the user's sweep (slowest) times every arm, so
    that a first complete table exists after the first sweep job. The arm's overrides come first, the
    user's after them (they apply to every arm)."""
    return [(key, arm + job) for job in modgap.config.sweep(overrides) for key, _, arm, _ in arms]


def summarise(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (nan for a single value)."""
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, math.nan
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def _better(value: float, best: float, direction: str) -> bool:
    return {"low": value < best, "high": value > best, "zero": abs(value) < abs(best)}[direction]


def render_table(arms: list[tuple], results: dict[str, list[dict]], columns: list[tuple]) -> str:
    """Markdown, one row per arm with results: mean (± std over runs), the best mean of each column in bold."""
    present = [arm for arm in arms if results.get(arm[0])]
    stats = {arm[0]: [summarise([get(r["evaluation"]) for r in results[arm[0]]]) for _, get, _, _ in columns]
             for arm in present}
    best = []
    for c, (_, _, _, direction) in enumerate(columns):
        means = [stats[arm[0]][c][0] for arm in present]
        winner = means[0]
        for m in means[1:]:
            winner = m if _better(m, winner, direction) else winner
        best.append(winner)
    lines = ["| Method | Paper | runs | " + " | ".join(name for name, _, _, _ in columns) + " |",
             "| --- | --- | ---: |" + " ---: |" * len(columns)]
    for key, title, _, tables in present:
        cells = []
        for c, (_, _, fmt, _) in enumerate(columns):
            mean, std = stats[key][c]
            text = fmt.format(mean) + ("" if math.isnan(std) else f" ± {fmt.format(std)}")
            cells.append(f"**{text}**" if mean == best[c] else text)
        lines.append(f"| {title} | {tables} | {len(results[key])} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("--arms", default=",".join(a[0] for a in ARMS),
                        help="comma-separated arms to run (default: all): " + ", ".join(a[0] for a in ARMS))
    args, overrides = parser.parse_known_args(argv)
    known = {a[0]: a for a in ARMS}
    unknown = [k for k in args.arms.split(",") if k not in known]
    if unknown:
        raise SystemExit(f"--arms: unknown arm(s) {', '.join(unknown)}; expected some of {', '.join(known)}")
    arms = [known[k] for k in dict.fromkeys(args.arms.split(","))]
    started = time.time()
    openclip_digits.LOG_PREFIX = "ablations"
    jobs = arm_jobs(arms, overrides)
    # every job composes before anything trains, so a bad override fails at once
    composed = [(job, modgap.config.compose(ROOT / "configs", "train", job)) for _, job in jobs]
    out = (ROOT / composed[0][1]["data"]["root"]).resolve() / "ablations"
    out.mkdir(parents=True, exist_ok=True)
    results_path = out / "ablation_results.json"
    log(f"{len(arms)} arms x {len(jobs) // len(arms)} job(s) = {len(jobs)} runs; results in {results_path}")
    finished = run_jobs(composed, results_path, started)
    by_arm: dict[str, list[dict]] = {}
    for (key, _), result in zip(jobs, finished):
        by_arm.setdefault(key, []).append(result)
    cfg = composed[0][1]
    space = render_table(arms, by_arm, SPACE_COLUMNS)
    tasks = render_table(arms, by_arm, TASK_COLUMNS)
    text = (f"Held-out digits ({cfg['epochs']} epochs; best mean in bold; AV best = closest to 0; "
            f"lin. sep. = accuracy of a linear classifier telling image from text embeddings, 0.5 = mixed)\n\n"
            f"Space measures:\n\n{space}\n\nTasks (%):\n\n{tasks}\n")
    (out / "table.md").write_text(text)
    print("\n" + text)
    plot = latent_space_plot(arms, jobs, composed, finished, out / "latent_spaces.png")
    print(f"table: {out / 'table.md'}; results: {results_path}; "
          + (f"plot: {plot}; " if plot else "") + f"total {time.time() - started:.0f}s")


def latent_space_plot(arms: list[tuple], jobs: list[tuple[str, list[str]]], composed: list, finished: list[dict],
                      out: Path) -> Path | None:
    """The paper's Fig. 11: a PCA of both modalities' held-out embeddings for the first run of every arm,
    re-encoded from the run's last checkpoint (an arm whose run folder is gone is left out)."""
    panels = {}
    for key, title, _, _ in arms:
        first = next(i for i, (arm, _) in enumerate(jobs) if arm == key)
        cfg, result = composed[first][1], finished[first]
        if not result.get("run_dir"):
            continue
        run_dir = Path(result["run_dir"])
        if not (run_dir / "checkpoints" / f"epoch_{cfg['epochs']}.pt").is_file():
            continue
        panels[key] = (cfg, run_dir, f"{title}\ngap {result['evaluation']['pairs']['image-text']['gap']:.3f}")
    if not panels:
        return None
    # Every arm's first run is the first sweep job, so the held-out split is one: written once.
    dataset = openclip_digits.write_dataset(next(iter(panels.values()))[0])
    runs = {key: (openclip_digits.embed(cfg, run_dir, dataset), title) for key, (cfg, run_dir, title) in panels.items()}
    try:
        from training_plots import pca_scatter
        return pca_scatter(runs, dataset["val_labels"], out,
                           "Held-out digits per arm, first run (PCA of both modalities; colour = digit)", ["o", "^"])
    except ImportError:  # no matplotlib
        return None


if __name__ == "__main__":
    main(sys.argv[1:])
