"""Entry point and the patches on OpenCLIP 3.3.0's training package (see the package docstring)."""
from __future__ import annotations

import argparse
import json
import logging
import math
import os
import shlex
import tempfile
from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np
import torch

import modgap

from .loss import ModGapLoss, check_loss

SUPPORTED_OPEN_CLIP_VERSION = "3.3.0"

# The loss config used when no --modgap-config is given: eq. 21 with lambda1 = lambda2 = 1, keeping
# OpenCLIP's learnable temperature unless --modgap-fixed-temperature is given.
DEFAULT_CONFIG = {"loss": {"name": "ours", "learnable_temperature": True, "lambda1": 1.0, "lambda2": 1.0, "t": 2.0,
                           "normalize": True, "anchor": 0}}


class _State:
    args = None           # the parsed OpenCLIP namespace (with .modgap)
    val_labels = None     # torch.Tensor of validation labels, or None
    patched = False


def _check_version() -> None:
    import open_clip
    version = getattr(open_clip, "__version__", "unknown")
    if version != SUPPORTED_OPEN_CLIP_VERSION:
        raise RuntimeError(
            f"modgap.patches.open_clip patches open_clip_torch=={SUPPORTED_OPEN_CLIP_VERSION} (it wraps names bound in "
            f"open_clip_train.main and open_clip_train.train), but open_clip_torch {version} is installed. "
            f"Install `open_clip_torch=={SUPPORTED_OPEN_CLIP_VERSION}` or port the patch (see patches/open_clip/README.md).")


def modgap_argument_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m modgap.patches.open_clip", allow_abbrev=False, add_help=False,
                                     description="modgap options; every other argument goes to open_clip_train.main")
    group = parser.add_argument_group("modgap")
    group.add_argument("--modgap-config", help="primary YAML config (Hydra-style, e.g. configs/train.yaml)")
    group.add_argument("--modgap-override", action="append", default=[], metavar="KEY=VALUE",
                       help="Hydra-style override of the config (repeatable): loss=clip_ft, loss.lambda2=0.5, ...")
    group.add_argument("--modgap-lambda1", type=float, help="shorthand for loss.lambda1=X (ATP weight)")
    group.add_argument("--modgap-lambda2", type=float, help="shorthand for loss.lambda2=X (CU weight)")
    group.add_argument("--modgap-fixed-temperature", type=float,
                       help="freeze OpenCLIP's temperature at this value (loss.learnable_temperature=false)")
    group.add_argument("--modgap-logs", metavar="DIR",
                       help="passed to OpenCLIP as --logs DIR: under torchrun on Python 3.11, `--logs` itself is "
                            "rejected as an ambiguous abbreviation of torchrun's --logs-specs")
    group.add_argument("--modgap-val-labels", help="text file with one integer class label per validation row: "
                                                    "enables V-measure and kNN accuracy in the validation metrics")
    return parser


def compose_modgap_config(options: argparse.Namespace) -> dict:
    """The composed config: --modgap-config (or the built-in default) with the overrides and shorthands."""
    overrides: List[str] = list(options.modgap_override)
    if options.modgap_lambda1 is not None:
        overrides.append(f"loss.lambda1={options.modgap_lambda1}")
    if options.modgap_lambda2 is not None:
        overrides.append(f"loss.lambda2={options.modgap_lambda2}")
    if options.modgap_fixed_temperature is not None:
        overrides += ["loss.learnable_temperature=false", f"++loss.temperature={options.modgap_fixed_temperature}"]
    if options.modgap_config:
        path = Path(options.modgap_config)
        if not path.is_file():
            raise FileNotFoundError(f"--modgap-config {options.modgap_config!r} is not a file")
        return modgap.config.compose(path.parent, path.stem, overrides)
    return _compose_without_file(overrides)


def _compose_without_file(overrides: List[str]) -> dict:
    with tempfile.TemporaryDirectory() as directory:
        Path(directory, "default.json.yaml").write_text(json.dumps(DEFAULT_CONFIG))  # JSON is YAML
        return modgap.config.compose(directory, "default.json", overrides)


def _register_model_config(config: dict) -> None:
    model = config.get("model") or {}
    spec = model.get("open_clip_config")
    if not spec:
        return
    import open_clip
    directory = Path(tempfile.mkdtemp(prefix="modgap-model-"))
    path = directory / f"{model['name']}.json"
    path.write_text(json.dumps(spec))
    open_clip.add_model_config(path)


def _load_labels(path: Optional[str]) -> Optional[torch.Tensor]:
    if not path:
        return None
    values = np.loadtxt(path, dtype=np.int64, ndmin=1)
    return torch.from_numpy(values)


def apply_patches() -> None:
    """Patch open_clip_train (idempotent)."""
    if _State.patched:
        return
    _check_version()
    import open_clip
    import open_clip.factory
    import open_clip_train.main as oc_main
    import open_clip_train.params as oc_params
    import open_clip_train.train as oc_train

    original_parse_args = oc_params.parse_args
    original_create_loss = open_clip.factory.create_loss
    original_create_model = oc_main.create_model_and_transforms
    original_train_one_epoch = oc_train.train_one_epoch
    original_get_clip_metrics = oc_train.get_clip_metrics

    def parse_args(argv):
        options, rest = modgap_argument_parser().parse_known_args(argv)
        if options.modgap_logs:
            rest = [*rest, "--logs", options.modgap_logs]
        args = original_parse_args(rest)
        config = compose_modgap_config(options)
        # a mistyped key or a setting the patch would drop fails now, not after the first epoch
        check_loss(config["loss"])
        modgap.evaluation_options(config.get("eval"))
        _register_model_config(config)
        args.modgap = config
        args.modgap_val_labels = options.modgap_val_labels
        _State.args = args
        _State.val_labels = _load_labels(options.modgap_val_labels)
        return args

    def create_model_and_transforms(*a, **kw):
        model, preprocess_train, preprocess_val = original_create_model(*a, **kw)
        loss_config = (_State.args.modgap if _State.args is not None else DEFAULT_CONFIG)["loss"]
        if not loss_config.get("learnable_temperature", True):
            # Fixed temperature: logit_scale = log(1/T), excluded from the optimiser (it only takes
            # parameters that require grad) and from DDP's gradient sync.
            with torch.no_grad():
                model.logit_scale.fill_(math.log(1.0 / float(loss_config["temperature"])))
            model.logit_scale.requires_grad_(False)
        return model, preprocess_train, preprocess_val

    def create_loss(args):
        return ModGapLoss(original_create_loss(args), args.modgap["loss"], args)

    def train_one_epoch(model, data, loss, epoch, *a, **kw):
        if isinstance(loss, ModGapLoss):
            loss.epoch = epoch
        args = _State.args
        schedule = (getattr(args, "modgap", None) or {}).get("loss", {}).get("temperature_schedule")
        if schedule:
            # OpenCLIP 3.3.0: train_one_epoch(model, data, loss, epoch, optimizer, scaler, scheduler, ...); the
            # scheduler is called with the global step at the start of every optimiser step.
            if getattr(args, "skip_scheduler", False):
                raise ValueError("modgap: loss.temperature_schedule is applied through OpenCLIP's per-step scheduler "
                                 "call, which --skip-scheduler turns off; drop one of the two")
            steps_per_epoch = int(data["train"].dataloader.num_batches) // int(args.accum_freq)
            total_steps = int(args.epochs) * steps_per_epoch
            if "scheduler" in kw:
                kw["scheduler"] = scheduled_temperature_step(model, schedule, total_steps, kw["scheduler"])
            else:
                a = list(a)
                a[2] = scheduled_temperature_step(model, schedule, total_steps, a[2])
        return original_train_one_epoch(model, data, loss, epoch, *a, **kw)

    def get_clip_metrics(image_features, text_features, logit_scale, *a, **kw):
        metrics = original_get_clip_metrics(image_features, text_features, logit_scale, *a, **kw)
        metrics.update(gap_metrics(image_features, text_features, _State.val_labels, _State.args))
        return metrics

    oc_main.parse_args = parse_args
    oc_main.create_model_and_transforms = create_model_and_transforms
    oc_main.create_loss = create_loss
    open_clip.create_loss = create_loss
    open_clip.factory.create_loss = create_loss
    oc_main.train_one_epoch = train_one_epoch
    oc_train.get_clip_metrics = get_clip_metrics
    _State.patched = True


def scheduled_temperature(schedule: dict, step: int, total_steps: int) -> float:
    """Yaras et al.'s temperature scheduling (TS): the temperature rises linearly from ``schedule["start"]``
    to ``schedule["end"]`` over training; the training step ``step`` (0-based, of ``total_steps``) uses
    ``start + (end - start) * step / total_steps``."""
    start, end = float(schedule["start"]), float(schedule["end"])
    return start + (end - start) * min(max(step, 0), total_steps) / max(total_steps, 1)


def scheduled_temperature_step(model: torch.nn.Module, schedule: dict, total_steps: int, lr_scheduler):
    """Wraps OpenCLIP's per-step learning-rate scheduler so that every optimiser step first sets the frozen
    ``logit_scale = log(1 / T)``, T from :func:`scheduled_temperature` at that global step. The model
    itself carries the value, so OpenCLIP's loss, its logged "Logit Scale" and the validation after the
    epoch all see it; with --accum-freq every micro-batch of a step uses the same T."""
    module = getattr(model, "module", model)  # DDP wraps the model; the parameter lives on the inner module
    module = getattr(module, "_orig_mod", module)  # --torchcompile
    if not hasattr(module, "logit_scale") or module.logit_scale.requires_grad:
        raise ValueError("modgap: loss.temperature_schedule needs a fixed temperature (loss.learnable_temperature="
                         "false) on a model with a logit_scale parameter")

    def step(global_step: int):
        with torch.no_grad():
            module.logit_scale.fill_(math.log(1.0 / scheduled_temperature(schedule, global_step, total_steps)))
        return lr_scheduler(global_step) if lr_scheduler is not None else None

    return step


def gap_metrics(image_features: torch.Tensor, text_features: torch.Tensor, labels: Optional[torch.Tensor],
                args=None) -> dict:
    """modgap's measures of the whole validation set (row i of both = one pair), as Python floats.
    The Fill-the-Gap ratios are inf when no neighbour crosses the modalities (results.jsonl: Infinity)."""
    image, text = image_features.float(), text_features.float()
    protocol = ((getattr(args, "modgap", None) or {}).get("eval") or {}) if args is not None else {}
    stats = modgap.gap_stats([image, text])
    metrics = {
        "modgap_gap": float(stats["gap"][0, 1]),
        "modgap_cos_tp": float(stats["cos_tp_mean"][0, 1]),
        "modgap_rmg": float(stats["rmg"][0, 1]),
        "modgap_centroid_cosine": float(stats["centroid_cosine"][0, 1]),
        "modgap_av_image": float(stats["angular_value"][0]),
        "modgap_av_text": float(stats["angular_value"][1]),
        "modgap_atp": float(modgap.atp_loss([image, text])),
        "modgap_cu": float(modgap.centroid_uniformity([image, text])),
    }
    fill_gap_k = int(protocol.get("fill_gap_k", 1))
    if fill_gap_k > 0:
        fill_gap = modgap.fill_gap_stats(image, text, fill_gap_k)
        metrics.update({f"modgap_{key}": fill_gap[key] for key in ("itr", "tir", "tmr", "imr", "fid")})
    if labels is not None:
        if labels.shape[0] != image.shape[0]:
            logging.warning("modgap: --modgap-val-labels has %d labels but the validation set has %d rows; "
                            "skipping V-measure and kNN", labels.shape[0], image.shape[0])
            return metrics
        # the whole eval protocol (test_fraction, knn_metric, n_clusters, ... as the config sets them); R@1
        # and Fill the Gap are computed above, the probe and separability are not logged here
        result = modgap.evaluate({"image": image, "text": text}, labels,
                                 **modgap.evaluation_options(protocol, ks=(1,), fill_gap_k=0, probe_max_iter=0))
        metrics["modgap_v_measure"] = float(result["clustering"]["v_measure"])
        metrics["modgap_knn_accuracy"] = float(result["knn"]["accuracy"]["joint"])
    return metrics


def training_arguments(cfg: dict, *, train_data: str, val_data: str, logs: str, name: str,
                       device: Optional[str] = None) -> List[str]:
    """open_clip_train.main arguments for a composed config (configs/train.yaml and its groups): the model
    and the optimisation settings (epochs, batch_size, lr, wd, warmup, precision, workers, seed) come from
    ``cfg``, the data from CSV/TSV files with ``filepath`` and ``title`` columns. Add the ``--modgap-*``
    options (config, overrides, validation labels) and any other OpenCLIP option after these."""
    arguments = [
        "--train-data", str(train_data), "--val-data", str(val_data), "--dataset-type", "csv",
        "--model", str(cfg["model"]["name"]), "--epochs", str(cfg["epochs"]), "--batch-size", str(cfg["batch_size"]),
        "--lr", str(cfg["lr"]), "--wd", str(cfg["wd"]), "--warmup", str(cfg["warmup"]),
        "--precision", str(cfg["precision"]), "--workers", str(cfg["workers"]), "--seed", str(cfg["seed"]),
        "--name", name, "--logs", str(logs),
    ]
    return arguments + (["--device", device] if device else [])


def paper_run_commands(cfg: dict, *, experiment: str, overrides: List[str], runs: Sequence[str],
                       config_file: str) -> List[str]:
    """One ``python -m modgap.patches.open_clip`` command per loss in ``runs`` for a composed
    ``+experiment=<experiment>`` config whose data group names ``train_csv``, ``val_csv`` and ``val_labels``
    (scripts/prepare_cifar10.py, scripts/prepare_mscoco.py); logs go to ``data.root/logs``."""
    data = cfg["data"]
    lines = []
    for loss in runs:
        argv = ["python", "-m", "modgap.patches.open_clip",
                *training_arguments(cfg, train_data=data["train_csv"], val_data=data["val_csv"],
                                    logs=str(os.path.join(str(data["root"]), "logs")),
                                    name=f"{experiment}_{loss}_seed{cfg['seed']}"),
                "--modgap-config", str(config_file), "--modgap-val-labels", str(data["val_labels"]),
                f"--modgap-override=+experiment={experiment}", *[f"--modgap-override={o}" for o in overrides],
                f"--modgap-override=loss={loss}"]
        lines.append(shlex.join(argv))
    return lines


def main(argv: Optional[List[str]] = None):
    """Run open_clip_train.main.main(argv) with the patches; returns what it returns (None, or -1)."""
    apply_patches()
    import open_clip_train.main as oc_main
    if argv is not None and any(a in ("-h", "--help") for a in argv):
        modgap_argument_parser().print_help()
    try:
        return oc_main.main(list(argv) if argv is not None else [])
    finally:
        # OpenCLIP's setup_logging sets every existing logger to INFO; put torch's back to WARNING so its
        # dynamo statistics are not printed at exit.
        for name in list(logging.root.manager.loggerDict):
            if name == "torch" or name.startswith("torch."):
                logging.getLogger(name).setLevel(logging.WARNING)
