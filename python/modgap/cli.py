"""`modgap` console command: runs the C++ CLI shipped in the package (modgap/bin/modgap).

    modgap eval FILE [key=value ...]
"""
from __future__ import annotations

import os
import sys
from pathlib import Path


def executable() -> str:
    path = Path(__file__).resolve().parent / "bin" / "modgap"
    if not path.is_file():
        raise FileNotFoundError(f"the modgap CLI binary is missing at {path}; reinstall with `pip install .`")
    return str(path)


def main() -> None:
    os.execv(executable(), [executable(), *sys.argv[1:]])


if __name__ == "__main__":
    main()
