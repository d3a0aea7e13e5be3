"""A scripted module using the ops is saved, then loaded by a pure C++ program (torch::jit::load, linked
against libmodgap, no Python) that runs forward and backward through the C++ autograd kernels. Its
loss and gradient norms must equal Python's."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import List

import pytest
import torch

import modgap
from conftest import make_embeddings

RUNNER = Path(os.environ.get("MODGAP_JIT_RUNNER", Path(__file__).resolve().parents[2] / "build" / "cmake" / "modgap_jit_runner"))


class ScriptedGapModel(torch.nn.Module):
    """A small two-tower head + the gap loss; holds its example inputs as input_0, input_1, ..."""

    def __init__(self, inputs: List[torch.Tensor]) -> None:
        super().__init__()
        self.project = torch.nn.Linear(inputs[0].shape[1], 8, bias=False).double()
        self.gap = modgap.nn.GapLoss(lambda1=0.8, lambda2=1.3, t=2.0, anchor=0)
        for i, x in enumerate(inputs):
            self.register_buffer(f"input_{i}", x)

    def forward(self, embeddings: List[torch.Tensor]) -> torch.Tensor:
        projected = [torch.nn.functional.normalize(self.project(z), dim=-1) for z in embeddings]
        return self.gap(projected)


@pytest.mark.skipif(not RUNNER.is_file(), reason=f"C++ runner not built at {RUNNER} (build with MODGAP_BUILD_TESTS=ON)")
@pytest.mark.parametrize("num_modalities", [2, 3])
def test_cpp_program_runs_forward_and_backward(tmp_path, num_modalities):
    torch.manual_seed(0)
    inputs = make_embeddings(num_modalities, 300, 12, seed=21)
    model = ScriptedGapModel(inputs)
    scripted = torch.jit.script(model)
    path = tmp_path / "gap_model.pt"
    scripted.save(str(path))

    leaves = [x.clone().requires_grad_(True) for x in inputs]
    loss = model(leaves)
    loss.backward()
    expected_norms = [x.grad.norm().item() for x in leaves]

    env = dict(os.environ)
    result = subprocess.run([str(RUNNER), str(path)], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert abs(out["loss"] - loss.item()) <= 1e-12 * abs(loss.item())
    for got, want in zip(out["grad_norms"], expected_norms, strict=True):
        assert abs(got - want) <= 1e-10 * want
