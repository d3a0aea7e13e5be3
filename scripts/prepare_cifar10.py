"""Prepare CIFAR10 for the paper's OpenCLIP runs (Tables 1, 5, 9, 11) and print the training commands.

    python scripts/prepare_cifar10.py data.root=/data/cifar10 [loss=ours] [any configs/train.yaml override]

`data.root` is a folder holding the CIFAR10 python batches as torchvision downloads them
(`cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta}`, or those files directly); nothing is
downloaded. The config is configs/train.yaml with `+experiment=cifar10` (two ResNet50 encoders from
scratch, 100 epochs, fixed temperature 0.07, lambda1 = lambda2 = 1) and your overrides. Written into
`data.root`:
  images/train/NNNNN.png, images/test/NNNNN.png   the 32x32 RGB images
  train.tsv, test.tsv                             filepath <tab> "A photo of a {class}" (data.caption_template)
  test_labels.txt                                 one class index per test row (for V-measure / kNN)
Then it prints the `python -m modgap.patches.open_clip` commands for CLIP (LT), CLIP (FT) and Ours.
"""
from __future__ import annotations

import pickle
import sys
from pathlib import Path

import numpy as np
from PIL import Image

import modgap
from modgap.patches.open_clip.launcher import paper_run_commands

ROOT = Path(__file__).resolve().parents[1]
RUNS = ("clip_lt", "clip_ft", "ours")


def _batch_folder(root: Path) -> Path:
    for candidate in (root / "cifar-10-batches-py", root):
        if (candidate / "batches.meta").is_file():
            return candidate
    raise SystemExit(f"prepare_cifar10: no CIFAR10 python batches (batches.meta) in {root} or "
                     f"{root / 'cifar-10-batches-py'}; download them once with torchvision.datasets.CIFAR10")


def _load(path: Path) -> dict:
    with open(path, "rb") as f:
        return pickle.load(f, encoding="bytes")


def _split(folder: Path, files: list[str]) -> tuple[np.ndarray, np.ndarray]:
    images, labels = [], []
    for name in files:
        batch = _load(folder / name)
        images.append(np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
        labels.append(np.asarray(batch[b"labels"], dtype=np.int64))
    return np.concatenate(images), np.concatenate(labels)


def prepare(cfg: dict) -> dict:
    """Write the images, TSVs and labels for the composed config; returns the paths written."""
    data = cfg["data"]
    root = Path(data["root"])
    folder = _batch_folder(root)
    classes = [name.decode() for name in _load(folder / "batches.meta")[b"label_names"]]
    train_files = sorted(p.name for p in folder.glob("data_batch_*"))
    if not train_files or not (folder / "test_batch").is_file():
        raise SystemExit(f"prepare_cifar10: {folder} needs data_batch_* and test_batch")
    written = {}
    for split, files, tsv in (("train", train_files, Path(data["train_csv"])), ("test", ["test_batch"], Path(data["val_csv"]))):
        images, labels = _split(folder, files)
        out = root / "images" / split
        out.mkdir(parents=True, exist_ok=True)
        rows = []
        for i, (pixels, label) in enumerate(zip(images, labels)):
            path = out / f"{i:05d}.png"
            Image.fromarray(pixels).save(path)
            rows.append(f"{path}\t{data['caption_template'].format(classes[label])}\n")
        tsv.write_text("filepath\ttitle\n" + "".join(rows))
        written[split] = {"tsv": tsv, "rows": len(rows)}
        if split == "test":
            np.savetxt(data["val_labels"], labels, fmt="%d")
    print(f"CIFAR10: {written['train']['rows']} training and {written['test']['rows']} test pairs in {root}")
    return written


def commands(cfg: dict, overrides: list) -> list:
    """The training commands of the three runs, with the config's settings and the same overrides."""
    return paper_run_commands(cfg, experiment="cifar10", overrides=overrides, runs=RUNS,
                              config_file=str(ROOT / "configs" / "train.yaml"))


def main(overrides: list[str]) -> None:
    cfg = modgap.config.compose(ROOT / "configs", "train", ["+experiment=cifar10", *overrides])
    prepare(cfg)
    print("Train the paper's three CIFAR10 runs (add --device cuda, torchrun, --report-to ... as you need):")
    for line in commands(cfg, overrides):
        print(line)


if __name__ == "__main__":
    main(sys.argv[1:])
