"""Hydra-style configs composed in C++ (yaml-cpp): the same files, read the same way as the C++ tools.

    cfg = modgap.config.compose("configs", "train", ["loss=ours", "loss.lambda2=0.5", "+seed=3"])

Supported: defaults lists (groups, ``override``, ``optional``, ``@package``, ``_self_``), command-line
overrides (``key=value``, ``+key=value``, ``++key=value``, ``~key``, ``group=option``, ``+group=option``,
``~group``) and OmegaConf interpolation (``${a.b}``, ``${.sibling}``, ``${oc.env:VAR,default}``,
``${oc.select:key,default}``, ``${oc.decode:text}``, read by OmegaConf's grammar). See
include/modgap/config.h for the exact subset.

Multirun (Hydra's BasicSweeper): ``compose`` refuses a sweep; ``sweep`` lists its jobs and
``compose_multirun`` composes each one::

    for overrides, cfg in modgap.config.compose_multirun("configs", "train",
                                                         ["loss.lambda1=0,0.5,1", "loss.lambda2=range(0,1.01,0.25)"]):
        ...
"""
from __future__ import annotations

import json
import os
from typing import List, Sequence, Tuple

import torch

from ._library import load_library

load_library()


def compose(config_dir: str | os.PathLike, config_name: str, overrides: Sequence[str] = ()) -> dict:
    """The composed, interpolation-resolved config as a dict (errors: ValueError naming file and key)."""
    text, _, _ = torch.ops.modgap._compose_config(str(config_dir), config_name, list(overrides))
    return json.loads(text)


def compose_yaml(config_dir: str | os.PathLike, config_name: str, overrides: Sequence[str] = ()) -> str:
    """The composed config as YAML text."""
    return torch.ops.modgap._compose_config(str(config_dir), config_name, list(overrides))[1]


def defaults_list(config_dir: str | os.PathLike, config_name: str, overrides: Sequence[str] = ()) -> List[str]:
    """The final defaults list ("group: option -> package"), as Hydra's ``--info defaults``."""
    return list(torch.ops.modgap._compose_config(str(config_dir), config_name, list(overrides))[2])


def _jobs(flat: Sequence[str], per_job: int) -> List[List[str]]:
    return [list(flat[i:i + per_job]) for i in range(0, len(flat), per_job)] if per_job else [[]]


def sweep(overrides: Sequence[str]) -> List[List[str]]:
    """The jobs of a Hydra multirun sweep, each a plain override list for ``compose``.

    ``a=1,2``, ``a=choice(1,2)`` and ``a=range(start, stop[, step])`` (Python's range for integers,
    Hydra's FloatRange for floats) are sweeps; the jobs are the cartesian product over the overrides in
    order (the first varies slowest), as ``hydra -m``. Without a sweep: one job. Errors: ValueError
    naming the override."""
    return _jobs(*torch.ops.modgap._expand_sweeps(list(overrides)))


def compose_multirun(config_dir: str | os.PathLike, config_name: str,
                     overrides: Sequence[str] = ()) -> List[Tuple[List[str], dict]]:
    """``(job overrides, composed config)`` for every job of the sweep in ``overrides``; every job is
    composed before any is returned, so a bad job fails the whole sweep up front (the error names it)."""
    flat, per_job, configs = torch.ops.modgap._compose_multirun(str(config_dir), config_name, list(overrides))
    return [(job, json.loads(text)) for job, text in zip(_jobs(flat, per_job), configs)]
