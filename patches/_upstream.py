"""Helpers shared by the patches (OpenCLIP, CoMM, GRAM / VAST)."""
from __future__ import annotations

import argparse
import inspect
import runpy
import sys
from typing import Collection, List, Mapping, Sequence, Tuple

import torch


def check_signature(owner, name: str, expected: Sequence[str]) -> None:
    """The hooked function must still take the arguments the patch passes (the upstreams are not versioned)."""
    where = f"{getattr(owner, '__module__', None) or ''}.{getattr(owner, '__name__', repr(owner))}".lstrip(".")
    function = getattr(owner, name, None)
    if function is None:
        raise RuntimeError(f"modgap patch: {where} has no `{name}`; the patch hooks {name}{tuple(expected)}")
    got = tuple(inspect.signature(inspect.unwrap(function)).parameters)
    if got[:len(expected)] != tuple(expected):
        raise RuntimeError(f"modgap patch: {where}.{name} takes {got}, the patch expects {tuple(expected)} "
                           "(the upstream code changed; the README's patch section names the version read)")


# Every key a `loss` section (configs/loss/*.yaml) may hold: the union of what its consumers read.
LOSS_KEYS = ("name", "learnable_temperature", "temperature", "temperature_source", "temperature_schedule",
             "lambda1", "lambda2", "t", "normalize", "anchor", "contrastive", "schedule", "sparsify_epochs",
             "uniformity", "alignment", "cross_uniformity")


def _changes_the_loss(key: str, value) -> bool:
    """Whether a loss setting differs from "off" (its default), so that dropping it changes the loss."""
    if key == "contrastive":
        return value is not None and float(value) != 1.0
    if key == "normalize":
        return value is not None and not bool(value)
    if key in ("schedule", "temperature_schedule"):
        return bool(value)
    return value is not None and float(value) != 0.0


def check_loss_config(loss: Mapping, consumer: str, implements: Collection[str]) -> None:
    """Refuses a ``loss`` section whose settings ``consumer`` would silently drop: a key no consumer knows
    (e.g. a typo behind ``+loss.lamda1=1``), or a weight / option that is set (nonzero, ``normalize: false``,
    a schedule) among ``lambda1 lambda2 normalize anchor contrastive schedule temperature_schedule
    sparsify_epochs uniformity alignment cross_uniformity`` but not in ``implements``."""
    unknown = sorted(set(loss) - set(LOSS_KEYS))
    if unknown:
        raise ValueError(f"{consumer}: unknown key(s) {unknown} in the `loss` section; the loss keys are "
                         f"{list(LOSS_KEYS)}")
    settings = ("lambda1", "lambda2", "normalize", "anchor", "contrastive", "schedule", "temperature_schedule",
                "sparsify_epochs", "uniformity", "alignment", "cross_uniformity")
    for key in ("lambda1", "lambda2", "anchor", "contrastive", "sparsify_epochs", "uniformity", "alignment",
                "cross_uniformity", "t", "temperature"):
        value = loss.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise ValueError(f"{consumer}: `loss.{key}` must be a number, got {value!r}")
    dropped = sorted(k for k in settings if k not in implements and _changes_the_loss(k, loss.get(k)))
    if dropped:
        raise ValueError(f"{consumer}: loss={loss.get('name')} sets {dropped}, which {consumer} does not "
                         f"implement for it (it implements {sorted(set(implements) & set(settings))}); "
                         "the run would silently train another loss")


def at_least_float32(x: torch.Tensor) -> torch.Tensor:
    """AMP hands float16/bfloat16 features over: the modgap terms are computed in float32 (the ops accumulate
    in float32 anyway, and the loss should not come back rounded to half); float32/float64 stay as they are."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def true_or_false(value: str) -> bool:
    """argparse type of the launchers' boolean options (``--normalize false``)."""
    if value.lower() not in ("true", "false"):
        raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")
    return value.lower() == "true"


def split_at_double_dash(argv: List[str]) -> Tuple[List[str], List[str]]:
    """(the launcher's own arguments, the upstream entry point's) around the first ``--``."""
    split = argv.index("--") if "--" in argv else len(argv)
    return argv[:split], argv[split + 1:]


def run_as_main(script: str, argv: List[str]) -> None:
    """Run an upstream entry point as ``python script argv...`` would, in this process (patches installed)."""
    sys.argv = [script] + list(argv)
    runpy.run_path(script, run_name="__main__")
