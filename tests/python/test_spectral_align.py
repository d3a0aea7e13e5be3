"""spectral_align against an independent NumPy reference of the method as the paper states it: the
eigenvectors of the random-walk Laplacian L_rw = I - D^-1 A of the bipartite graph, taken through the
symmetric L_sym = D^-1/2 L_rw D^1/2 with numpy.linalg.eigh (no SVD), the trivial one skipped."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import modgap


def graph_weights(x, y, nonnegative, graph_topk):
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    yn = y / np.linalg.norm(y, axis=1, keepdims=True)
    w = xn @ yn.T
    if nonnegative == "clamp":
        w = np.maximum(w, 0.0)
    elif nonnegative == "shift" and w.min() < 0:
        w = w - w.min()
    if graph_topk:
        keep = np.zeros_like(w, dtype=bool)
        rows = np.argsort(-w, axis=1)[:, :graph_topk]
        keep[np.arange(w.shape[0])[:, None], rows] = True
        cols = np.argsort(-w, axis=0)[:graph_topk, :]
        keep[cols, np.arange(w.shape[1])[None, :]] = True
        w = np.where(keep, w, 0.0)
    return w


def reference(x, y, k, nonnegative="clamp", graph_topk=0):
    w = graph_weights(x.numpy(), y.numpy(), nonnegative, graph_topk)
    n, m = w.shape
    a = np.zeros((n + m, n + m))
    a[:n, n:] = w
    a[n:, :n] = w.T
    degree = np.maximum(a.sum(1), 1e-12)
    l_sym = np.eye(n + m) - a / np.sqrt(degree)[:, None] / np.sqrt(degree)[None, :]
    values, vectors = np.linalg.eigh(l_sym)  # ascending
    f = vectors[:, 1:k + 1] / np.sqrt(degree)[:, None]  # eigenvectors of L_rw, trivial one skipped
    f[a.sum(1) <= 0] = 0.0  # an isolated item (no positive weight) has no position: a zero row
    f = f / np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-8)
    return f[:n], f[n:], values


def assert_same_embedding(ours_x, ours_y, ref_x, ref_y, atol):
    """Equal up to an orthogonal map of the k components (sign flips, rotations inside an eigenspace of
    nearly equal eigenvalues), which leaves the Gram matrix of the normalised rows unchanged."""
    ours = np.concatenate([ours_x, ours_y])
    ref = np.concatenate([ref_x, ref_y])
    np.testing.assert_allclose(ours @ ours.T, ref @ ref.T, atol=atol)


def _pair(n, m, d, offset, seed, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g, dtype=torch.float64)
    y = torch.randn(m, d, generator=g, dtype=torch.float64) + offset
    return x.to(dtype), y.to(dtype)


@pytest.mark.parametrize("n,m,k,nonnegative,graph_topk", [
    (60, 50, 5, "clamp", 0),
    (40, 70, 8, "shift", 0),
    (80, 80, 6, "none", 0),
    (90, 60, 4, "clamp", 10),
])
def test_matches_laplacian_eigenvectors(device, n, m, k, nonnegative, graph_topk):
    x, y = _pair(n, m, 12, 0.8, seed=n + m + k)
    if nonnegative == "none":  # graph weights must be >= 0: both modalities around one direction
        x, y = x + 3.0, y + 2.2
    ours_x, ours_y = modgap.spectral_align(x.to(device), y.to(device), k, nonnegative, graph_topk)
    ref_x, ref_y, values = reference(x, y, k, nonnegative, graph_topk)
    # one trivial eigenvector (a connected graph) and a spectral gap after the k-th: both spaces are unique
    assert values[1] - values[0] > 1e-6 and values[k + 1] - values[k] > 1e-6
    assert_same_embedding(ours_x.cpu().numpy(), ours_y.cpu().numpy(), ref_x, ref_y, atol=1e-8)


def test_closes_the_gap_in_fill_the_gap_measures():
    x, y = _pair(300, 300, 16, 1.5, seed=1)
    before = modgap.fill_gap_stats(x, y)
    after = modgap.fill_gap_stats(*modgap.spectral_align(x, y, k=10))
    assert before["itr"] > 5 and before["tir"] > 5
    assert 0.3 < after["itr"] < 3 and 0.3 < after["tir"] < 3
    assert after["tmr"] < before["tmr"] / 5 and after["imr"] < before["imr"] / 5


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_output_dtype_and_float32_accuracy(dtype):
    x, y = _pair(50, 40, 8, 0.5, seed=2, dtype=dtype)
    ours_x, ours_y = modgap.spectral_align(x, y, k=3)
    assert ours_x.dtype == dtype and ours_y.dtype == dtype and ours_x.shape == (50, 3) and ours_y.shape == (40, 3)
    ref_x, ref_y, _ = reference(x.double(), y.double(), 3)
    tolerance = 1e-4 if dtype == torch.float32 else 2e-2
    assert_same_embedding(ours_x.double().numpy(), ours_y.double().numpy(), ref_x, ref_y, atol=tolerance)


def test_isolated_item_gets_a_zero_row():
    x, y = _pair(20, 15, 6, 0.0, seed=7)
    x, y = x.abs(), y.abs()     # every item in the positive orthant ...
    x[4] = -x[4]                # ... but one image, whose cosines are then all < 0
    out_x, out_y = modgap.spectral_align(x, y, 3)  # "clamp": that image has no edge
    assert torch.equal(out_x[4], torch.zeros(3, dtype=out_x.dtype))
    others = torch.cat([out_x[torch.arange(20) != 4], out_y])
    torch.testing.assert_close(others.norm(dim=1), torch.ones(34, dtype=others.dtype))


def test_opcheck():
    x, y = _pair(12, 10, 5, 0.5, seed=3)
    for args in ((x, y, 3, "clamp", 0), (x.float(), y.float(), 2, "shift", 4)):
        torch.library.opcheck(torch.ops.modgap.spectral_align.default, args,
                              test_utils=("test_schema", "test_faketensor", "test_aot_dispatch_dynamic"))


@pytest.mark.parametrize("args,message", [
    ((10,), r"`k` \(output dimension\) must be in \[1, min\(N, M\) - 1\] = \[1, 7\]"),
    ((0,), r"`k` \(output dimension\)"),
    ((3, "abs"), r"`nonnegative` must be \"clamp\", \"shift\" or \"none\""),
    ((3, "clamp", -1), r"`graph_topk` must be >= 0"),
])
def test_bad_arguments_raise_clear_errors(args, message):
    x, y = _pair(10, 8, 4, 0.0, seed=4)
    with pytest.raises(ValueError, match=message):
        modgap.spectral_align(x, y, *args)


def test_negative_similarities_need_a_nonnegative_rule():
    x, y = _pair(10, 8, 4, 0.0, seed=6)
    with pytest.raises(ValueError, match=r"nonnegative=\"none\" needs non-negative cosine similarities"):
        modgap.spectral_align(x, y, 2, "none")


def test_nan_input_is_named():
    x, y = _pair(10, 8, 4, 0.0, seed=5)
    x[3, 1] = float("nan")
    with pytest.raises(ValueError, match=r"`x`.*NaN"):
        modgap.spectral_align(x, y, 2)
