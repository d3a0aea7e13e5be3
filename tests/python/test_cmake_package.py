"""The installed C++ package, used as the README says: `cmake --install` into a prefix, then a program
outside the source tree (tests/cpp/find_package_consumer) configured with find_package(modgap) and
linked to modgap::modgap, and the installed `modgap` CLI. Both run with no LD_LIBRARY_PATH and no
Python in the process, so the installed libmodgap must find libtorch and the CUDA runtime on its own.
The consumer's loss, gradient norms and composed config must equal the same calls made from Python.
The Python package's copies of the CLI and library, moved into another site-packages, must load that
one's torch."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import modgap
import modgap.config

ROOT = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("MODGAP_BUILD_DIR", ROOT / "build" / "cmake"))
CONSUMER = ROOT / "tests" / "cpp" / "find_package_consumer"

pytestmark = pytest.mark.skipif(not (BUILD / "CMakeCache.txt").is_file() or shutil.which("cmake") is None,
                                reason=f"no CMake build at {BUILD} (scripts/bootstrap.sh makes one)")


def _without_loader_path() -> dict:
    """This process's environment without LD_LIBRARY_PATH: the binaries must find their libraries alone."""
    return {key: value for key, value in os.environ.items() if key != "LD_LIBRARY_PATH"}


def _run(command, **kwargs):
    result = subprocess.run([str(c) for c in command], capture_output=True, text=True, env=_without_loader_path(),
                            timeout=600, **kwargs)
    assert result.returncode == 0, f"{' '.join(map(str, command))}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.fixture(scope="module")
def prefix(tmp_path_factory):
    prefix = tmp_path_factory.mktemp("modgap-prefix")
    _run(["cmake", "--install", BUILD, "--prefix", prefix])
    return prefix


def _consumer_embeddings(rows=96, dims=12):
    # main.cpp's inputs, built from the same ATen calls in the same order (float64)
    index = torch.arange(rows * dims, dtype=torch.float64).reshape(rows, dims)
    raw_image = torch.sin(index * 0.37)
    image = raw_image / raw_image.norm(2, 1, keepdim=True)
    raw_text = torch.cos(index * 0.11) + image * 0.5
    text = raw_text / raw_text.norm(2, 1, keepdim=True)
    return image, text


def test_find_package_consumer_builds_links_and_matches_python(prefix, tmp_path):
    build = tmp_path / "consumer"
    generator = ["-G", "Ninja"] if shutil.which("ninja") else []
    _run(["cmake", "-S", CONSUMER, "-B", build, *generator, "-DCMAKE_BUILD_TYPE=Release",
          f"-DCMAKE_PREFIX_PATH={prefix};{torch.utils.cmake_prefix_path}"])
    _run(["cmake", "--build", build])
    overrides = ["loss=clip_ft", "loss.lambda2=0.5", "+experiment=cifar10", "data.root=/data/cifar10"]
    out = json.loads(_run([build / "gap_terms", ROOT / "configs", *overrides]).stdout)
    assert out["config"] == modgap.config.compose(ROOT / "configs", "train", overrides)

    image, text = (x.requires_grad_(True) for x in _consumer_embeddings())
    loss = modgap.atp_loss([image, text]) + modgap.centroid_uniformity([image, text], t=2.0)
    loss.backward()
    assert abs(out["loss"] - loss.item()) <= 1e-12 * abs(loss.item())
    for got, want in zip(out["grad_norms"], [image.grad.norm().item(), text.grad.norm().item()], strict=True):
        assert abs(got - want) <= 1e-10 * want


def test_installed_cli_runs_without_python(prefix, tmp_path):
    cli = prefix / "bin" / "modgap"
    usage = subprocess.run([str(cli)], capture_output=True, text=True, timeout=120,
                           env=_without_loader_path())
    assert "usage: modgap eval" in usage.stdout + usage.stderr, usage.stderr
    image, text = _consumer_embeddings()
    path = tmp_path / "emb.pt"
    torch.save({"image": image.float(), "text": text.float()}, path)
    _run([cli, "eval", path, "ks=1,5", "probe_max_iter=0", "fill_gap_k=0"])
    from_cli = json.loads((tmp_path / "emb.eval.json").read_text())
    from_python = modgap.evaluate({"image": image.float(), "text": text.float()}, ks=(1, 5), probe_max_iter=0,
                                  fill_gap_k=0)
    assert from_cli["pairs"] == from_python["pairs"]


def test_package_binaries_load_the_torch_of_their_own_environment(tmp_path):
    # The package's CLI and libmodgap laid out as in another environment's site-packages (a wheel
    # installed elsewhere): modgap/{bin,lib} beside links to a torch/ (and nvidia/) of that environment.
    # They must load libtorch from there, not from the path where the build found torch.
    package = Path(modgap.__file__).resolve().parent
    if not (package / "bin" / "modgap").is_file():
        pytest.skip(f"modgap is imported from a source tree ({package}), not from an installed package")
    site_packages = Path(torch.__file__).resolve().parents[1]
    site = tmp_path / "site-packages"
    shutil.copytree(package / "bin", site / "modgap" / "bin")
    shutil.copytree(package / "lib", site / "modgap" / "lib")
    (site / "torch").symlink_to(site_packages / "torch", target_is_directory=True)
    if (site_packages / "nvidia").is_dir():
        (site / "nvidia").symlink_to(site_packages / "nvidia", target_is_directory=True)
    run = subprocess.run([str(site / "modgap" / "bin" / "modgap")], capture_output=True, text=True, timeout=120,
                         env={**_without_loader_path(), "LD_DEBUG": "libs"})
    assert "usage: modgap eval" in run.stdout + run.stderr, run.stderr[-3000:]
    loaded = [line.split("calling init:")[1].strip() for line in run.stderr.splitlines() if "calling init:" in line]
    for name in ("libc10.so", "libtorch_cpu.so", "libmodgap.so.0"):
        paths = [path for path in loaded if Path(path).name == name]
        assert paths and all(path.startswith(str(site)) for path in paths), (name, paths)


def test_setup_refuses_a_build_directory_of_another_torch(tmp_path):
    # pip install --no-build-isolation . in a second environment must not rebuild build/cmake, which was
    # configured for the first environment's torch: the library would not load there (undefined symbols).
    other = tmp_path / "build-of-another-env"
    other.mkdir()
    (other / "CMakeCache.txt").write_text("Torch_DIR:PATH=/elsewhere/site-packages/torch/share/cmake/Torch\n")
    run = subprocess.run([sys.executable, "setup.py", "-q", "build_ext", "--build-lib", str(tmp_path / "lib"),
                          "--build-temp", str(tmp_path / "temp")], cwd=ROOT, capture_output=True, text=True,
                         timeout=300, env={**os.environ, "MODGAP_BUILD_DIR": str(other)})
    assert run.returncode != 0
    assert (f"{other} was configured for the torch at /elsewhere/site-packages/torch/share/cmake/Torch, but this "
            f"environment's torch is at {Path(torch.utils.cmake_prefix_path).resolve() / 'Torch'}") in run.stderr
    assert not (tmp_path / "lib").exists() or not any((tmp_path / "lib").rglob("libmodgap.so"))
