"""scripts/prepare_cifar10.py on batches in CIFAR10's own pickle format (synthetic pixels: no data set can
be downloaded here), then one of the training commands it prints, run for one epoch with the tiny model."""
from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from conftest import run_printed_training_command

ROOT = Path(__file__).resolve().parents[2]
CLASSES = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse", b"ship", b"truck"]


def _write_batches(folder: Path, rng: np.random.Generator) -> dict:
    folder.mkdir(parents=True)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": CLASSES, b"num_cases_per_batch": 20}, f)
    batches = {}
    for name, n in (("data_batch_1", 20), ("data_batch_2", 20), ("test_batch", 12)):
        batch = {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), b"labels": rng.integers(0, 10, n).tolist()}
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f)
        batches[name] = batch
    return batches


def test_prepares_the_files_and_prints_runnable_commands(tmp_path):
    batches = _write_batches(tmp_path / "cifar-10-batches-py", np.random.default_rng(0))
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="")
    overrides = [f"data.root={tmp_path}", "model=tiny", "epochs=1", "batch_size=8", "workers=0"]
    run = subprocess.run([sys.executable, str(ROOT / "scripts" / "prepare_cifar10.py"), *overrides],
                         capture_output=True, text=True, env=env, cwd=ROOT)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "40 training and 12 test pairs" in run.stdout

    train_rows = (tmp_path / "train.tsv").read_text().splitlines()
    assert train_rows[0] == "filepath\ttitle" and len(train_rows) == 41
    # row 21 is the first image of data_batch_2: pixels and caption as stored in the batch
    path, caption = train_rows[21].split("\t")
    expected = batches["data_batch_2"][b"data"][0].reshape(3, 32, 32).transpose(1, 2, 0)
    assert np.array_equal(np.asarray(Image.open(path)), expected)
    assert caption == f"A photo of a {CLASSES[batches['data_batch_2'][b'labels'][0]].decode()}"
    labels = np.loadtxt(tmp_path / "test_labels.txt", dtype=np.int64)
    assert labels.tolist() == batches["test_batch"][b"labels"]

    commands = [line for line in run.stdout.splitlines() if "modgap.patches.open_clip" in line]
    assert len(commands) == 3 and all("--model modgap-tiny" in c and "--epochs 1" in c for c in commands)
    assert commands[2].endswith("--modgap-override=loss=ours")
    metrics = run_printed_training_command(commands[2], tmp_path / "logs" / "cifar10_ours_seed0", env, ROOT)
    assert "modgap_gap" in metrics and "modgap_v_measure" in metrics
    params = (tmp_path / "logs" / "cifar10_ours_seed0" / "params.txt").read_text()
    assert "'temperature': 0.07" in params and "'lambda1': 1.0" in params
