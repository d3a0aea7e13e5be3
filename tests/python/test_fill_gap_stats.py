"""fill_gap_stats against an independent NumPy/SciPy reference written from measures.md §1.2 (the full
(N + M) x (N + M) similarity matrix, argsort, scipy.linalg.sqrtm), plus opcheck and the input errors."""
from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg
import torch

import modgap


def reference(x: torch.Tensor, y: torch.Tensor, k: int) -> dict:
    xn = x.double().numpy()
    yn = y.double().numpy()
    xn = xn / np.maximum(np.linalg.norm(xn, axis=1, keepdims=True), 1e-8)
    yn = yn / np.maximum(np.linalg.norm(yn, axis=1, keepdims=True), 1e-8)
    n, m = len(xn), len(yn)
    z = np.concatenate([xn, yn])
    s = z @ z.T
    np.fill_diagonal(s, -np.inf)
    is_text = np.arange(n + m) >= n
    counts = np.zeros((2, 2), dtype=np.int64)
    for i in range(n + m):
        neighbours = np.argsort(-s[i], kind="stable")[:k]
        for j in neighbours:
            counts[int(is_text[i]), int(is_text[j])] += 1

    def ratio(num, den):
        return math.inf if den == 0 and num > 0 else num / max(den, 1)

    tmr = np.mean([1 + np.sum(s[i, :n] > s[i, n:].max()) for i in range(n)])
    imr = np.mean([1 + np.sum(s[n + i, n:] > s[n + i, :n].max()) for i in range(m)])
    cov_x = np.cov(xn, rowvar=False) + 1e-6 * np.eye(xn.shape[1])
    cov_y = np.cov(yn, rowvar=False) + 1e-6 * np.eye(yn.shape[1])
    covmean = scipy.linalg.sqrtm(cov_x @ cov_y).real
    fid_sq = np.sum((xn.mean(0) - yn.mean(0)) ** 2) + np.trace(cov_x + cov_y - 2 * covmean)
    return {"counts": counts, "itr": ratio(counts[0, 0], counts[0, 1]), "tir": ratio(counts[1, 1], counts[1, 0]),
            "tmr": tmr, "imr": imr, "fid": math.sqrt(max(fid_sq, 0.0))}


def _pair(n, m, d, offset, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g, dtype=torch.float64)
    y = torch.randn(m, d, generator=g, dtype=torch.float64) + offset  # a shared offset: a modality gap
    return x, y


@pytest.mark.parametrize("n,m,d,offset,k", [
    (40, 40, 8, 0.0, 1),      # no gap: ratios near 1
    (60, 35, 16, 1.5, 1),     # a gap: same-modality neighbours dominate
    (50, 70, 12, 0.5, 7),
    (3, 2, 4, 0.2, 4),        # k = N + M - 1: every other item
])
def test_matches_reference(device, n, m, d, offset, k):
    x, y = _pair(n, m, d, offset, seed=n + m)
    ours = modgap.fill_gap_stats(x.to(device), y.to(device), k)
    ref = reference(x, y, k)
    assert ours["neighbour_counts"].cpu().tolist() == ref["counts"].tolist()
    for key in ("itr", "tir", "tmr", "imr"):
        assert ours[key] == pytest.approx(ref[key], rel=1e-12), key
    assert ours["fid"] == pytest.approx(ref["fid"], rel=1e-6)


@pytest.mark.parametrize("n,m", [(2600, 2000), (4300, 350)])
def test_tiles_across_the_cpu_tile(n, m):
    """Row tiles of 1024 queries stop at the image / text boundary and visit each modality's items in
    tiles of 4096: 2600 + 2000 crosses row-tile edges in both modalities, 4300 images cross a column-tile
    edge of the same-modality items (counted above the threshold) and, for text queries, of the other's."""
    x, y = _pair(n, m, 6, 0.3, seed=7)
    ours = modgap.fill_gap_stats(x, y, 3)
    ref = reference(x, y, 3)
    assert ours["neighbour_counts"].tolist() == ref["counts"].tolist()
    assert ours["tmr"] == pytest.approx(ref["tmr"], rel=1e-12)
    assert ours["imr"] == pytest.approx(ref["imr"], rel=1e-12)
    assert ours["fid"] == pytest.approx(ref["fid"], rel=1e-6)


def test_gap_shows_in_every_measure():
    x, y = _pair(200, 200, 32, 0.0, seed=8)
    no_gap = modgap.fill_gap_stats(x, y)
    gap = modgap.fill_gap_stats(x, y + 2.0)
    assert 0.5 < no_gap["itr"] < 2.0 and 0.5 < no_gap["tir"] < 2.0
    assert gap["itr"] > 10 * no_gap["itr"] and gap["tir"] > 10 * no_gap["tir"]
    assert gap["tmr"] > no_gap["tmr"] and gap["imr"] > no_gap["imr"] and gap["fid"] > no_gap["fid"]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_low_precision_inputs(dtype):
    x, y = _pair(120, 90, 16, 1.0, seed=9)
    xl, yl = x.to(dtype), y.to(dtype)
    ours = modgap.fill_gap_stats(xl, yl)
    ref = reference(xl.double(), yl.double(), 1)  # the same rounded inputs, in float64
    assert ours["fid"] == pytest.approx(ref["fid"], rel=1e-4)
    # float32 similarities may reorder near-ties: the counts agree up to a few of the 210 queries
    assert np.abs(ours["neighbour_counts"].numpy() - ref["counts"]).sum() <= 4


def test_opcheck():
    x, y = _pair(12, 9, 5, 0.5, seed=10)
    for args in ((x, y, 1), (x.float(), y.float(), 4)):
        torch.library.opcheck(torch.ops.modgap.fill_gap_stats.default, args,
                              test_utils=("test_schema", "test_faketensor", "test_aot_dispatch_dynamic"))


@pytest.mark.parametrize("bad,message", [
    (lambda x, y: (x, y, 0), r"`k` \(neighbours\) must be in \[1, 17\]"),
    (lambda x, y: (x, y, 18), r"`k` \(neighbours\) must be in \[1, 17\]"),
    (lambda x, y: (x[:1], y, 1), r"`x`.*at least 2 rows"),
    (lambda x, y: (x, y[:, :3], 1), r"columns|D"),
    (lambda x, y: (x, y.long(), 1), r"floating"),
    (lambda x, y: (x, torch.where(torch.arange(8)[:, None] == 2, float("nan"), y), 1), r"`y`.*NaN"),
])
def test_bad_inputs_raise_clear_errors(bad, message):
    x, y = _pair(10, 8, 4, 0.0, seed=11)
    with pytest.raises((ValueError, TypeError), match=message):
        modgap.fill_gap_stats(*bad(x, y))
