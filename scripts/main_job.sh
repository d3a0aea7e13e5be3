#!/usr/bin/env bash
# README command 1: set up (scripts/bootstrap.sh), then train real OpenCLIP (open_clip_train, unchanged)
# through modgap's patch on scikit-learn's digits rendered as images with varied captions, once with
# loss=clip_lt and once with loss=ours, and compare them with modgap.evaluate (Table-1 style) + plots.
# Arguments are Hydra-style overrides of configs/train.yaml, e.g. `epochs=10 loss.lambda2=0.5`.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/bootstrap.sh"
cd "$ROOT"
python scripts/openclip_digits.py "$@"
