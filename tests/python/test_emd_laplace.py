"""emd_laplace ("Fill the Gap"'s optimal-transport method) against POT's EMDLaplaceTransport itself, which
is what the method's reproduction calls (measures.md §1.4), plus the barycentric map's invariants, opcheck
and the errors."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import modgap

ot = pytest.importorskip("ot")


def _clouds(ns, nt, d, seed, offset=1.0):
    g = np.random.default_rng(seed)
    return g.normal(size=(ns, d)), g.normal(size=(nt, d)) + offset


@pytest.mark.parametrize("ns,nt,d,options", [
    (40, 30, 5, {}),                                                    # POT's defaults: only the source graph
    (60, 70, 6, dict(reg_src=0.5, k=4)),                                 # both graphs
    (50, 50, 4, dict(reg_type="disp", reg_lap=0.5, reg_src=0.3)),        # the displacement form
    (45, 35, 3, dict(reg_lap=0.0)),                                     # no regulariser: plain exact transport
])
def test_matches_pot_emd_laplace_transport(device, ns, nt, d, options):
    xs, xt = _clouds(ns, nt, d, seed=ns + nt)
    pot = ot.da.EMDLaplaceTransport(reg_type=options.get("reg_type", "pos"), reg_lap=options.get("reg_lap", 1.0),
                                    reg_src=options.get("reg_src", 1.0), similarity_param=options.get("k"))
    pot.fit(Xs=xs, Xt=xt)
    coupling, moved = modgap.emd_laplace(torch.tensor(xs, device=device), torch.tensor(xt, device=device), **options)
    assert coupling.device.type == device and coupling.shape == (ns, nt) and moved.shape == (ns, d)
    np.testing.assert_allclose(coupling.cpu().numpy(), pot.coupling_, atol=1e-13)
    np.testing.assert_allclose(moved.cpu().numpy(), pot.transform(Xs=xs), atol=1e-11)


def test_transport_closes_the_gap_and_keeps_the_masses():
    # Uniform masses: the barycentric map sends the sources' mean exactly onto the targets' mean.
    xs, xt = _clouds(80, 60, 8, seed=3, offset=2.0)
    coupling, moved = modgap.emd_laplace(torch.tensor(xs), torch.tensor(xt))
    np.testing.assert_allclose(coupling.sum(1).numpy(), np.full(80, 1 / 80), atol=1e-14)
    np.testing.assert_allclose(coupling.sum(0).numpy(), np.full(60, 1 / 60), atol=1e-14)
    np.testing.assert_allclose(moved.mean(0).numpy(), xt.mean(0), atol=1e-12)
    assert np.linalg.norm(xs.mean(0) - xt.mean(0)) > 5.0


def test_float32_inputs_and_opcheck():
    xs, xt = _clouds(20, 16, 3, seed=5)
    coupling, moved = modgap.emd_laplace(torch.tensor(xs, dtype=torch.float32), torch.tensor(xt, dtype=torch.float32))
    assert coupling.dtype == torch.float32 and moved.dtype == torch.float32
    args = (torch.tensor(xs), torch.tensor(xt), 1.0, 0.5, 3, "pos", 20, 1e-9, 100000, 1e-9)
    torch.library.opcheck(torch.ops.modgap.emd_laplace.default, args,
                          test_utils=("test_schema", "test_faketensor", "test_aot_dispatch_dynamic"))


@pytest.mark.parametrize("make,error,message", [
    (lambda xs, xt: ((xs, xt[:, :2]), {}), ValueError, r"columns|D"),
    (lambda xs, xt: ((xs, xt), dict(k=12)), ValueError, r"`k` \(graph neighbours\) must be >= 1 and below both"),
    (lambda xs, xt: ((xs, xt), dict(reg_src=1.5)), ValueError, r"`reg_src` \(alpha, the weight of the source graph\)"),
    (lambda xs, xt: ((xs, xt), dict(reg_lap=-1.0)), ValueError, r"`reg_lap` \(the Laplacian regularisation eta\)"),
    (lambda xs, xt: ((xs, xt), dict(reg_type="gauss")), ValueError, r"`reg_type` must be \"pos\" or \"disp\""),
    (lambda xs, xt: ((xs, xt), dict(max_iter=0)), ValueError, r"`max_iter` \(conditional-gradient steps\)"),
    (lambda xs, xt: ((torch.where(xs > 1, torch.nan, xs), xt), {}), ValueError, r"`xs` contains NaN or Inf"),
    (lambda xs, xt: ((xs, xt), dict(max_inner_iter=1)), RuntimeError, r"stopped after `max_inner_iter` = 1 pivots"),
])
def test_bad_inputs_raise_clear_errors(make, error, message):
    xs, xt = (torch.tensor(x) for x in _clouds(15, 12, 3, seed=7))
    args, kwargs = make(xs, xt)
    with pytest.raises(error, match=message):
        modgap.emd_laplace(*args, **kwargs)


def test_new_points_move_as_pot_transforms_them(device):
    # Fit on some images, map others (POT's out-of-sample rule, 300 points in its batches of 128).
    xs, xt = _clouds(60, 50, 5, seed=11)
    new = np.random.default_rng(12).normal(size=(300, 5))
    pot = ot.da.EMDLaplaceTransport().fit(Xs=xs, Xt=xt)
    _, moved = modgap.emd_laplace(torch.tensor(xs, device=device), torch.tensor(xt, device=device))
    mapped = modgap.ot_map_new_points(torch.tensor(new, device=device), torch.tensor(xs, device=device), moved)
    np.testing.assert_allclose(mapped.cpu().numpy(), pot.transform(Xs=new), atol=1e-11)
    # A fitted source maps to its own transported point.
    np.testing.assert_allclose(modgap.ot_map_new_points(torch.tensor(xs[:7], device=device),
                                                        torch.tensor(xs, device=device), moved).cpu().numpy(),
                               moved[:7].cpu().numpy(), atol=1e-13)
    args = (torch.tensor(new[:9]), torch.tensor(xs), moved.cpu())
    torch.library.opcheck(torch.ops.modgap.ot_map_new_points.default, args,
                          test_utils=("test_schema", "test_faketensor", "test_aot_dispatch_dynamic"))
    with pytest.raises(ValueError, match=r"`xs_transported` must hold one transported row per fitted source"):
        modgap.ot_map_new_points(torch.tensor(new), torch.tensor(xs), moved.cpu()[:-1])
    with pytest.raises(ValueError, match=r"columns|D"):
        modgap.ot_map_new_points(torch.tensor(new[:, :3]), torch.tensor(xs), moved.cpu())
