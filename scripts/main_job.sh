#!/usr/bin/env bash
# README command 1: set up (scripts/bootstrap.sh) and run the main job on data that ships with
# scikit-learn (the digits): two small encoders trained with CLIP vs CLIP + ATP + CU, with the gap
# measured before and after. Arguments are passed to scripts/digits_demo.py (--help lists them).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/bootstrap.sh"
cd "$ROOT"
python scripts/digits_demo.py "$@"
