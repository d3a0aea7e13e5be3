"""Locating and loading libmodgap (the operator library) exactly once."""
from __future__ import annotations

import json
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


def _built_against(path: str) -> str | None:
    """The torch version libmodgap.build.json beside the library names (CMakeLists.txt writes it)."""
    try:
        return json.loads((Path(path).parent / "libmodgap.build.json").read_text())["torch"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _load_error(path: str, error: OSError) -> OSError:
    """torch.ops.load_library says only "Could not load this library: PATH"; the dynamic loader's reason
    is in the chained exception. Say it, and what to do about it."""
    reason = str(error.__cause__ or error)
    built = _built_against(path)
    versions = f"this process runs torch {torch.__version__}" + (f", libmodgap was built against torch {built}"
                                                                  if built else "")
    if "undefined symbol" in reason:
        advice = (f"{versions}. An undefined symbol means the library was compiled against another torch (or "
                  "another build of it): rebuild it in this environment, `pip install --no-build-isolation .` "
                  "(or `bash scripts/bootstrap.sh`) from the modgap checkout")
    elif "cannot open shared object file" in reason:
        missing = reason.split(":", 1)[0]
        advice = f"a library it needs is not found: {missing}"
        if missing.startswith("libyaml-cpp"):
            advice += " (yaml-cpp's runtime; Debian/Ubuntu: `apt-get install libyaml-cpp-dev`)"
        elif missing.startswith(("libtorch", "libc10", "libcudart")):
            advice += (f"; {versions}. The library looks for torch's libraries beside the torch package it "
                       "was installed with: rebuild or reinstall modgap in this environment")
    else:
        advice = "it is not a loadable shared library for this machine"
    return OSError(f"modgap: cannot load {path}: {reason}. {advice[0].upper()}{advice[1:]}.")


def load_library() -> str:
    """Load libmodgap into this process (idempotent) and return its path."""
    global _loaded_path
    if _loaded_path is None:
        path = library_path()
        try:
            torch.ops.load_library(path)
        except OSError as error:
            raise _load_error(path, error) from error
        _loaded_path = path
    return _loaded_path
