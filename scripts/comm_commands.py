"""Print the commands of the paper's Table 6 runs (CoMM on MOSI / UR-FUNNY / MuSTARD, with and without
our losses) from the composed configs.

    python scripts/comm_commands.py +experiment=mosi data.root=/data/multibench comm.root=/src/CoMM \
        [output_dir=runs/comm] [any configs/train.yaml override]

`data.root` holds MultiBench's pickles (mosi_data.pkl, humor.pkl, sarcasm.pkl; nothing is downloaded),
`comm.root` a CoMM checkout. One command per arm: loss=comm (CoMM's own loss) and loss=ours
(+ lambda1 L_ATP + lambda2 L_CU), both through python -m modgap.patches.comm, which logs the
dataset-level gap, Cos TP, RMG, V-measure and kNN accuracy beside CoMM's linear-probe acc1.
"""
from __future__ import annotations

import shlex
import sys
from pathlib import Path

import modgap
from modgap.patches.comm.launcher import comm_arguments

ROOT = Path(__file__).resolve().parents[1]
RUNS = ("comm", "ours")


def commands(overrides: list[str]) -> list[str]:
    if not any(o.startswith("+experiment=") for o in overrides):
        raise SystemExit("comm_commands: name the data set, e.g. +experiment=mosi (or urfunny, mustard)")
    lines = []
    for loss in RUNS:
        cfg = modgap.config.compose(ROOT / "configs", "train", [*overrides, f"loss={loss}"])
        for key, value in (("data.root", cfg["data"]["root"]), ("comm.root", cfg["comm"]["root"])):
            if value in (None, "???"):
                raise SystemExit(f"comm_commands: set {key}=... (see the docstring)")
        argv = ["python", "-m", "modgap.patches.comm",
                *comm_arguments(cfg, cfg["comm"]["root"], str(Path(cfg["output_dir"]).resolve()))]
        lines.append(shlex.join(argv))
    return lines


if __name__ == "__main__":
    for line in commands(sys.argv[1:]):
        print(line)
