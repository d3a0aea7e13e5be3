#!/usr/bin/env bash
# README command 2: set up (scripts/bootstrap.sh) and run the whole test suite:
# GoogleTest (C++ API through the dispatcher) and pytest (Python, TorchScript + C++ loader,
# torch.compile, opcheck, gradcheck; CUDA tests skip without a GPU). Exits non-zero on any failure.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/bootstrap.sh"
cd "$ROOT"
echo "== GoogleTest =="
ctest --test-dir build/cmake --output-on-failure -j "$(nproc)"
echo "== pytest =="
export MODGAP_JIT_RUNNER="$ROOT/build/cmake/modgap_jit_runner"
python -m pytest tests/python -q -rs "$@"
