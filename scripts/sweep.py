"""Multirun of the main job (Hydra's `-m`): the paper's Table 9 sensitivity study, or any sweep.

Every job of the sweep (modgap.config.sweep: `a=1,2`, `choice(..)`, `range(..)`, the cartesian product,
first override slowest) trains OpenCLIP from scratch on scikit-learn's digits exactly as the main job
does (scripts/openclip_digits.py: OpenCLIP's own training loop through modgap's patch, the same data,
split and captions), then encodes the held-out digits and scores them with modgap.evaluate. With two
swept keys the result is a grid like the paper's Table 9 (rows: the first key, columns: the second;
each cell R@1 image->text, V-measure of the joint k-means, and their average; best in bold, second best
underlined); otherwise one row per job.

    .venv/bin/python scripts/sweep.py                         # Table 9: lambda1 x lambda2 in {0,.25,.5,.75,1}
    .venv/bin/python scripts/sweep.py 'loss.lambda1=0,1' 'loss.lambda2=0,0.5,1' epochs=10
    .venv/bin/python scripts/sweep.py loss=clip_lt,ours seed=0,1,2

Without a swept override, Table 9's grid is swept (loss=ours, the paper's setting is 100 epochs of
ResNet50s on CIFAR10; here the main job's tiny model and epochs). Results go to
<data.root>/sweep/sweep_results.json (one entry per job, written as each finishes) and table.md; a job
whose overrides are already in the results file is not trained again (delete the file to start over).
The evaluation skips the linear probe and the Fill-the-Gap neighbours (probe_max_iter=0, fill_gap_k=0),
which no column of the table uses.
"""
from __future__ import annotations

import hashlib
import json
import sys
import time
from pathlib import Path

import modgap

sys.path.insert(0, str(Path(__file__).resolve().parent))
import openclip_digits  # noqa: E402
from openclip_digits import ROOT, embed, log, train, write_dataset  # noqa: E402

TABLE9_SWEEP = ["loss.lambda1=0,0.25,0.5,0.75,1", "loss.lambda2=0,0.25,0.5,0.75,1"]
METRICS = (("R@1", "recall_i2t"), ("V", "v_measure"), ("Avg", "average"))


def _key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def _value(override: str) -> str:
    return override.split("=", 1)[1] if "=" in override else ""


def swept_keys(jobs: list[list[str]]) -> list[str]:
    """The keys whose value differs between jobs, in command-line order."""
    keys = []
    for position, override in enumerate(jobs[0]):
        if len({job[position] for job in jobs}) > 1:
            keys.append(_key(override))
    return keys


def score(evaluation: dict) -> dict:
    pair = evaluation["pairs"]["image-text"]
    recall = 100 * pair["recall"]["image->text"]["R@1"]
    v_measure = 100 * evaluation["clustering"]["v_measure"]
    return {"gap": pair["gap"], "cos_tp": pair["cos_tp_mean"], "recall_i2t": recall,
            "recall_t2i": 100 * pair["recall"]["text->image"]["R@1"], "v_measure": v_measure,
            "knn_joint": 100 * evaluation["knn"]["accuracy"]["joint"], "average": (recall + v_measure) / 2}


def _marks(values: list[float]) -> list[str]:
    """'best' / 'second' / '' per value (higher is better); ties share the mark."""
    distinct = sorted(set(values), reverse=True)
    return ["best" if v == distinct[0] else "second" if len(distinct) > 1 and v == distinct[1] else "" for v in values]


def _cell(value: float, mark: str) -> str:
    text = f"{value:.2f}"
    return f"**{text}**" if mark == "best" else f"<u>{text}</u>" if mark == "second" else text


def render_table(jobs: list[list[str]], results: list[dict]) -> str:
    """Markdown: Table 9's grid for two swept keys, else one row per job."""
    keys = swept_keys(jobs)
    marks = {field: _marks([r["scores"][field] for r in results]) for _, field in METRICS}
    if len(keys) == 2:
        positions = [next(i for i, o in enumerate(jobs[0]) if _key(o) == k) for k in keys]
        rows = list(dict.fromkeys(_value(job[positions[0]]) for job in jobs))
        columns = list(dict.fromkeys(_value(job[positions[1]]) for job in jobs))
        cells = {(_value(job[positions[0]]), _value(job[positions[1]])): index for index, job in enumerate(jobs)}
        lines = [f"| {keys[0]} \\ {keys[1]} | " + " | ".join(columns) + " |", "| --- |" + " --- |" * len(columns)]
        for row in rows:
            parts = []
            for column in columns:
                index = cells[(row, column)]
                parts.append("<br>".join(f"{name}: {_cell(results[index]['scores'][field], marks[field][index])}"
                                         for name, field in METRICS))
            lines.append(f"| {row} | " + " | ".join(parts) + " |")
        return "\n".join(lines)
    header = ["job", "overrides", "gap", "Cos TP", "R@1 i->t", "R@1 t->i", "V", "kNN", "Avg"]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for index, (job, result) in enumerate(zip(jobs, results)):
        s = result["scores"]
        lines.append(f"| {index} | {' '.join(job)} | {s['gap']:.3f} | {s['cos_tp']:.3f} | "
                     f"{_cell(s['recall_i2t'], marks['recall_i2t'][index])} | {s['recall_t2i']:.2f} | "
                     f"{_cell(s['v_measure'], marks['v_measure'][index])} | {s['knn_joint']:.2f} | "
                     f"{_cell(s['average'], marks['average'][index])} |")
    return "\n".join(lines)


def run_jobs(composed: list, results_path: Path, started: float, **evaluate_options) -> list[dict]:
    """Trains and evaluates every (overrides, config) job in order, appending each result to
    `results_path` as it finishes; a job whose overrides are in that file already is not run again.
    `evaluate_options` go to modgap.evaluate over the config's eval protocol."""
    jobs = [job for job, _ in composed]
    previous = {tuple(r["overrides"]): r for r in json.loads(results_path.read_text())} if results_path.exists() else {}
    results = []
    for index, (job, cfg) in enumerate(composed):
        if tuple(job) in previous:
            log(f"job {index}/{len(jobs)} ({' '.join(job)}): in {results_path.name} already")
            results.append(previous[tuple(job)])
            continue
        log(f"job {index}/{len(jobs)} ({' '.join(job)}): loss {cfg['loss']['name']} {json.dumps(cfg['loss'])}, "
            f"{cfg['epochs']} epochs")
        dataset = write_dataset(cfg)
        # the run folder is named by the job's overrides, so a results file never points at another job's run
        name = "sweep_" + hashlib.sha1("\0".join(job).encode()).hexdigest()[:12]
        run_dir = train(cfg, cfg["loss"]["name"], job, dataset, name=name)
        evaluation = modgap.evaluate(embed(cfg, run_dir, dataset), dataset["val_labels"],
                                     **modgap.evaluation_options(cfg["eval"], **evaluate_options))
        results.append({"overrides": job, "scores": score(evaluation), "evaluation": evaluation, "run_dir": str(run_dir)})
        s = results[-1]["scores"]
        log(f"job {index}: gap {s['gap']:.3f}, R@1 {s['recall_i2t']:.2f}, V {s['v_measure']:.2f}, Avg {s['average']:.2f} "
            f"({time.time() - started:.0f}s)")
        previous[tuple(job)] = results[-1]
        results_path.write_text(json.dumps(list(previous.values()), indent=2))
    return results


def main(overrides: list[str]) -> None:
    started = time.time()
    openclip_digits.LOG_PREFIX = "sweep"
    if len(modgap.config.sweep(overrides)) == 1:
        overrides = TABLE9_SWEEP + overrides
    composed = modgap.config.compose_multirun(ROOT / "configs", "train", overrides)  # every job composes, up front
    jobs = [job for job, _ in composed]
    out = (ROOT / composed[0][1]["data"]["root"]).resolve() / "sweep"
    out.mkdir(parents=True, exist_ok=True)
    results_path = out / "sweep_results.json"
    log(f"sweep {' '.join(overrides)}: {len(jobs)} jobs, swept {', '.join(swept_keys(jobs)) or 'nothing'}; "
        f"results in {results_path}")
    # no column of the table uses the linear probe or the Fill-the-Gap neighbours
    results = run_jobs(composed, results_path, started, fill_gap_k=0, probe_max_iter=0)
    table = render_table(jobs, results)
    (out / "table.md").write_text(table + "\n")
    print(f"\nHeld-out digits, R@1 image->text (%), V-measure of the joint k-means (%) and their average; "
          f"best **bold**, second <u>underlined</u>:\n\n{table}\n")
    print(f"table: {out / 'table.md'}; results: {results_path}; total {time.time() - started:.0f}s")


if __name__ == "__main__":
    main(sys.argv[1:])
