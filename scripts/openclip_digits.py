"""Main job: real OpenCLIP training, through modgap's patch, on data that ships with scikit-learn.

1. Composes configs/train.yaml (plus any Hydra-style overrides given on the command line) with
   modgap.config, and renders scikit-learn's 1797 handwritten digits as 32x32 RGB images paired with
   varied captions ("a photo of the digit three", "handwritten 3", ...), split 80/20 (stratified,
   seeded) into OpenCLIP CSVs.
2. Trains OpenCLIP's own training loop (open_clip_train.main, unchanged) from scratch twice with the
   same seed, once with loss=clip_lt (InfoNCE, learnable temperature) and once with loss=ours
   (InfoNCE + lambda1 ATP + lambda2 CU, eq. 21), via `python -m modgap.patches.open_clip`. OpenCLIP's
   validation (every epoch) logs modgap's gap, Cos TP, RMG, AV, V-measure and kNN into results.jsonl.
3. Encodes the held-out digits with both final checkpoints, evaluates them with modgap.evaluate and
   prints a Table-1-style comparison; writes a PCA plot of both modalities per run (paper Fig. 2/6)
   and gap / V-measure over training (Fig. 5/7) as PNGs under <data.root>/plots/, and the held-out
   embeddings as <data.root>/embeddings_<loss>.pt (scripts/gap_shift.py turns them into Fig. 1).

    .venv/bin/python scripts/openclip_digits.py [epochs=10 loss.lambda2=0.5 ...]
"""
from __future__ import annotations

import json
import math
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import modgap
from modgap.patches.open_clip.launcher import training_arguments

ROOT = Path(__file__).resolve().parents[1]
WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
TEMPLATES = ["a photo of the digit {w}", "handwritten {d}", "the number {w}", "a {w} written by hand",
             "digit {d}", "an image of a {w}", "a scanned {w}", "the handwritten digit {d}", "{w}",
             "a small picture of the number {w}"]
CAPTIONS_PER_TRAIN_IMAGE = 3
RUNS = [("CLIP (LT)", "clip_lt"), ("Ours", "ours")]


LOG_PREFIX = "main job"  # scripts/sweep.py sets "sweep"


def log(message: str) -> None:
    print(f"[{LOG_PREFIX}] {message}", flush=True)


def caption(label: int, rng: random.Random) -> str:
    return rng.choice(TEMPLATES).format(w=WORDS[label], d=label)


def write_dataset(cfg: dict) -> dict:
    data = cfg["data"]
    root = (ROOT / data["root"]).resolve()
    images = root / "images"
    images.mkdir(parents=True, exist_ok=True)
    digits = load_digits()
    size = int(data["image_size"])
    paths = []
    for i, pixels in enumerate(digits.images):
        path = images / f"{i:04d}.png"
        if not path.exists():
            gray = (pixels / 16.0 * 255.0).astype(np.uint8)
            Image.fromarray(gray).resize((size, size), Image.BILINEAR).convert("RGB").save(path)
        paths.append(str(path))
    labels = digits.target
    train_idx, val_idx = train_test_split(np.arange(len(labels)), test_size=float(data["test_fraction"]),
                                          random_state=int(cfg["seed"]), stratify=labels)
    rng = random.Random(int(cfg["seed"]))
    train_rows = [(paths[i], caption(int(labels[i]), rng)) for i in train_idx for _ in range(CAPTIONS_PER_TRAIN_IMAGE)]
    val_rows = [(paths[i], caption(int(labels[i]), rng)) for i in val_idx]
    for name, rows in (("train.tsv", train_rows), ("val.tsv", val_rows)):
        with open(root / name, "w") as f:
            f.write("filepath\ttitle\n")
            f.writelines(f"{p}\t{c}\n" for p, c in rows)
    np.savetxt(root / "val_labels.txt", labels[val_idx], fmt="%d")
    log(f"digits: {len(train_idx)} training images x {CAPTIONS_PER_TRAIN_IMAGE} captions, {len(val_idx)} held-out "
        f"pairs, {size}x{size} RGB, in {root}")
    return {"root": root, "val_images": [paths[i] for i in val_idx], "val_captions": [c for _, c in val_rows],
            "val_labels": torch.from_numpy(labels[val_idx].astype(np.int64))}


def train(cfg: dict, loss_name: str, overrides: list[str], dataset: dict, name: str | None = None,
          save_frequency: int | None = None) -> Path:
    """Runs OpenCLIP's training loop through the patch; `name` (default: the config's run_name with this
    loss) is the run's folder under <data.root>/logs, replaced if it exists; a checkpoint is saved every
    `save_frequency` epochs (default: the last epoch only)."""
    logs = dataset["root"] / "logs"
    name = name or f"{cfg['run_name'].replace(cfg['loss']['name'], loss_name)}"
    shutil.rmtree(logs / name, ignore_errors=True)  # OpenCLIP refuses to reuse a run name
    command = [
        sys.executable, "-m", "modgap.patches.open_clip",
        *training_arguments(cfg, train_data=dataset["root"] / "train.tsv", val_data=dataset["root"] / "val.tsv",
                            logs=logs, name=name, device="cpu"),
        "--val-frequency", "1", "--save-frequency", str(save_frequency or cfg["epochs"]), "--log-every-n-steps", "1000000",
        "--modgap-config", str(ROOT / "configs" / "train.yaml"), "--modgap-val-labels", str(dataset["root"] / "val_labels.txt"),
        *[f"--modgap-override={o}" for o in overrides], f"--modgap-override=loss={loss_name}",
    ]
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", TORCH_LOGS="-all")
    start = time.time()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=ROOT)
    tail = []
    for line in process.stdout:
        tail = (tail + [line])[-40:]
        if "Eval Epoch" in line and "modgap_gap" in line:
            fields = dict(item.split(": ") for item in line.strip().split(" | ")[-1].split("\t")[1:] if ": " in item)
            epoch = line.split("Eval Epoch: ")[1].split()[0]
            log(f"  {name} epoch {epoch}/{cfg['epochs']}: gap {float(fields['modgap_gap']):.3f}, "
                f"Cos TP {float(fields['modgap_cos_tp']):.3f}, V-measure {float(fields['modgap_v_measure']):.3f}, "
                f"R@1 i2t {float(fields['image_to_text_R@1']):.3f}  ({time.time() - start:.0f}s)")
    if process.wait() != 0:
        sys.stdout.writelines(tail)
        raise SystemExit(f"OpenCLIP training ({loss_name}) failed with exit code {process.returncode}")
    return logs / name


@torch.no_grad()
def embed(cfg: dict, run_dir: Path | None, dataset: dict, epoch: int | None = None) -> dict:
    """The held-out digits' embeddings from the checkpoint of `epoch` (default: the last) of the run in
    `run_dir`; epoch 0 is the model at initialisation, drawn as OpenCLIP's main draws it (its
    random_seed(seed) right before create_model_and_transforms), no checkpoint read."""
    import open_clip
    from modgap.patches.open_clip.launcher import _register_model_config
    _register_model_config(cfg)
    epoch = cfg["epochs"] if epoch is None else epoch
    # epoch 0 is seeded as OpenCLIP's main seeds; the caller's random states are restored afterwards
    states = random.getstate(), np.random.get_state()
    with torch.random.fork_rng(devices=[], enabled=epoch == 0):
        if epoch == 0:
            torch.manual_seed(int(cfg["seed"]))
            np.random.seed(int(cfg["seed"]))
            random.seed(int(cfg["seed"]))
        model, _, preprocess = open_clip.create_model_and_transforms(cfg["model"]["name"])
    random.setstate(states[0])
    np.random.set_state(states[1])
    if epoch:
        checkpoint = torch.load(run_dir / "checkpoints" / f"epoch_{epoch}.pt", map_location="cpu", weights_only=False)
        model.load_state_dict(checkpoint["state_dict"])
    model.eval()
    tokenizer = open_clip.get_tokenizer(cfg["model"]["name"])
    images = torch.stack([preprocess(Image.open(p)) for p in dataset["val_images"]])
    return {"image": model.encode_image(images, normalize=True), "text": model.encode_text(tokenizer(dataset["val_captions"]), normalize=True)}


def _distance_from_one(ratio: float) -> float:
    """|log ratio|, infinite for a ratio of 0 or inf (no neighbour of the other / the same modality)."""
    return abs(math.log(ratio)) if 0 < ratio < math.inf else math.inf


def history(run_dir: Path) -> list[dict]:
    path = run_dir / "checkpoints" / "results.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def plots(results: dict, labels: torch.Tensor, out: Path) -> list[Path]:
    from training_plots import pca_scatter, training_curves
    panels = {title: ({m: r["embeddings"][m] for m in ("image", "text")},
                      f"{title}: gap {r['evaluation']['pairs']['image-text']['gap']:.2f}, "
                      f"V-measure {r['evaluation']['clustering']['v_measure']:.2f}") for title, r in results.items()}
    curves = {title: ([h["epoch"] for h in r["history"]], [h["modgap_gap"] for h in r["history"]],
                      [h["modgap_v_measure"] for h in r["history"]]) for title, r in results.items()}
    return [pca_scatter(panels, labels, out / "pca_embeddings.png",
                        "Held-out digits, PCA of both modalities (colour = digit; o image, ^ text)", "o^"),
            training_curves(curves, out / "gap_vmeasure_training.png")]


def main(overrides: list[str]) -> None:
    started = time.time()
    cfg = modgap.config.compose(ROOT / "configs", "train", overrides)
    log(f"modgap {modgap.__version__}; config configs/train.yaml {' '.join(overrides)}: model {cfg['model']['name']}, "
        f"{cfg['epochs']} epochs, batch {cfg['batch_size']}, lr {cfg['lr']}, seed {cfg['seed']}")
    dataset = write_dataset(cfg)
    results = {}
    for title, loss_name in RUNS:
        loss_cfg = modgap.config.compose(ROOT / "configs", "train", overrides + [f"loss={loss_name}"])["loss"]
        log(f"training {title} (loss={loss_name}: {json.dumps(loss_cfg)}) with OpenCLIP's training loop")
        run_dir = train(cfg, loss_name, overrides, dataset)
        embeddings = embed(cfg, run_dir, dataset)
        # the held-out embeddings, in the format of scripts/av_mnist.py, for scripts/gap_shift.py (Fig. 1)
        # (and, for scripts/vector_database.py's Fig. 4, which image and caption each row is: val.tsv is
        # rewritten by any later run with another seed)
        torch.save({"embeddings": embeddings, "labels": dataset["val_labels"], "loss": loss_cfg,
                    "images": dataset["val_images"], "captions": dataset["val_captions"]},
                   dataset["root"] / f"embeddings_{loss_name}.pt")
        evaluation = modgap.evaluate(embeddings, dataset["val_labels"], **modgap.evaluation_options(cfg["eval"]))
        results[title] = {"embeddings": embeddings, "evaluation": evaluation, "history": history(run_dir),
                          "run_dir": str(run_dir)}

    rows = [("gap (eq. 2)", lambda e: e["pairs"]["image-text"]["gap"], "{:.3f}", "lower"),
            ("Cos TP (eq. 3)", lambda e: e["pairs"]["image-text"]["cos_tp_mean"], "{:.3f}", "higher"),
            ("RMG", lambda e: e["pairs"]["image-text"]["rmg"], "{:.3f}", "lower"),
            ("R@1 image->text %", lambda e: 100 * e["pairs"]["image-text"]["recall"]["image->text"]["R@1"], "{:.1f}", "higher"),
            ("R@1 text->image %", lambda e: 100 * e["pairs"]["image-text"]["recall"]["text->image"]["R@1"], "{:.1f}", "higher"),
            ("ITR (Fill the Gap)", lambda e: e["pairs"]["image-text"]["fill_the_gap"]["itr"], "{:.2f}", "closer to 1"),
            ("TIR (Fill the Gap)", lambda e: e["pairs"]["image-text"]["fill_the_gap"]["tir"], "{:.2f}", "closer to 1"),
            ("linear separability", lambda e: e["pairs"]["image-text"]["linear_separability"], "{:.3f}", "lower"),
            ("V-measure (joint k-means) %", lambda e: 100 * e["clustering"]["v_measure"], "{:.1f}", "higher"),
            ("kNN accuracy (joint) %", lambda e: 100 * e["knn"]["accuracy"]["joint"], "{:.1f}", "higher"),
            ("linear probe (joint) %", lambda e: 100 * e["linear_probe"]["accuracy"]["joint"], "{:.1f}", "higher")]
    titles = [t for t, _ in RUNS]
    print(f"\nHeld-out digits ({len(dataset['val_labels'])} pairs), Table-1 style, after {cfg['epochs']} epochs "
          f"(same seed {cfg['seed']}; protocol: {json.dumps(results[titles[0]]['evaluation']['protocol'])})")
    print(f"{'metric':<30}" + "".join(f"{t:>14}" for t in titles) + "   paper's claim for Ours")
    verdicts = []
    for name, get, fmt, better in rows:
        values = [get(results[t]["evaluation"]) for t in titles]
        if better == "closer to 1":  # a neighbour ratio: 1 means the modalities are mixed
            holds = _distance_from_one(values[1]) < _distance_from_one(values[0])
        else:
            holds = values[1] < values[0] if better == "lower" else values[1] > values[0]
        if name.startswith(("gap", "Cos TP", "V-measure")):
            verdicts.append((name, holds))
        print(f"{name:<30}" + "".join(f"{fmt.format(v):>14}" for v in values) + f"   {better} ({'holds' if holds else 'does NOT hold'} here)")
    # Table 3 (App. A.1): the gap is nearly the same for every pair, so eq. 2's single number describes it.
    print("\nTable 3 (distance and cosine of the true pairs, mean / variance over the held-out pairs):")
    for t in titles:
        pair = results[t]["evaluation"]["pairs"]["image-text"]
        print(f"  {t:<12} distance {pair['pair_distance_mean']:.3f} / {pair['pair_distance_var']:.4f}   "
              f"Cos TP {pair['cos_tp_mean']:.3f} / {pair['cos_tp_var']:.4f}")
    written = plots(results, dataset["val_labels"], dataset["root"] / "plots")
    summary = {t: {"evaluation": results[t]["evaluation"], "history": results[t]["history"], "run_dir": results[t]["run_dir"]}
               for t in titles}
    (dataset["root"] / "main_job_results.json").write_text(json.dumps(summary, indent=2))
    print("\n" + "; ".join(f"{n}: {'as the paper claims' if h else 'NOT as the paper claims'}" for n, h in verdicts))
    print(f"plots: {', '.join(str(p) for p in written)}; results: {dataset['root'] / 'main_job_results.json'}")
    print(f"total {time.time() - started:.0f}s")


if __name__ == "__main__":
    main(sys.argv[1:])
