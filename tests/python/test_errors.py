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
