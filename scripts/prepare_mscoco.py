"""Prepare MSCOCO 2017 for the paper's OpenCLIP runs (Tables 1-4) and print the training commands.

    python scripts/prepare_mscoco.py data.root=/data/coco [loss=ours] [any configs/train.yaml override]

`data.root` holds COCO 2017 as cocodataset.org ships it: train2017/, val2017/ and annotations/
(captions_train2017.json, captions_val2017.json, instances_val2017.json); nothing is downloaded. The
config is configs/train.yaml with `+experiment=mscoco` and your overrides. Written into `data.root`:
  train.tsv                          every train2017 (image, caption) pair (filepath <tab> title)
  val512.tsv                         the reference code's evaluation set: the data.num_test_samples (512)
                                     val2017 images of smallest id (torchvision's CocoCaptions order), one
                                     caption each drawn with data.caption_seed (the reference code redraws
                                     it every evaluation); data.num_test_samples=0 takes all 5000
  val_single_category.tsv            those of them whose object annotations all share one category
                                     (Appendix A.2's clustering set, as the reference code filters it)
  val_single_category_labels.txt     their category, numbered 0.. in COCO's category-id order
Then it prints the `python -m modgap.patches.open_clip` commands for CLIP (LT), CLIP (FT) and Ours,
validating on the single-category set with its labels (gap, V-measure, kNN, Recall@K).
"""
from __future__ import annotations

import json
import random
import sys
from collections import defaultdict
from pathlib import Path

import modgap
from modgap.patches.open_clip.launcher import paper_run_commands

ROOT = Path(__file__).resolve().parents[1]
RUNS = ("clip_lt", "clip_ft", "ours")


def _json(path: Path) -> dict:
    if not path.is_file():
        raise SystemExit(f"prepare_mscoco: {path} is missing (COCO 2017 annotations expected under data.root)")
    with open(path) as f:
        return json.load(f)


def _captions(captions: dict) -> dict:
    """image id -> its captions in annotation-id order."""
    by_image = defaultdict(list)
    for annotation in sorted(captions["annotations"], key=lambda a: a["id"]):
        by_image[annotation["image_id"]].append(" ".join(annotation["caption"].split()))  # one line, no tabs
    return by_image


def _write(path: Path, rows: list) -> None:
    path.write_text("filepath\ttitle\n" + "".join(f"{image}\t{caption}\n" for image, caption in rows))


def prepare(cfg: dict) -> dict:
    data = cfg["data"]
    root = Path(data["root"])
    written = {}
    train = _json(Path(data["captions_train"]))
    train_captions = _captions(train)
    rows = [(root / "train2017" / image["file_name"], caption)
            for image in sorted(train["images"], key=lambda i: i["id"]) for caption in train_captions[image["id"]]]
    _write(Path(data["train_csv"]), rows)
    written["train"] = len(rows)

    val = _json(Path(data["captions_val"]))
    val_captions = _captions(val)
    instances = _json(Path(data["instances_val"]))
    categories = defaultdict(set)
    for annotation in instances["annotations"]:
        categories[annotation["image_id"]].add(annotation["category_id"])
    category_index = {c["id"]: i for i, c in enumerate(sorted(instances["categories"], key=lambda c: c["id"]))}
    # The reference code: torchvision's CocoCaptions (images by increasing id), the first
    # num_test_samples of them, one random caption each; clustering on those with one object category.
    limit = int(data["num_test_samples"] or 0)
    images = [image for image in sorted(val["images"], key=lambda i: i["id"]) if val_captions[image["id"]]]
    images = images[:limit] if limit > 0 else images
    rng = random.Random(int(data["caption_seed"]))
    evaluation = [(image, rng.choice(val_captions[image["id"]])) for image in images]
    _write(Path(data["val512_csv"]), [(root / "val2017" / image["file_name"], caption) for image, caption in evaluation])
    written["val512"] = len(evaluation)
    single, labels = [], []
    for image, caption in evaluation:
        ids = categories.get(image["id"], set())
        if len(ids) == 1:
            single.append((root / "val2017" / image["file_name"], caption))
            labels.append(category_index[next(iter(ids))])
    _write(Path(data["val_csv"]), single)
    Path(data["val_labels"]).write_text("".join(f"{label}\n" for label in labels))
    written["val_single_category"] = len(single)
    print(f"MSCOCO: {written['train']} training pairs, {written['val_single_category']} single-category val "
          f"images ({len(set(labels))} categories), {written['val512']} val512 images in {root}")
    return written


def commands(cfg: dict, overrides: list) -> list:
    """The training commands of the three runs, with the config's settings and the same overrides."""
    return paper_run_commands(cfg, experiment="mscoco", overrides=overrides, runs=RUNS,
                              config_file=str(ROOT / "configs" / "train.yaml"))


def main(overrides: list) -> None:
    cfg = modgap.config.compose(ROOT / "configs", "train", ["+experiment=mscoco", *overrides])
    if cfg["data"]["root"] in (None, "???"):
        raise SystemExit("prepare_mscoco: set data.root=... (the folder with train2017/, val2017/, annotations/)")
    prepare(cfg)
    print("Train the paper's three MSCOCO runs (add --device cuda, torchrun, --report-to ... as you need):")
    for line in commands(cfg, overrides):
        print(line)


if __name__ == "__main__":
    main(sys.argv[1:])
