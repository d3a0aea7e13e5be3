"""Bad input gets a clear error naming the argument and the expectation, on every backend and in the
Meta kernels (so torch.compile reports it at trace time), never a crash or a NaN loss."""
from __future__ import annotations

import pytest
import torch

import modgap

ops = torch.ops.modgap


def _ok(n=6, d=4, dtype=torch.float32, device="cpu"):
    return torch.randn(n, d, dtype=dtype, device=device)


BAD_INPUTS = [
    # (description, embeddings, kwargs, exception, message regex)
    ("one modality", lambda dev: [_ok(device=dev)], {}, ValueError, r"expected at least 2 modalities in `embeddings`, got 1"),
    ("1-D tensor", lambda dev: [_ok(device=dev), torch.randn(6, device=dev)], {}, ValueError,
     r"embeddings\[1\] must be a 2-D tensor \[N, D\], got shape \[6\]"),
    ("shape mismatch", lambda dev: [_ok(device=dev), _ok(d=5, device=dev)], {}, ValueError,
     r"embeddings\[1\] has shape \[6, 5\] but embeddings\[0\] has shape \[6, 4\]"),
    ("batch mismatch", lambda dev: [_ok(device=dev), _ok(device=dev), _ok(n=7, device=dev)], {}, ValueError,
     r"embeddings\[2\] has shape \[7, 4\]"),
    ("integer dtype", lambda dev: [_ok(device=dev).long(), _ok(device=dev).long()], {}, TypeError,
     r"embeddings\[0\] must have a floating dtype .* got Long"),
    ("dtype mismatch", lambda dev: [_ok(device=dev), _ok(device=dev).double()], {}, TypeError,
     r"embeddings\[1\] has dtype Double but embeddings\[0\] has dtype Float"),
    ("empty D", lambda dev: [_ok(d=0, device=dev), _ok(d=0, device=dev)], {}, ValueError, r"expected at least 1 column \(D\) in every embedding, got D = 0"),
]


@pytest.mark.parametrize("case", BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS])
@pytest.mark.parametrize("op_name", ["atp_loss", "centroid_uniformity"])
@pytest.mark.parametrize("dev", ["cpu", "meta"])
def test_bad_embeddings(case, op_name, dev):
    _, make, kwargs, exception, message = case
    with pytest.raises(exception, match=rf"modgap::{op_name}: {message}"):
        getattr(ops, op_name)(make(dev), **kwargs)


def test_single_row_is_refused_for_uniformity_only():
    z = [_ok(n=1), _ok(n=1)]
    assert torch.isfinite(ops.atp_loss(z))
    with pytest.raises(ValueError, match=r"modgap::centroid_uniformity: expected at least 2 rows \(N\) .* got N = 1"):
        ops.centroid_uniformity(z)


@pytest.mark.parametrize("anchor", [-1, 2, 5])
def test_anchor_out_of_range(anchor):
    with pytest.raises(ValueError, match=rf"`anchor` must index one of the 2 modalities .* got {anchor}"):
        ops.atp_loss([_ok(), _ok()], anchor)


@pytest.mark.parametrize("t", [0.0, -1.0, float("inf"), float("nan")])
def test_bad_temperature(t):
    with pytest.raises(ValueError, match=r"`t` \(the uniformity temperature\) must be a finite number > 0"):
        ops.centroid_uniformity([_ok(), _ok()], t)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
@pytest.mark.parametrize("op_name", ["atp_loss", "centroid_uniformity"])
def test_nan_or_inf_values(bad, op_name):
    z = [_ok(), _ok()]
    z[1][2, 3] = bad
    with pytest.raises(ValueError, match=rf"modgap::{op_name}: embeddings\[1\] contains NaN or Inf values"):
        getattr(ops, op_name)(z)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_device_mismatch():
    with pytest.raises(ValueError, match=r"embeddings\[1\] is on cuda:0 but embeddings\[0\] is on cpu"):
        ops.centroid_uniformity([_ok(), _ok(device="cuda")])


def test_empty_list():
    # With no tensor at all the dispatcher cannot pick a backend and says so itself; the Python and C++
    # front-ends check first and name the argument.
    with pytest.raises(NotImplementedError, match="empty list of Tensors"):
        ops.atp_loss([])
    for fn in (modgap.atp_loss, modgap.centroid_uniformity):
        with pytest.raises(ValueError, match="expected at least 2 modalities in `embeddings`, got 0"):
            fn([])


def test_python_wrappers_raise_the_same_errors():
    with pytest.raises(ValueError, match="expected at least 2 modalities"):
        modgap.centroid_uniformity([_ok()])


@pytest.mark.parametrize("op_name", ["atp_loss", "centroid_uniformity", "cross_uniformity"])
def test_float16_loss_out_of_range_is_named_as_such(device, op_name):
    # Finite float16 embeddings whose loss (summed in float32 / float64) lies beyond float16's 65504: the
    # error says the result does not fit in Half (it used to blame the accumulation dtype), and the
    # remedy it names, torch.autocast, gives the float32 loss.
    g = torch.Generator().manual_seed(0)
    x, y = (torch.randn(30, 8, generator=g) * 100).to(device), (torch.randn(30, 8, generator=g) * 100).to(device)
    call = {"atp_loss": lambda a, b: ops.atp_loss([a, b], 0),
            "centroid_uniformity": lambda a, b: ops.centroid_uniformity([a, b], 20.0, False),
            "cross_uniformity": lambda a, b: ops.cross_uniformity(a, b, 20.0, True)}[op_name]
    expected = call(x.half().double(), y.half().double())
    assert abs(expected.item()) > 65504
    with pytest.raises(ValueError, match=rf"modgap::{op_name}: the loss is -?[0-9.e+]+ \(computed in (Float|Double)\), "
                                         r"which does not fit in Half, the dtype of the embeddings .*65504.*torch.autocast"):
        call(x.half(), y.half())
    with torch.autocast(device, dtype=torch.float16):
        value = call(x.half(), y.half())
    assert value.dtype == torch.float32
    torch.testing.assert_close(value.double(), expected, rtol=1e-5, atol=0)


@pytest.mark.parametrize("op_name", ["centroid_uniformity", "cross_uniformity"])
def test_accumulation_overflow_is_named_as_such(op_name):
    # t * squared distance beyond float32: the accumulation dtype overflows, and the message says that.
    x, y = torch.randn(30, 8) * 10, torch.randn(30, 8) * 10
    call = {"centroid_uniformity": lambda: ops.centroid_uniformity([x, y], 1e37, False),
            "cross_uniformity": lambda: ops.cross_uniformity(x, y, 1e37, True)}[op_name]
    inputs = "every embedding is" if op_name == "centroid_uniformity" else "x and y are"
    with pytest.raises(ValueError, match=rf"modgap::{op_name}: the loss is not finite although {inputs} finite; the "
                                         r"squared distances \(times t for a uniformity term\) overflow Float, the "
                                         r"accumulation dtype"):
        call()
