#!/usr/bin/env bash
# Run on the development machine before a GPU session: fills .gpu/ (git-ignored) with what the GPU
# machine lacks and cannot fetch (it reaches no registry):
#   .gpu/debs/    Debian packages of yaml-cpp (the config composer links it) and GoogleTest
#   .gpu/wheels/  pure-Python wheels the tests and benchmarks import beyond the GPU image's own packages
#                 (open_clip_torch for the ViT-B/32 step, omegaconf for the config tests, expecttest
#                 for torch.library.opcheck, hypothesis with attrs and sortedcontainers for the property tests)
# Then hand `.gpu` to the device tool's `carry` and run scripts/gpu_check.sh there.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="$ROOT/.gpu"
PIP="${PIP:-$ROOT/.venv/bin/pip}"
[ -x "$PIP" ] || PIP="python3 -m pip"
rm -rf "$DEST"
mkdir -p "$DEST/debs" "$DEST/wheels"
(cd "$DEST/debs" && apt-get download libyaml-cpp-dev libyaml-cpp0.7 libgtest-dev 2>/dev/null)
$PIP download -q --no-deps -d "$DEST/wheels" open_clip_torch==3.3.0 ftfy wcwidth expecttest omegaconf \
  webdataset braceexpand hypothesis attrs sortedcontainers
du -sh "$DEST"
ls "$DEST/debs" "$DEST/wheels"
