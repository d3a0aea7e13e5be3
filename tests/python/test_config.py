"""The C++ config composer against OmegaConf (an independent implementation of the same merge and
interpolation rules), and every shipped config composes."""
from __future__ import annotations

from pathlib import Path

import pytest

import modgap

omegaconf = pytest.importorskip("omegaconf")
from omegaconf import OmegaConf  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]

CASES = [
    # (base YAML, dot-list overrides applied by OmegaConf / Hydra's key=value)
    ("a: 1\nb:\n  c: 2\n  d: [1, 2]\n", ["a=3", "b.c=hello"]),
    ("model:\n  dim: 64\n  width: ${model.dim}\n  name: m${model.dim}\ncopy: ${model}\n", ["model.dim=128"]),
    ("x:\n  y: 1\n  z: ${.y}\n  w: ${..top}\ntop: 5\n", []),
    ("lr: 1e-3\nwd: 0.1\nflag: true\nnothing: null\nlist: [a, 1, 2.5, false]\n", ["flag=false", "wd=0.5"]),
    ("pick: a\nvalues:\n  a: 1\n  b: 2\nchosen: ${values.${pick}}\n", ["pick=b"]),
    ("items: [10, 20, 30]\nsecond: ${items.1}\n", []),
]


@pytest.mark.parametrize("text,overrides", CASES)
def test_matches_omegaconf(tmp_path, text, overrides):
    (tmp_path / "c.yaml").write_text(text)
    ours = modgap.config.compose(tmp_path, "c", overrides)
    reference = OmegaConf.merge(OmegaConf.create(text), OmegaConf.from_dotlist(overrides))
    assert ours == OmegaConf.to_container(reference, resolve=True)


def test_merge_order_matches_omegaconf_merge(tmp_path):
    # A primary config whose defaults place two files into packages, then its own body (_self_ last):
    # the same as OmegaConf.merge of the three, in that order.
    (tmp_path / "loss").mkdir()
    (tmp_path / "data").mkdir()
    (tmp_path / "loss" / "ours.yaml").write_text("lambda1: 1.0\nt: 2.0\nnested:\n  a: 1\n  b: 2\n")
    (tmp_path / "data" / "d.yaml").write_text("root: ???\nsize: 10\n")
    (tmp_path / "main.yaml").write_text("defaults:\n  - loss: ours\n  - data: d\nloss:\n  t: 3.0\n  nested:\n    b: 5\n"
                                        "data:\n  root: /x\n")
    ours = modgap.config.compose(tmp_path, "main", ["loss.lambda1=0.5"])
    reference = OmegaConf.merge(
        {"loss": OmegaConf.load(tmp_path / "loss" / "ours.yaml")}, {"data": OmegaConf.load(tmp_path / "data" / "d.yaml")},
        OmegaConf.create("loss:\n  t: 3.0\n  nested:\n    b: 5\ndata:\n  root: /x\n"), OmegaConf.from_dotlist(["loss.lambda1=0.5"]))
    assert ours == OmegaConf.to_container(reference, resolve=True)


@pytest.mark.parametrize("loss", ["clip_lt", "clip_ft", "ours", "ours_scheduled", "notagap", "atp_uniformity"])
def test_every_loss_config_composes(loss):
    cfg = modgap.config.compose(ROOT / "configs", "train", [f"loss={loss}"])
    assert cfg["loss"]["name"] == loss and cfg["run_name"] == f"digits_{loss}_seed0"


@pytest.mark.parametrize("experiment", sorted(p.stem for p in (ROOT / "configs" / "experiment").glob("*.yaml")))
def test_every_experiment_composes_once_its_paths_are_given(experiment):
    with pytest.raises(ValueError, match=r"is missing \(\?\?\?\); set it"):
        modgap.config.compose(ROOT / "configs", "train", [f"+experiment={experiment}"])
    cfg = modgap.config.compose(ROOT / "configs", "train", [f"+experiment={experiment}", "data.root=/data"])
    # 100 epochs in the paper's OpenCLIP runs and CoMM's; GRAM's config JSON sets its own
    assert cfg["data"]["name"] == experiment and cfg["epochs"] == (None if experiment == "msrvtt" else 100)


@pytest.mark.parametrize("data", sorted(p.stem for p in (ROOT / "configs" / "data").glob("*.yaml")))
def test_every_data_config_composes(data):
    overrides = [f"data={data}"]
    cfg = modgap.config.compose(ROOT / "configs", "train", overrides + ["++data.root=/d", "++data.mnist_root=/m",
                                                                         "++data.audio_mnist_root=/a"])
    assert cfg["data"]["name"] == data


def test_defaults_list_and_yaml_output():
    assert modgap.config.defaults_list(ROOT / "configs", "train", ["loss=clip_ft"])[:3] == [
        "loss: clip_ft -> loss", "data: digits -> data", "model: tiny -> model"]
    assert "lambda1: 1.0" in modgap.config.compose_yaml(ROOT / "configs", "train", [])


def test_cli_config_matches_python():
    import json
    import os
    import subprocess
    cli = Path(os.environ.get("MODGAP_LIBRARY", modgap.library_path())).parent / "modgap"
    if not cli.is_file():
        cli = Path(modgap.__file__).parent / "bin" / "modgap"
    run = subprocess.run([str(cli), "config", str(ROOT / "configs" / "train.yaml"), "loss=notagap", "seed=3"],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == modgap.config.compose(ROOT / "configs", "train", ["loss=notagap", "seed=3"])
    run = subprocess.run([str(cli), "config", str(ROOT / "configs" / "train.yaml"), "loss=nope"],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 1 and "unknown option 'nope' for config group 'loss'" in run.stderr
