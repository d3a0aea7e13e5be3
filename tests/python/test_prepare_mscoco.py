"""scripts/prepare_mscoco.py on annotations in COCO 2017's own JSON layout (synthetic: no data set can be
downloaded here), then one of the training commands it prints, run for one epoch with the tiny model."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from conftest import run_printed_training_command

ROOT = Path(__file__).resolve().parents[2]


def _coco(root: Path, rng: np.random.Generator) -> dict:
    (root / "annotations").mkdir(parents=True)
    made = {}
    for split, ids in (("train2017", [5, 3, 9, 7]), ("val2017", [40, 10, 30, 20, 50, 60])):
        (root / split).mkdir()
        images = [{"id": i, "file_name": f"{i:012d}.jpg"} for i in ids]
        for image in images:
            Image.fromarray(rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)).save(root / split / image["file_name"])
        captions = [{"id": 100 * i + k, "image_id": i, "caption": f"image {i}\tcaption {k}\n"} for i in ids for k in range(3)]
        rng.shuffle(captions)
        name = "train" if split == "train2017" else "val"
        (root / "annotations" / f"captions_{name}2017.json").write_text(json.dumps({"images": images, "annotations": captions}))
        made[split] = ids
    # val objects: 10 -> {1}, 20 -> {1, 3}, 30 -> {3, 3}, 40 -> none, 50 -> {7}, 60 -> {3}
    objects = [(10, 1), (20, 1), (20, 3), (30, 3), (30, 3), (50, 7), (60, 3)]
    instances = {"annotations": [{"id": k, "image_id": i, "category_id": c} for k, (i, c) in enumerate(objects)],
                 "categories": [{"id": c, "name": f"c{c}"} for c in (7, 1, 3)]}
    (root / "annotations" / "instances_val2017.json").write_text(json.dumps(instances))
    return made


def test_prepares_the_tsvs_and_prints_runnable_commands(tmp_path):
    _coco(tmp_path, np.random.default_rng(0))
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="")
    overrides = [f"data.root={tmp_path}", "data.num_test_samples=5", "model=tiny", "epochs=1", "batch_size=2", "eval.knn_k=1",
                 "workers=0"]
    run = subprocess.run([sys.executable, str(ROOT / "scripts" / "prepare_mscoco.py"), *overrides],
                         capture_output=True, text=True, env=env, cwd=ROOT)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "12 training pairs, 3 single-category val images (3 categories), 5 val512 images" in run.stdout

    train = (tmp_path / "train.tsv").read_text().splitlines()
    assert train[0] == "filepath\ttitle" and len(train) == 13
    # images by id, captions by annotation id, whitespace (tabs, newlines) folded into single spaces
    assert train[1] == f"{tmp_path / 'train2017' / '000000000003.jpg'}\timage 3 caption 0"
    assert train[12] == f"{tmp_path / 'train2017' / '000000000009.jpg'}\timage 9 caption 2"
    val512 = [row.split("\t") for row in (tmp_path / "val512.tsv").read_text().splitlines()[1:]]
    assert [Path(p).name for p, _ in val512] == [f"{i:012d}.jpg" for i in (10, 20, 30, 40, 50)]  # smallest ids
    assert all(caption.startswith(f"image {int(Path(p).stem)} caption ") for p, caption in val512)
    single = [row.split("\t") for row in (tmp_path / "val_single_category.tsv").read_text().splitlines()[1:]]
    assert [Path(p).name for p, _ in single] == [f"{i:012d}.jpg" for i in (10, 30, 50)]  # 60 is beyond the 5
    assert [c for _, c in single] == [c for p, c in val512 if Path(p).stem in ("000000000010", "000000000030", "000000000050")]
    # categories numbered in COCO id order: 1 -> 0, 3 -> 1, 7 -> 2
    assert (tmp_path / "val_single_category_labels.txt").read_text().split() == ["0", "1", "2"]

    commands = [line for line in run.stdout.splitlines() if "modgap.patches.open_clip" in line]
    assert len(commands) == 3 and commands[2].endswith("--modgap-override=loss=ours")
    assert all("--modgap-override=+experiment=mscoco" in c and "--model modgap-tiny" in c for c in commands)
    metrics = run_printed_training_command(commands[2], tmp_path / "logs" / "mscoco_ours_seed42", env, ROOT)
    assert "modgap_gap" in metrics and "modgap_v_measure" in metrics
