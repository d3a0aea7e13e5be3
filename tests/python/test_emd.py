"""emd (exact optimal transport) against independent solvers: the linear programme solved by
scipy's HiGHS, the assignment problem by scipy's linear_sum_assignment, and POT's ot.emd (LEMON's
network simplex, what Fill the Gap's OT method calls); plus dtypes, devices, opcheck and the errors."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.optimize import linear_sum_assignment, linprog

import modgap


def lp_reference(a, b, M):
    """min <G, M> s.t. G >= 0, G 1 = a, G^T 1 = b, by HiGHS (scipy): (plan, cost)."""
    ns, nt = M.shape
    rows = np.kron(np.eye(ns), np.ones((1, nt)))
    cols = np.kron(np.ones((1, ns)), np.eye(nt))
    result = linprog(M.ravel(), A_eq=np.vstack([rows, cols]), b_eq=np.concatenate([a, b]), bounds=(0, None),
                     method="highs")
    assert result.status == 0
    return result.x.reshape(ns, nt), result.fun


def _problem(ns, nt, seed, zero_masses=False):
    g = np.random.default_rng(seed)
    a = g.random(ns)
    b = g.random(nt)
    if zero_masses:
        a[::3] = 0.0
        b[1::4] = 0.0
    return a / a.sum(), b / b.sum(), g.random((ns, nt))


@pytest.mark.parametrize("ns,nt", [(1, 1), (1, 6), (6, 1), (3, 4), (17, 29), (40, 40), (60, 25)])
@pytest.mark.parametrize("zero_masses", [False, True])
def test_matches_the_linear_programme(device, ns, nt, zero_masses):
    a, b, M = _problem(ns, nt, seed=ns * 100 + nt, zero_masses=zero_masses and ns > 2 and nt > 2)
    plan, cost = modgap.emd(torch.tensor(a, device=device), torch.tensor(b, device=device),
                            torch.tensor(M, device=device))
    ref_plan, ref_cost = lp_reference(a, b, M)
    assert plan.device.type == device and plan.dtype == torch.float64 and cost.dtype == torch.float64
    plan = plan.cpu().numpy()
    assert cost.item() == pytest.approx(ref_cost, rel=1e-12, abs=1e-15)
    assert (plan >= 0).all()
    np.testing.assert_allclose(plan.sum(1), a, atol=1e-14)
    np.testing.assert_allclose(plan.sum(0), b, atol=1e-14)
    # Random continuous costs: the optimal plan is unique, so it is the LP's vertex.
    np.testing.assert_allclose(plan, ref_plan, atol=1e-12)


@pytest.mark.parametrize("n", [5, 64, 257])
def test_uniform_masses_solve_the_assignment_problem(n):
    # The most degenerate case: every vertex of the uniform transport polytope is a permutation / n.
    M = np.random.default_rng(n).random((n, n))
    plan, cost = modgap.emd(None, None, torch.tensor(M))
    rows, cols = linear_sum_assignment(M)
    assert cost.item() == pytest.approx(M[rows, cols].sum() / n, rel=1e-12)
    np.testing.assert_allclose(plan.sum(0).numpy(), np.full(n, 1 / n), atol=1e-15)
    np.testing.assert_allclose(plan.sum(1).numpy(), np.full(n, 1 / n), atol=1e-15)


@pytest.mark.parametrize("kind", ["constant", "integer ties"])
def test_degenerate_costs_terminate_at_an_optimum(kind):
    # Every plan optimal (constant costs) or many tied optima (small integers): the perturbation must
    # still end the simplex, at a feasible plan of optimal cost.
    g = np.random.default_rng(4)
    M = np.ones((30, 40)) if kind == "constant" else g.integers(0, 3, size=(30, 40)).astype(float)
    plan, cost = modgap.emd(None, None, torch.tensor(M))
    np.testing.assert_allclose(plan.sum(1).numpy(), np.full(30, 1 / 30), atol=1e-15)
    np.testing.assert_allclose(plan.sum(0).numpy(), np.full(40, 1 / 40), atol=1e-15)
    assert cost.item() == pytest.approx(lp_reference(np.full(30, 1 / 30), np.full(40, 1 / 40), M)[1], abs=1e-14)


def test_matches_pot_on_embeddings():
    ot = pytest.importorskip("ot")
    g = torch.Generator().manual_seed(0)
    xs = torch.randn(300, 16, generator=g, dtype=torch.float64)
    xt = torch.randn(240, 16, generator=g, dtype=torch.float64) + 0.5
    M = torch.cdist(xs, xt) ** 2  # POT's default sqeuclidean ground cost
    plan, cost = modgap.emd(None, None, M)
    pot_plan = ot.emd([], [], M.numpy())
    np.testing.assert_allclose(plan.numpy(), pot_plan, atol=1e-14)
    assert cost.item() == pytest.approx(float((pot_plan * M.numpy()).sum()), rel=1e-13)


def test_mass_rescaling_dtypes_and_a_tiny_pivot_budget(capfd):
    a, b, M = _problem(30, 20, seed=7)
    # b off by 1e-8 relative is accepted and rescaled to a's sum, as POT does.
    plan, cost = modgap.emd(torch.tensor(a), torch.tensor(b * (1 + 1e-8)), torch.tensor(M, dtype=torch.float32))
    assert plan.dtype == torch.float32
    np.testing.assert_allclose(plan.double().sum(0).numpy(), b, rtol=1e-6)
    # Too few pivots: a warning and a feasible (not optimal) plan.
    plan, cost = modgap.emd(torch.tensor(a), torch.tensor(b), torch.tensor(M), max_iter=2)
    assert "stopped after `max_iter` = 2 pivots" in capfd.readouterr().err
    np.testing.assert_allclose(plan.sum(1).numpy(), a, atol=1e-14)
    assert cost.item() > lp_reference(a, b, M)[1]


def test_opcheck():
    a, b, M = _problem(7, 5, seed=3)
    for args in ((torch.tensor(a), torch.tensor(b), torch.tensor(M), 1000),
                 (torch.empty(0), torch.empty(0), torch.tensor(M, dtype=torch.float32), 1000)):
        torch.library.opcheck(torch.ops.modgap.emd.default, args,
                              test_utils=("test_schema", "test_faketensor", "test_aot_dispatch_dynamic"))


@pytest.mark.parametrize("make,error,message", [
    (lambda a, b, M: (a[:-1], b, M), ValueError, r"`a` has 3 entries but `M` has 4 rows"),
    (lambda a, b, M: (a, b[:-1], M), ValueError, r"`b` has 4 entries but `M` has 5 columns"),
    (lambda a, b, M: (-a, b, M), ValueError, r"`a` must hold finite, non-negative masses"),
    (lambda a, b, M: (a, 2 * b, M), ValueError, r"same total mass"),
    (lambda a, b, M: (a, b, M[0]), ValueError, r"`M` must be a 2-D tensor"),
    (lambda a, b, M: (a, b, M.long()), TypeError, r"`M` must have a floating dtype"),
    (lambda a, b, M: (a, b, torch.where(M > 0.5, torch.nan, M)), ValueError, r"`M` contains NaN or Inf"),
    (lambda a, b, M: (a.view(2, 2), b, M), ValueError, r"`a` must be a 1-D tensor"),
    (lambda a, b, M: (torch.zeros(4, dtype=torch.float64), torch.zeros(5, dtype=torch.float64), M), ValueError,
     r"the masses sum to 0"),
])
def test_bad_inputs_raise_clear_errors(make, error, message):
    a, b, M = (torch.tensor(x) for x in _problem(4, 5, seed=9))
    with pytest.raises(error, match=message):
        modgap.emd(*make(a, b, M))
    with pytest.raises(ValueError, match=r"`max_iter` \(the most simplex pivots\) must be >= 1"):
        modgap.emd(a, b, M, max_iter=0)
