"""cross_uniformity (Fahim et al.'s L_xunif, the NotAGap baseline) against independent references: the
N x N float64 formula their code computes (torch.cdist over the off-diagonal image-text pairs),
gradcheck, opcheck, torch.compile, and the error messages."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import modgap
from conftest import assert_compiled_matches_eager, make_embeddings

ops = torch.ops.modgap


def cross_uniformity_formula(x, y, t=2.0, exclude_diagonal=True):
    """log( 1/P sum exp(-t ||x_i - y_j||^2) ) from the full float64 distance matrix (Fahim et al.'s
    L_xunif with exclude_diagonal; every pair otherwise)."""
    sq = torch.cdist(x.double(), y.double()).pow(2)
    logits = -t * sq
    if exclude_diagonal:
        logits = logits[~torch.eye(sq.shape[0], dtype=torch.bool, device=sq.device)]
    return torch.logsumexp(logits.flatten(), 0) - math.log(logits.numel())


def assert_matches_formula(x, y, t, exclude_diagonal, *, rtol=1e-10, grad_rtol=1e-9, grad_atol=1e-13):
    ours = modgap.cross_uniformity(x, y, t, exclude_diagonal)
    ref = cross_uniformity_formula(x, y, t, exclude_diagonal)
    torch.testing.assert_close(ours, ref, rtol=rtol, atol=1e-12)
    for a, b in zip(torch.autograd.grad(ours, [x, y]), torch.autograd.grad(ref, [x, y])):
        torch.testing.assert_close(a, b, rtol=grad_rtol, atol=grad_atol)


# 1300 rows cross the CPU tile's rows (512); the column tile (2048) is crossed below.
@pytest.mark.parametrize("n", [2, 3, 257, 1300])
@pytest.mark.parametrize("t", [0.5, 2.0, 7.0])
def test_matches_fahim_et_al_off_diagonal_formula(device, n, t):
    x, y = make_embeddings(2, n, 24, device=device, seed=n, normalize=True, requires_grad=True)
    assert_matches_formula(x, y, t, True)


@pytest.mark.parametrize("rows_x, rows_y", [(1, 1), (1, 5), (7, 3), (600, 2300)])
def test_every_pair_of_two_unpaired_sets(device, rows_x, rows_y):
    """exclude_diagonal=False: all N_x * N_y pairs, different row counts allowed; 600 x 2300 crosses the CPU
    tile in both directions."""
    generator = torch.Generator().manual_seed(rows_x + rows_y)
    x = torch.randn(rows_x, 16, generator=generator, dtype=torch.float64).to(device).requires_grad_(True)
    y = torch.randn(rows_y, 16, generator=generator, dtype=torch.float64).to(device).requires_grad_(True)
    assert_matches_formula(x, y, 0.3, False)


def test_diagonal_crosses_the_column_tile():
    """N = 2600 > 2048 columns: the left-out true pairs fall in the second column block for the last rows."""
    x, y = make_embeddings(2, 2600, 8, seed=11, normalize=True, requires_grad=True)
    assert_matches_formula(x, y, 2.0, True)


def test_excluding_the_diagonal_changes_the_value():
    """With true pairs close together, leaving them out lowers the value (they are the largest terms)."""
    x = F.normalize(torch.randn(50, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(2)), dim=-1)
    y = F.normalize(x + 0.01 * torch.randn(50, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(3)),
                    dim=-1)
    with_diagonal = modgap.cross_uniformity(x, y, 2.0, exclude_diagonal=False)
    without = modgap.cross_uniformity(x, y, 2.0, exclude_diagonal=True)
    assert without < with_diagonal
    torch.testing.assert_close(with_diagonal, cross_uniformity_formula(x, y, 2.0, False), rtol=1e-12, atol=0)


def test_gradcheck(device):
    x, y = make_embeddings(2, 9, 5, device=device, seed=5, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: modgap.cross_uniformity(a, b, 0.7, True), (x, y))
    a = torch.randn(4, 3, dtype=torch.float64, device=device, requires_grad=True)
    b = torch.randn(6, 3, dtype=torch.float64, device=device, requires_grad=True)
    assert torch.autograd.gradcheck(lambda p, q: modgap.cross_uniformity(p, q, 1.5, False), (a, b))


def test_gradient_flows_only_to_inputs_that_require_it():
    x, y = make_embeddings(2, 12, 4, seed=6)
    x.requires_grad_(True)
    loss = modgap.cross_uniformity(x, y)
    (gx,) = torch.autograd.grad(loss, [x])
    expected = torch.autograd.grad(cross_uniformity_formula(x, y), [x])[0]
    torch.testing.assert_close(gx, expected, rtol=1e-10, atol=1e-14)
    assert not modgap.cross_uniformity(x.detach(), y).requires_grad


@pytest.mark.parametrize("dtype, rtol", [(torch.float32, 1e-5), (torch.float16, 2 ** -10), (torch.bfloat16, 2 ** -7)])
def test_low_precision_inputs(device, dtype, rtol):
    """The output has the input dtype; the pairs are computed in float32 on the rows as given, so the value
    agrees with the float64 formula on the same (rounded) rows up to the output's own rounding."""
    x, y = make_embeddings(2, 700, 32, dtype=dtype, device=device, seed=7, normalize=True, requires_grad=True)
    ours = modgap.cross_uniformity(x, y)
    assert ours.dtype == dtype
    ref = cross_uniformity_formula(x.detach(), y.detach())
    torch.testing.assert_close(ours.double(), ref, rtol=rtol, atol=0)
    gx, gy = torch.autograd.grad(ours, [x, y])
    assert gx.dtype == dtype and gy.dtype == dtype
    x64, y64 = (z.detach().double().requires_grad_(True) for z in (x, y))
    ex, ey = torch.autograd.grad(cross_uniformity_formula(x64, y64), [x64, y64])
    scale = ex.abs().max().item()
    torch.testing.assert_close(gx.double(), ex, rtol=0, atol=4 * rtol * scale)
    torch.testing.assert_close(gy.double(), ey, rtol=0, atol=4 * rtol * scale)


class TestNumericalStability:
    def test_large_temperature_far_apart_rows(self):
        """t = 20 on unit vectors: exp(-t d) reaches e^-80, below float32's range; the online log-sum-exp
        keeps it exact."""
        x = F.normalize(torch.randn(300, 8, generator=torch.Generator().manual_seed(8)), dim=-1)
        y = -x  # every true pair antipodal
        ours = modgap.cross_uniformity(x, y, 20.0, True)
        ref = cross_uniformity_formula(x.double(), y.double(), 20.0, True)
        assert torch.isfinite(ours)
        torch.testing.assert_close(ours.double(), ref, rtol=1e-5, atol=0)

    def test_unnormalised_far_apart_sets(self):
        """Two clouds 100 apart: every logit is about -2e4; the value is still finite and exact."""
        generator = torch.Generator().manual_seed(9)
        x = torch.randn(200, 4, generator=generator, dtype=torch.float64, requires_grad=True)
        y = (torch.randn(200, 4, generator=generator, dtype=torch.float64) + 100.0).requires_grad_(True)
        assert_matches_formula(x, y, 2.0, True, rtol=1e-12)

    def test_identical_sets(self):
        x = F.normalize(torch.randn(64, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(10)), dim=-1)
        x.requires_grad_(True)
        y = x.detach().clone().requires_grad_(True)
        assert_matches_formula(x, y, 2.0, True)


def test_non_contiguous_inputs():
    x, y = make_embeddings(2, 40, 12, seed=12)
    assert_matches_formula(x[:, ::2].requires_grad_(True), y.t().contiguous().t()[:, 1::2].requires_grad_(True), 2.0,
                           True)


def test_double_backward_is_refused_with_a_clear_error():
    # Refused as soon as a graph of the gradient is requested (the backward op builds none).
    x, y = make_embeddings(2, 6, 3, seed=13, requires_grad=True)
    with pytest.raises(RuntimeError, match=r"modgap::cross_uniformity: double backward .* is not supported"):
        torch.autograd.grad(modgap.cross_uniformity(x, y), [x], create_graph=True)


def test_internal_forward_refuses_gradients():
    x, y = make_embeddings(2, 5, 3, seed=14, requires_grad=True)
    with pytest.raises(RuntimeError, match="is internal and not differentiable"):
        ops._cross_uniformity_forward(x, y, 2.0, True)


def test_opcheck(device):
    x, y = make_embeddings(2, 11, 4, device=device, seed=15, requires_grad=True)
    xf, yf = make_embeddings(2, 9, 4, dtype=torch.float32, device=device, seed=16, requires_grad=True)
    xh = torch.randn(7, 4, dtype=torch.bfloat16, device=device)
    yh = torch.randn(5, 4, dtype=torch.bfloat16, device=device)
    log_pair_sum = ops._cross_uniformity_forward(x.detach(), y.detach(), 2.0, True)[1]
    grad = torch.tensor(0.3, dtype=torch.float64, device=device)
    for op, args in [
        (ops.cross_uniformity.default, (x, y, 2.0, True)),
        (ops.cross_uniformity.default, (xf, yf, 0.5, False)),
        (ops.cross_uniformity.default, (xh, yh, 2.0, False)),
        (ops._cross_uniformity_forward.default, (x.detach(), y.detach(), 2.0, True)),
        (ops._cross_uniformity_backward.default, (grad, x.detach(), y.detach(), log_pair_sum, 2.0, True)),
    ]:
        torch.library.opcheck(op, args)
    for name in ("cross_uniformity", "_cross_uniformity_forward", "_cross_uniformity_backward"):
        for key in ("CPU", "CUDA", "Meta", "Autograd"):
            assert torch._C._dispatch_has_kernel_for_dispatch_key(f"modgap::{name}", key), (name, key)


def test_torch_compile_fullgraph_dynamic_matches_eager(device):
    torch._dynamo.reset()

    def step(a, b):
        return modgap.cross_uniformity(a, b, 2.0, True) + 0.5 * modgap.cross_uniformity(a, b, 1.0, False)

    assert_compiled_matches_eager(step, device)


def test_meta_kernels_keep_shapes_and_dtypes():
    x = torch.empty(7, 3, device="meta", dtype=torch.float16)
    y = torch.empty(7, 3, device="meta", dtype=torch.float16)
    loss, log_pair_sum = ops._cross_uniformity_forward(x, y, 2.0, True)
    assert loss.dtype == torch.float16 and log_pair_sum.dtype == torch.float32 and loss.shape == ()
    gx, gy = ops._cross_uniformity_backward(torch.empty((), device="meta"), x, y, log_pair_sum, 2.0, True)
    assert gx.shape == x.shape and gy.dtype == torch.float16


def test_scripted_module():
    class NotAGapCrossTerm(torch.nn.Module):
        def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
            return modgap.cross_uniformity(a, b, 2.0, True)

    scripted = torch.jit.script(NotAGapCrossTerm())
    x, y = make_embeddings(2, 10, 4, seed=17)
    torch.testing.assert_close(scripted(x, y), cross_uniformity_formula(x, y), rtol=1e-12, atol=0)


@pytest.mark.parametrize("call, error, message", [
    (lambda: modgap.cross_uniformity(torch.randn(4, 3), torch.randn(4, 2)), ValueError,
     r"`y` has 2 columns but `x` has 3"),
    (lambda: modgap.cross_uniformity(torch.randn(4, 3), torch.randn(5, 3)), ValueError,
     r"with exclude_diagonal=True, x and y are paired row by row and must have the same number of rows, got 4 and 5"),
    (lambda: modgap.cross_uniformity(torch.randn(1, 3), torch.randn(1, 3)), ValueError, r"`x` must have at least 2"),
    (lambda: modgap.cross_uniformity(torch.randn(4, 3), torch.randn(4, 3).double()), TypeError, r"`y` has dtype"),
    (lambda: modgap.cross_uniformity(torch.randn(4), torch.randn(4, 3)), ValueError, r"`x` must be a 2-D tensor"),
    (lambda: modgap.cross_uniformity(torch.ones(4, 3, dtype=torch.int64), torch.ones(4, 3, dtype=torch.int64)),
     TypeError, r"`x`"),
    (lambda: modgap.cross_uniformity(torch.randn(4, 3), torch.randn(4, 3), t=0.0), ValueError, r"`t`"),
    (lambda: modgap.cross_uniformity(torch.randn(4, 3), torch.randn(4, 3), t=float("nan")), ValueError, r"`t`"),
    (lambda: modgap.cross_uniformity(torch.randn(4, 3), torch.tensor([[0.0, float("nan"), 0.0]] * 4)), ValueError,
     r"modgap::cross_uniformity: `y` contains NaN or Inf"),
])
def test_bad_inputs_name_the_argument(call, error, message):
    with pytest.raises(error, match=message):
        call()


# ---- modgap.nn.NotAGapLoss: the whole NotAGap baseline on top of a CLIP loss ----

def fahim_terms(x, y, t=2.0):
    """abrar-fahim/contrastive-gap's three terms in float64 with N x N matrices (measures.md §5)."""
    lunif = lambda z: torch.pdist(z).pow(2).mul(-t).exp().mean().log()  # noqa: E731  Wang & Isola
    return {"uniformity_loss": 0.5 * (lunif(x) + lunif(y)),
            "alignment_loss": (x - y).pow(2).sum(1).mean(),
            "cross_uniformity_loss": cross_uniformity_formula(x, y, t, True)}


@pytest.mark.parametrize("weights", [(1.0, 1.0, 0.0), (1.0, 1.0, 1.0), (0.5, 0.0, 2.0), (0.0, 0.0, 0.0)])
def test_notagap_loss_module_matches_fahim_et_al(device, weights):
    uniformity, alignment, cross = weights
    x, y = make_embeddings(2, 600, 16, device=device, seed=20, normalize=True, requires_grad=True)
    module = modgap.nn.NotAGapLoss(uniformity=uniformity, alignment=alignment, cross_uniformity=cross, t=2.0)
    terms = module.terms(x, y)
    reference = fahim_terms(x, y)
    expected = {name: weight * reference[name]
                for name, weight in zip(("uniformity_loss", "alignment_loss", "cross_uniformity_loss"), weights)
                if weight != 0.0}
    assert sorted(terms) == sorted(expected)  # only the switched-on terms, by name
    for name in expected:
        torch.testing.assert_close(terms[name], expected[name], rtol=1e-10, atol=1e-14)
    total = module(x, y)
    expected_total = sum(expected.values(), torch.zeros((), dtype=torch.float64, device=device))
    torch.testing.assert_close(total, expected_total, rtol=1e-10, atol=1e-14)
    if expected:
        for a, b in zip(torch.autograd.grad(total, [x, y]), torch.autograd.grad(expected_total, [x, y])):
            torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-13)


def test_notagap_loss_module_scripts():
    module = modgap.nn.NotAGapLoss(cross_uniformity=1.0)
    scripted = torch.jit.script(module)
    x, y = make_embeddings(2, 30, 6, seed=21, normalize=True)
    torch.testing.assert_close(scripted(x, y), module(x, y), rtol=1e-12, atol=0)
    assert sorted(scripted.terms(x, y)) == ["alignment_loss", "cross_uniformity_loss", "uniformity_loss"]
    assert "cross_uniformity=1.0" in repr(module)
