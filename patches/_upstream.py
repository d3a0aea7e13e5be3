"""Helpers shared by the patches (OpenCLIP, CoMM, GRAM / VAST)."""
from __future__ import annotations

import inspect
import runpy
import sys
from typing import List, Sequence, Tuple

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


def at_least_float32(x: torch.Tensor) -> torch.Tensor:
    """AMP hands float16/bfloat16 features over: the modgap terms are computed in float32 (the ops accumulate
    in float32 anyway, and the loss should not come back rounded to half); float32/float64 stay as they are."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def split_at_double_dash(argv: List[str]) -> Tuple[List[str], List[str]]:
    """(the launcher's own arguments, the upstream entry point's) around the first ``--``."""
    split = argv.index("--") if "--" in argv else len(argv)
    return argv[:split], argv[split + 1:]


def run_as_main(script: str, argv: List[str]) -> None:
    """Run an upstream entry point as ``python script argv...`` would, in this process (patches installed)."""
    sys.argv = [script] + list(argv)
    runpy.run_path(script, run_name="__main__")
