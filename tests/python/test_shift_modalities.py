"""shift_modalities against Liang et al.'s formula written out in NumPy, and its effect on the gap."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import modgap


def reference(x, y, delta, direction=None):
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    yn = y / np.linalg.norm(y, axis=1, keepdims=True)
    u = xn.mean(0) - yn.mean(0) if direction is None else direction
    u = u / np.linalg.norm(u)
    x_new = xn - delta / 2 * u
    y_new = yn + delta / 2 * u
    return (x_new / np.linalg.norm(x_new, axis=1, keepdims=True),
            y_new / np.linalg.norm(y_new, axis=1, keepdims=True))


def _pair(n, m, d, offset, seed):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(n, d, generator=g, dtype=torch.float64) + offset,
            torch.randn(m, d, generator=g, dtype=torch.float64) - offset)


@pytest.mark.parametrize("delta", [-0.5, 0.0, 0.3, 1.7])
def test_matches_the_formula(device, delta):
    x, y = _pair(40, 30, 8, 0.4, seed=1)
    ours_x, ours_y = modgap.shift_modalities(x.to(device), y.to(device), delta)
    ref_x, ref_y = reference(x.numpy(), y.numpy(), delta)
    np.testing.assert_allclose(ours_x.cpu().numpy(), ref_x, atol=1e-12)
    np.testing.assert_allclose(ours_y.cpu().numpy(), ref_y, atol=1e-12)


def test_transferred_direction():
    x, y = _pair(20, 20, 6, 0.3, seed=2)
    direction = torch.randn(6, dtype=torch.float64)
    ours_x, ours_y = modgap.shift_modalities(x, y, 0.8, direction)
    ref_x, ref_y = reference(x.numpy(), y.numpy(), 0.8, direction.numpy())
    np.testing.assert_allclose(ours_x.numpy(), ref_x, atol=1e-12)
    np.testing.assert_allclose(ours_y.numpy(), ref_y, atol=1e-12)


def test_positive_delta_closes_the_gap_until_it_overshoots():
    x, y = _pair(200, 200, 16, 0.5, seed=3)
    gap0 = modgap.gap_stats([x, y])["gap"][0, 1].item()
    gaps = [modgap.gap_stats(list(modgap.shift_modalities(x, y, d)))["gap"][0, 1].item()
            for d in np.linspace(0, 2 * gap0, 21)]
    best = int(np.argmin(gaps))
    assert gaps[0] == pytest.approx(gap0, rel=1e-12)
    assert 0 < best < 20 and gaps[best] < 0.1 * gap0  # shrinks to near 0, then grows again
    assert all(a > b for a, b in zip(gaps[:best], gaps[1:best + 1]))


def test_dtype_and_opcheck():
    x, y = _pair(12, 9, 5, 0.5, seed=4)
    out_x, out_y = modgap.shift_modalities(x.float(), y.float(), 0.2)
    assert out_x.dtype == torch.float32 and out_y.shape == (9, 5)
    for args in ((x, y, 0.3, None), (x.float(), y.float(), -0.1, torch.ones(5))):
        torch.library.opcheck(torch.ops.modgap.shift_modalities.default, args,
                              test_utils=("test_schema", "test_faketensor", "test_aot_dispatch_dynamic"))


@pytest.mark.parametrize("make,message", [
    (lambda x, y: (x, y, float("inf"), None), r"`delta` must be finite"),
    (lambda x, y: (x, y, 0.1, torch.ones(4, dtype=torch.float64)), r"`direction` must be a 1-D tensor of D = 5"),
    (lambda x, y: (x, y, 0.1, torch.zeros(5, dtype=torch.float64)), r"`direction` is all zeros"),
    (lambda x, y: (x, x.clone(), 0.1, None), r"the two modalities have the same centroid"),
    (lambda x, y: (x, y[:, :3], 0.1, None), r"columns|D"),
])
def test_bad_inputs_raise_clear_errors(make, message):
    x, y = _pair(12, 9, 5, 0.5, seed=5)
    with pytest.raises(ValueError, match=message):
        modgap.shift_modalities(*make(x, y))
