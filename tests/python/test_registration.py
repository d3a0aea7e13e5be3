"""Dispatcher registration: opcheck on every op, torch.compile(fullgraph, dynamic) and torch.export with
the C++ Meta and Autograd kernels only (no Python registration exists), and library loading."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
import torch

import modgap
from conftest import assert_compiled_matches_eager, make_embeddings

ops = torch.ops.modgap


def _opcheck_samples(device):
    z = make_embeddings(3, 12, 5, device=device, seed=1, requires_grad=True)
    z32 = make_embeddings(2, 9, 4, dtype=torch.float32, device=device, seed=2, requires_grad=True)
    zh = make_embeddings(2, 9, 4, dtype=torch.bfloat16, device=device, seed=2)
    grad = torch.tensor(0.7, dtype=torch.float64, device=device)
    centroid_grad = ops._centroid_uniformity_forward([x.detach() for x in z], 2.0, True, True)[1]
    return [
        (ops.atp_loss.default, (z, 1)),
        (ops.atp_loss.default, (z32, 0)),
        (ops.atp_loss.default, (zh, 0)),
        (ops._atp_loss_backward.default, (grad, [x.detach() for x in z], 2)),
        (ops.centroid_uniformity.default, (z, 2.0, True)),
        (ops.centroid_uniformity.default, (z32, 0.5, False)),
        (ops.centroid_uniformity.default, (zh, 2.0, True)),
        (ops._centroid_uniformity_forward.default, ([x.detach() for x in z], 2.0, True, True)),
        (ops._centroid_uniformity_forward.default, ([x.detach() for x in z32], 2.0, False, False)),
        (ops._centroid_uniformity_backward.default, (grad, centroid_grad, 3, torch.float64)),
        (ops._centroid_uniformity_backward.default, (grad.float(), centroid_grad.float(), 2, torch.bfloat16)),
    ]


def test_opcheck_every_op(device):
    for op, args in _opcheck_samples(device):
        torch.library.opcheck(op, args)


def test_every_op_has_cpu_meta_and_autograd_kernels():
    for name in ("atp_loss", "_atp_loss_backward", "centroid_uniformity", "_centroid_uniformity_forward",
                 "_centroid_uniformity_backward"):
        qualified = f"modgap::{name}"
        for key in ("CPU", "Meta", "Autograd"):
            assert torch._C._dispatch_has_kernel_for_dispatch_key(qualified, key), (qualified, key)
        if modgap.cuda_version() > 0:
            assert torch._C._dispatch_has_kernel_for_dispatch_key(qualified, "CUDA"), qualified


def test_torch_compile_fullgraph_dynamic_matches_eager(device):
    torch._dynamo.reset()
    gap = modgap.nn.GapLoss(lambda1=0.5, lambda2=2.0)

    def step(a, b):
        return gap([a, b]) + (a * b).sum() * 1e-3

    assert_compiled_matches_eager(step, device)  # several sizes through one dynamic graph


def test_torch_export_keeps_the_ops():
    class Model(torch.nn.Module):
        def forward(self, a, b):
            return ops.atp_loss([a, b], 0) + ops.centroid_uniformity([a, b], 2.0, True)

    a, b = make_embeddings(2, 10, 4, dtype=torch.float32, seed=3)
    n = torch.export.Dim("n", min=2)
    exported = torch.export.export(Model(), (a, b), dynamic_shapes=({0: n}, {0: n}))
    graph = str(exported.graph)
    assert "modgap.atp_loss" in graph and "modgap.centroid_uniformity" in graph
    a2, b2 = make_embeddings(2, 17, 4, dtype=torch.float32, seed=4)
    torch.testing.assert_close(exported.module()(a2, b2), Model()(a2, b2))


def test_meta_kernels_keep_symbolic_shapes():
    a = torch.empty(7, 3, device="meta")
    grads = ops._centroid_uniformity_backward(torch.empty((), device="meta"), a, 2, torch.float16)
    assert [g.shape for g in grads] == [a.shape, a.shape] and grads[0].device.type == "meta"
    assert grads[0].dtype == torch.float16
    loss, centroid_grad = ops._centroid_uniformity_forward([a.half(), a.half()], 2.0, True, True)
    assert loss.dtype == torch.float16 and centroid_grad.dtype == torch.float32 and centroid_grad.shape == a.shape
    assert ops._centroid_uniformity_forward([a, a], 2.0, True, False)[1].shape == (0,)


def test_library_path_and_direct_loading():
    path = modgap.library_path()
    assert os.path.isfile(path)
    # A fresh interpreter can load the same file itself, without the package.
    code = ("import torch; torch.ops.load_library(%r); "
            "print(torch.ops.modgap.atp_loss([torch.ones(2, 2), torch.zeros(2, 2)]).item())" % path)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert float(out) == 2.0


def test_the_shipped_library_names_the_torch_it_was_built_against():
    # libmodgap.build.json beside the library (CMake writes it, the package copies it): the torch of this
    # process, which is the one the test build compiled against
    from modgap._library import _built_against
    path = modgap.library_path()
    build_info = os.path.join(os.path.dirname(path), "libmodgap.build.json")
    if os.environ.get("MODGAP_LIBRARY") and not os.path.isfile(build_info):
        pytest.skip(f"MODGAP_LIBRARY={path} is a copy without its build directory")
    assert _built_against(path) == torch.__version__.split("+")[0]


def _import_with_library(path):
    env = {**os.environ, "MODGAP_LIBRARY": str(path)}
    return subprocess.run([sys.executable, "-c", "import modgap"], capture_output=True, text=True, env=env, timeout=120)


@pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler")
def test_a_library_that_cannot_load_says_why(tmp_path):
    # torch.ops.load_library's own error is "Could not load this library: PATH"; the dynamic loader's reason
    # (and what to do) must reach the message. Small stand-in libraries fail the way real mismatches do.
    def compile_library(name, code, *link):
        (tmp_path / f"{name}.c").write_text(code)
        subprocess.run(["cc", "-shared", "-fPIC", "-o", str(tmp_path / name), str(tmp_path / f"{name}.c"), *link],
                       check=True, cwd=tmp_path)
        return tmp_path / name

    # built against another torch: a c10 symbol this torch does not have
    mismatched = compile_library("libmodgap.so", "extern void _ZN3c1013modgap_absentEv(void);\n"
                                                 "void f(void) { _ZN3c1013modgap_absentEv(); }\n")
    (tmp_path / "libmodgap.build.json").write_text('{"torch": "2.99.0"}')
    run = _import_with_library(mismatched)
    assert run.returncode != 0
    message = run.stderr.strip().splitlines()[-1]
    assert "undefined symbol: _ZN3c1013modgap_absentEv" in message and "built against torch 2.99.0" in message
    assert f"This process runs torch {torch.__version__}" in message and "pip install --no-build-isolation" in message

    # a dependency that is not installed
    dependency = compile_library("libmodgap-test-dependency.so.1", "int dependency_stand_in(void) { return 1; }\n",
                                 "-Wl,-soname,libmodgap-test-dependency.so.1")
    needs_it = compile_library("needs_dependency.so", "extern int dependency_stand_in(void);\n"
                                                      "int g(void) { return dependency_stand_in(); }\n",
                               f"-L{tmp_path}", "-l:libmodgap-test-dependency.so.1")
    dependency.unlink()
    message = _import_with_library(needs_it).stderr.strip().splitlines()[-1]
    assert "A library it needs is not found: libmodgap-test-dependency.so.1" in message
    # ... and when that is yaml-cpp's runtime (on a machine without it), how to install it
    from modgap._library import _load_error
    cause = OSError("libyaml-cpp.so.0.7: cannot open shared object file: No such file or directory")
    error = OSError("Could not load this library: /x/libmodgap.so")
    error.__cause__ = cause
    assert "not found: libyaml-cpp.so.0.7 (yaml-cpp's runtime; Debian/Ubuntu: `apt-get install libyaml-cpp-dev`)" in \
        str(_load_error("/x/libmodgap.so", error))

    # not a shared library at all
    (tmp_path / "broken.so").write_text("not ELF")
    message = _import_with_library(tmp_path / "broken.so").stderr.strip().splitlines()[-1]
    assert message.startswith(f"OSError: modgap: cannot load {tmp_path / 'broken.so'}") and "not a loadable" in message


def test_internal_forward_refuses_gradients():
    z = make_embeddings(2, 5, 3, seed=5, requires_grad=True)
    with pytest.raises(RuntimeError, match="is internal and not differentiable"):
        ops._centroid_uniformity_forward(z, 2.0, True, True)
