"""Print the commands of the MSR-VTT runs on GRAM's code base (CLIP baseline and ours) from the configs.

    python scripts/gram_commands.py data.root=/data/msrvtt gram.root=/src/GRAM gram.pretrain_dir=/ckpt/gram \
        [data.categories=null] [gram.model=vast gram.root=/src/VAST] [any override]

One torchrun command per arm: loss=clip_lt (the pairwise cosine ITC GRAM ships commented out, restored by
the patch) and loss=ours (+ lambda1 L_ATP + lambda2 L_CU). data.categories (default
data.root/msrvtt_categories.json, written by scripts/msrvtt_categories.py; null to leave it out) adds
V-measure and kNN accuracy over MSR-VTT's 20 categories to the validation log.
"""
from __future__ import annotations

import shlex
import sys
from pathlib import Path

import modgap
from modgap.patches.gram.launcher import gram_arguments

ROOT = Path(__file__).resolve().parents[1]
RUNS = ("clip_lt", "ours")


def commands(overrides: list[str]) -> list[str]:
    if "+experiment=msrvtt" not in overrides:
        overrides = ["+experiment=msrvtt", *overrides]
    lines = []
    for loss in RUNS:
        cfg = modgap.config.compose(ROOT / "configs", "train", [*overrides, f"loss={loss}"])
        for key in ("root", "pretrain_dir"):
            if cfg["gram"][key] in (None, "???"):
                raise SystemExit(f"gram_commands: set gram.{key}=... (see the docstring)")
        lines.append(shlex.join(gram_arguments(cfg, str(Path(cfg["output_dir"]).resolve()))))
    return lines


if __name__ == "__main__":
    for line in commands(sys.argv[1:]):
        print(line)
