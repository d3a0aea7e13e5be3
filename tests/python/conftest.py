from __future__ import annotations

import os
import tempfile

# A fresh Inductor cache per test session: cached compiled graphs embed op calls, and a cache left by an
# older build of the library (another op schema) must not be replayed against this one.
os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="modgap-inductor-")

import pytest
import torch

import modgap  # noqa: F401  (loads the operator library)

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")


def make_embeddings(num_modalities, n, d, dtype=torch.float64, device="cpu", seed=0, requires_grad=False,
                    normalize=False):
    generator = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(num_modalities):
        z = torch.randn(n, d, generator=generator, dtype=torch.float64)
        if normalize:
            z = torch.nn.functional.normalize(z, dim=-1)
        out.append(z.to(device=device, dtype=dtype).requires_grad_(requires_grad))
    return out


def assert_compiled_matches_eager(step, device, sizes=(16, 24, 40), dim=8):
    """torch.compile(step, fullgraph=True, dynamic=True) on two [n, dim] float32 inputs equals eager,
    forward and backward, for several n through one dynamic graph."""
    compiled = torch.compile(step, fullgraph=True, dynamic=True)
    for n in sizes:
        eager_in = make_embeddings(2, n, dim, dtype=torch.float32, device=device, seed=n, requires_grad=True)
        comp_in = [x.detach().clone().requires_grad_(True) for x in eager_in]
        eager, comp = step(*eager_in), compiled(*comp_in)
        torch.testing.assert_close(comp, eager, rtol=1e-6, atol=1e-6)
        eager.backward()
        comp.backward()
        for a, b in zip(eager_in, comp_in):
            torch.testing.assert_close(b.grad, a.grad, rtol=1e-6, atol=1e-7)


@pytest.fixture(params=DEVICES)
def device(request):
    return request.param


def modgap_cli() -> str:
    """The `modgap` command: next to the library under test, else the one installed in the package."""
    from pathlib import Path
    built = Path(os.environ.get("MODGAP_LIBRARY", modgap.library_path())).parent / "modgap"
    if built.is_file():
        return str(built)
    installed = Path(modgap.__file__).parent / "bin" / "modgap"
    if installed.is_file():
        return str(installed)
    pytest.fail("the `modgap` CLI binary was not found next to libmodgap or in the package")


def run_printed_training_command(command: str, run_dir, env: dict, cwd) -> dict:
    """Run one `python -m modgap.patches.open_clip ...` line a prepare script printed, for one epoch on the
    CPU with validation, and return the last line of its results.jsonl (``run_dir``: logs/<name>)."""
    import json
    import shlex
    import subprocess
    import sys
    argv = shlex.split(command)
    argv[0] = sys.executable
    run = subprocess.run(argv + ["--device", "cpu", "--val-frequency", "1", "--save-frequency", "1"],
                         capture_output=True, text=True, env=env, cwd=cwd)
    assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    return json.loads((run_dir / "checkpoints" / "results.jsonl").read_text().splitlines()[-1])
