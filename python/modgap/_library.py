"""Locating and loading libmodgap (the operator library) exactly once."""
from __future__ import annotations

import os
from pathlib import Path

import torch

_LIBRARY_NAMES = ("libmodgap.so", "libmodgap.dylib", "modgap.dll")
_loaded_path: str | None = None


def library_path() -> str:
    """Path of the libmodgap shared library this package loads.

    ``MODGAP_LIBRARY`` overrides it (e.g. a CMake build tree during development); otherwise the copy
    installed inside the package (``modgap/lib/``) is used.
    """
    override = os.environ.get("MODGAP_LIBRARY")
    if override:
        if not Path(override).is_file():
            raise FileNotFoundError(f"MODGAP_LIBRARY={override!r} does not name a file")
        return str(Path(override).resolve())
    lib_dir = Path(__file__).resolve().parent / "lib"
    for name in _LIBRARY_NAMES:
        candidate = lib_dir / name
        if candidate.is_file():
            return str(candidate)
    raise FileNotFoundError(
        f"libmodgap was not found in {lib_dir}; install the package with `pip install .` "
        "(or set MODGAP_LIBRARY to a built libmodgap.so)"
    )


def load_library() -> str:
    """Load libmodgap into this process (idempotent) and return its path."""
    global _loaded_path
    if _loaded_path is None:
        path = library_path()
        torch.ops.load_library(path)
        _loaded_path = path
    return _loaded_path
