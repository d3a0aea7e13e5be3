"""The paper's "Impact of the initialization" (App. A.3, Fig. 8) on the main job's data.

The paper's claim: the gap exists at initialisation, but the contrastive loss, not the initialisation,
keeps it. Training first on Wang & Isola's uniformity of all embeddings (both modalities together)
spreads them regardless of modality and closes the gap; once InfoNCE takes over, the gap comes back.
With the proposed terms (Ours) it does not.

Four runs of the main job's training (OpenCLIP's own loop through modgap's patch, the same digits,
split and captions), from the same seed and initialisation:
    InfoNCE                     loss=clip_lt
    InfoNCE, sparsified first   loss=clip_lt +loss.sparsify_epochs=K   (K epochs of uniformity alone first)
    Ours                        loss=ours
    Ours, sparsified first      loss=ours +loss.sparsify_epochs=K

    .venv/bin/python scripts/sparsify_init.py [--sparsify-epochs 1] [epochs=30 seed=0 ...]

It prints the gap (eq. 2) of the held-out digits at initialisation (epoch 0: a model drawn as OpenCLIP's
main draws it), after each of the first epochs and at the end, and AV (mean intra-modal cosine; near 0 =
spread) before and after the sparsification; writes <data.root>/sparsify/ with results.json, table.md,
gap_over_training.png (every run's gap per epoch) and, per sparsified run, a PCA of both modalities at
initialisation, after the sparsification and at the end (Fig. 8's three panels).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import modgap

sys.path.insert(0, str(Path(__file__).resolve().parent))
import openclip_digits  # noqa: E402
from openclip_digits import ROOT, embed, history, log, train, write_dataset  # noqa: E402

REPORTED_EPOCHS = (1, 2, 3, 5, 10)


def runs(sparsify_epochs: int) -> list[tuple[str, list[str], bool]]:
    """(title, overrides, sparsified) of the four runs."""
    sparsify = [f"+loss.sparsify_epochs={sparsify_epochs}"]
    return [("InfoNCE", ["loss=clip_lt"], False),
            ("InfoNCE, sparsified first", ["loss=clip_lt", *sparsify], True),
            ("Ours", ["loss=ours"], False),
            ("Ours, sparsified first", ["loss=ours", *sparsify], True)]


def slug(title: str, sparsified: bool) -> str:
    """File-name form of a run: "infonce", "ours_sparsified", ..."""
    return title.split(",")[0].lower().replace(" ", "_") + ("_sparsified" if sparsified else "")


def space(embeddings: dict) -> dict:
    stats = modgap.gap_stats([embeddings["image"], embeddings["text"]])
    return {"gap": float(stats["gap"][0, 1]), "cos_tp": float(stats["cos_tp_mean"][0, 1]),
            "av_image": float(stats["angular_value"][0]), "av_text": float(stats["angular_value"][1])}


def render_table(results: list[dict], sparsify_epochs: int, epochs: int) -> str:
    shown = [e for e in REPORTED_EPOCHS if e < epochs]
    header = (["Run", "gap at init"] + [f"epoch {e}" for e in shown] + [f"epoch {epochs}",
              "AV (image / text) at init", f"AV after epoch {sparsify_epochs}", "V-measure", "R@1 I→T"])
    lines = ["| " + " | ".join(header) + " |", "| --- |" + " ---: |" * (len(header) - 1)]
    for r in results:
        gaps = r["gap_per_epoch"]
        av_after = r["snapshots"][str(sparsify_epochs)]
        lines.append(f"| {r['title']} | {r['snapshots']['0']['gap']:.3f} | "
                     + " | ".join(f"{gaps[e - 1]:.3f}" for e in shown)
                     + f" | {gaps[-1]:.3f} | {r['snapshots']['0']['av_image']:.3f} / {r['snapshots']['0']['av_text']:.3f}"
                     f" | {av_after['av_image']:.3f} / {av_after['av_text']:.3f} | {r['v_measure']:.1f} | {r['recall_i2t']:.1f} |")
    return "\n".join(lines)


def plots(results: list[dict], embeddings: dict, labels, sparsify_epochs: int, epochs: int, out: Path) -> list[Path]:
    from training_plots import _pyplot, pca_scatter, save
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    for r in results:
        ax.plot([0] + list(range(1, len(r["gap_per_epoch"]) + 1)), [r["snapshots"]["0"]["gap"]] + r["gap_per_epoch"],
                marker=".", linestyle="--" if r["sparsified"] else "-", label=r["title"])
    ax.axvspan(0, sparsify_epochs, color="grey", alpha=0.15, label=f"uniformity only (first {sparsify_epochs} epoch(s))")
    ax.set(xlabel="epoch", ylabel="gap (eq. 2)", title="Held-out digits: gap during training")
    ax.legend()
    written = [save(fig, out / "gap_over_training.png")]
    for r in results:
        if not r["sparsified"]:
            continue
        panels = {}
        for epoch, when in ((0, "initialisation"), (sparsify_epochs, f"after {sparsify_epochs} epoch(s) of uniformity"),
                            (epochs, f"epoch {epochs}")):
            snapshot = r["snapshots"][str(epoch)]
            panels[when] = (embeddings[(r["title"], epoch)], f"{when}: gap {snapshot['gap']:.2f}")
        written.append(pca_scatter(panels, labels, out / f"pca_{slug(r['title'], True)}.png", f"{r['title']}: held-out digits, PCA of both "
                                   "modalities (colour = digit; o image, ^ text)", "o^"))
    return written


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("--sparsify-epochs", type=int, default=1,
                        help="epochs of uniformity alone before the run's loss takes over (default 1, as the paper)")
    args, overrides = parser.parse_known_args(argv)
    started = time.time()
    openclip_digits.LOG_PREFIX = "sparsify"
    composed = [(title, run + overrides, sparsified, modgap.config.compose(ROOT / "configs", "train", run + overrides))
                for title, run, sparsified in runs(args.sparsify_epochs)]
    epochs = int(composed[0][3]["epochs"])
    if not 1 <= args.sparsify_epochs < epochs:
        raise SystemExit(f"--sparsify-epochs: expected 1 <= K < epochs ({epochs}), got {args.sparsify_epochs}")
    snapshot_epochs = sorted({0, args.sparsify_epochs, epochs})
    dataset = write_dataset(composed[0][3])
    out = dataset["root"] / "sparsify"
    results, embeddings = [], {}
    for title, job, sparsified, cfg in composed:
        log(f"training {title} ({' '.join(job)}): loss {json.dumps(cfg['loss'])}")
        run_dir = train(cfg, cfg["loss"]["name"], job, dataset, name=f"sparsify_{slug(title, sparsified)}", save_frequency=1)
        snapshots = {}
        for epoch in snapshot_epochs:
            embeddings[(title, epoch)] = embed(cfg, run_dir if epoch else None, dataset, epoch=epoch)
            snapshots[str(epoch)] = space(embeddings[(title, epoch)])
        for checkpoint in (run_dir / "checkpoints").glob("epoch_*.pt"):  # keep the snapshots' checkpoints only
            if int(checkpoint.stem.split("_")[1]) not in snapshot_epochs:
                checkpoint.unlink()
        logged = history(run_dir)
        evaluation = modgap.evaluate(embeddings[(title, epochs)], dataset["val_labels"],
                                     **modgap.evaluation_options(cfg["eval"], ks=(1,), fill_gap_k=0, probe_max_iter=0))
        results.append({"title": title, "overrides": job, "sparsified": sparsified, "run_dir": str(run_dir),
                        "snapshots": snapshots, "gap_per_epoch": [h["modgap_gap"] for h in logged],
                        "v_measure": 100 * evaluation["clustering"]["v_measure"],
                        "recall_i2t": 100 * evaluation["pairs"]["image-text"]["recall"]["image->text"]["R@1"],
                        "evaluation": evaluation})
        log(f"{title}: gap {snapshots['0']['gap']:.3f} at init, {results[-1]['gap_per_epoch'][args.sparsify_epochs - 1]:.3f} "
            f"after epoch {args.sparsify_epochs}, {results[-1]['gap_per_epoch'][-1]:.3f} at epoch {epochs} "
            f"({time.time() - started:.0f}s)")
    table = render_table(results, args.sparsify_epochs, epochs)
    written = plots(results, embeddings, dataset["val_labels"], args.sparsify_epochs, epochs, out)
    (out / "results.json").write_text(json.dumps(results, indent=2))
    (out / "table.md").write_text(table + "\n")
    print(f"\nHeld-out digits: the gap (eq. 2) from initialisation (epoch 0) through training; the sparsified runs "
          f"train on uniformity alone for the first {args.sparsify_epochs} epoch(s):\n\n{table}\n")
    print(f"plots: {', '.join(str(p) for p in written)}; results: {out / 'results.json'}; total {time.time() - started:.0f}s")


if __name__ == "__main__":
    main(sys.argv[1:])
