#!/usr/bin/env bash
# Sets up everything modgap needs on a fresh Debian machine, idempotently:
#   1. system packages via apt-get: the C++ side (GoogleTest, yaml-cpp), espeak-ng (scripts/av_mnist.py);
#   2. .venv/ with the pinned requirements (rebuilt only when requirements.txt changes);
#   3. the CMake build in build/cmake (libmodgap, GoogleTest suite, TorchScript runner);
#   4. the `modgap` Python package installed into .venv (reusing that build).
# Sourced by scripts/test.sh and scripts/main_job.sh; safe to run on its own.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
log() { echo "[modgap] $*"; }

APT_PACKAGES=(libyaml-cpp-dev libgtest-dev espeak-ng)  # espeak-ng speaks the AV-MNIST default's digits
missing=()
for package in "${APT_PACKAGES[@]}"; do
  dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if ((${#missing[@]})); then
  log "installing system packages: ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

PYTHON="${PYTHON:-python3}"
requirements_hash="$(sha256sum requirements.txt | cut -c1-16)"
if [ ! -x .venv/bin/python ] || [ "$(cat .venv/.requirements-hash 2>/dev/null || true)" != "$requirements_hash" ]; then
  log "creating .venv with requirements.txt (torch is large: this takes a few minutes once)"
  rm -rf .venv
  "$PYTHON" -m venv .venv
  if ! .venv/bin/pip install -q -r requirements.txt >.venv-install.log 2>&1; then
    cat .venv-install.log
    exit 1
  fi
  rm -f .venv-install.log
  echo "$requirements_hash" >.venv/.requirements-hash
fi
export PATH="$ROOT/.venv/bin:$PATH"

BUILD_DIR="$ROOT/build/cmake"
mkdir -p "$BUILD_DIR"
if [ ! -f "$BUILD_DIR/CMakeCache.txt" ]; then
  log "configuring the C++ build in build/cmake"
  cmake -S "$ROOT" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DMODGAP_BUILD_TESTS=ON \
    -DCMAKE_PREFIX_PATH="$(python -c 'import torch; print(torch.utils.cmake_prefix_path)')" >"$ROOT/build/configure.log" 2>&1 ||
    { cat "$ROOT/build/configure.log"; exit 1; }
fi
log "building libmodgap and the C++ tests"
cmake --build "$BUILD_DIR" -j "$(nproc)" >"$ROOT/build/build.log" 2>&1 || { tail -n 80 "$ROOT/build/build.log"; exit 1; }

log "installing the modgap Python package into .venv"
pip install -q --no-build-isolation --no-deps . >"$ROOT/build/pip-install.log" 2>&1 ||
  { cat "$ROOT/build/pip-install.log"; exit 1; }
python -c "import modgap, torch; print('[modgap] loaded', modgap.library_path(), '| torch', torch.__version__, '| CUDA kernels compiled:', modgap.cuda_version() > 0)"
