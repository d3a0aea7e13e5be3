"""Hydra-style configs composed in C++ (yaml-cpp): the same files, read the same way as the C++ tools.

    cfg = modgap.config.compose("configs", "train", ["loss=ours", "loss.lambda2=0.5", "+seed=3"])

Supported: defaults lists (groups, ``override``, ``optional``, ``@package``, ``_self_``), command-line
overrides (``key=value``, ``+key=value``, ``++key=value``, ``~key``, ``group=option``, ``+group=option``,
``~group``) and OmegaConf interpolation (``${a.b}``, ``${.sibling}``, ``${oc.env:VAR,default}``,
``${oc.select:key,default}``). See include/modgap/config.h for the exact subset.
"""
from __future__ import annotations

import json
import os
from typing import List, Sequence

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
