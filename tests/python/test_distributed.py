"""modgap.distributed.centroid_uniformity with the gloo backend on CPU, 2 and 4 processes, equal and
unequal local batches: the value on every rank equals the single-process loss on the concatenated batch,
and a shared encoder's parameter gradients after DDP-style averaging equal single-process training
(gather_with_grad=True) or 1/world_size of it (gather_with_grad=False), in float64."""
from __future__ import annotations

import os

import pytest
import torch
import torch.nn.functional as F

import modgap

D_IN, D_OUT = 7, 5


def _data(sizes, seed=0):
    generator = torch.Generator().manual_seed(seed)
    total = sum(sizes)
    return (torch.randn(total, D_IN, generator=generator, dtype=torch.float64),
            torch.randn(total, D_IN, generator=generator, dtype=torch.float64))


def _encoders():
    torch.manual_seed(0)
    return torch.nn.Linear(D_IN, D_OUT).double(), torch.nn.Linear(D_IN, D_OUT).double()


def _flat_grads(*modules):
    return torch.cat([p.grad.flatten() for m in modules for p in m.parameters()])


def _worker(rank, world_size, init_file, out_dir, sizes, gather_with_grad, t, normalize):
    import torch.distributed as dist
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size)
    x, y = _data(sizes)
    start, n = sum(sizes[:rank]), sizes[rank]
    enc_a, enc_b = _encoders()
    a = F.normalize(enc_a(x[start:start + n]), dim=-1)
    b = F.normalize(enc_b(y[start:start + n]), dim=-1)
    loss = modgap.distributed.centroid_uniformity([a, b], t=t, normalize=normalize, gather_with_grad=gather_with_grad)
    loss.backward()
    grads = _flat_grads(enc_a, enc_b)
    dist.all_reduce(grads)
    grads /= world_size                                                  # what DDP does
    torch.save({"loss": loss.detach(), "grads": grads}, os.path.join(out_dir, f"{rank}.pt"))
    dist.destroy_process_group()


def _single_process(sizes, t, normalize):
    x, y = _data(sizes)
    enc_a, enc_b = _encoders()
    loss = modgap.centroid_uniformity([F.normalize(enc_a(x), dim=-1), F.normalize(enc_b(y), dim=-1)], t, normalize)
    loss.backward()
    return loss.detach(), _flat_grads(enc_a, enc_b)


@pytest.mark.parametrize("sizes", [[9, 9], [5, 12], [6, 6, 6, 6], [3, 11, 1, 7], [0, 8]],
                         ids=["2-equal", "2-unequal", "4-equal", "4-unequal", "2-one-empty"])
@pytest.mark.parametrize("gather_with_grad", [True, False])
def test_matches_single_process(tmp_path, sizes, gather_with_grad):
    import torch.multiprocessing as mp
    t, normalize = 2.0, True
    mp.spawn(_worker, args=(len(sizes), str(tmp_path / "init"), str(tmp_path), sizes, gather_with_grad, t, normalize),
             nprocs=len(sizes))
    loss, grads = _single_process(sizes, t, normalize)
    expected = grads if gather_with_grad else grads / len(sizes)
    for rank in range(len(sizes)):
        result = torch.load(tmp_path / f"{rank}.pt")
        torch.testing.assert_close(result["loss"], loss, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(result["grads"], expected, rtol=1e-9, atol=1e-12)


def test_unnormalized_and_other_temperature(tmp_path):
    import torch.multiprocessing as mp
    sizes = [4, 10]
    mp.spawn(_worker, args=(2, str(tmp_path / "init"), str(tmp_path), sizes, True, 7.0, False), nprocs=2)
    loss, grads = _single_process(sizes, 7.0, False)
    for rank in range(2):
        result = torch.load(tmp_path / f"{rank}.pt")
        torch.testing.assert_close(result["loss"], loss, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(result["grads"], grads, rtol=1e-9, atol=1e-12)


def test_without_a_process_group_it_is_the_single_process_op():
    z = [F.normalize(torch.randn(10, 4, dtype=torch.float64), dim=-1) for _ in range(2)]
    assert modgap.distributed.centroid_uniformity(z).item() == modgap.centroid_uniformity(z).item()


def test_partial_op_covers_all_pairs_on_one_process():
    # One "rank" holding everything: the partial state must reproduce the op exactly.
    z = [torch.randn(300, 6, dtype=torch.float64) for _ in range(3)]
    ops = torch.ops.modgap
    u = ops._centroids(z, True)
    row_max, row_sum, weighted = ops._centroid_uniformity_partial(z, u, 0, 2.0, True, True)
    log_pair_sum = torch.logsumexp(row_max + row_sum.log(), 0) - torch.log(torch.tensor(2.0, dtype=torch.float64))
    n = 300
    value = log_pair_sum - torch.log(torch.tensor(n * (n - 1) / 2, dtype=torch.float64))
    torch.testing.assert_close(value, modgap.centroid_uniformity(z), rtol=1e-12, atol=1e-12)
    grads = ops._centroid_uniformity_partial_backward(torch.tensor(1.0, dtype=torch.float64), z, row_max, row_sum,
                                                      weighted, log_pair_sum, 2.0, True, 1.0)
    leaves = [x.clone().requires_grad_(True) for x in z]
    expected = torch.autograd.grad(modgap.centroid_uniformity(leaves), leaves)
    for g, e in zip(grads, expected):
        torch.testing.assert_close(g, e, rtol=1e-9, atol=1e-12)
    torch.library.opcheck(ops._centroids.default, (z, True))
    torch.library.opcheck(ops._centroid_uniformity_partial.default, (z, u, 0, 2.0, True, True))


def _autocast_worker(rank, world_size, init_file, out_dir, sizes):
    import torch.distributed as dist
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size)
    x, y = _data(sizes)
    start, n = sum(sizes[:rank]), sizes[rank]
    a = x[start:start + n, :D_OUT].to(torch.bfloat16).requires_grad_(True)
    b = y[start:start + n, :D_OUT].to(torch.bfloat16).requires_grad_(True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = modgap.distributed.centroid_uniformity([a, b], gather_with_grad=True)
    loss.backward()
    torch.save({"loss": loss.detach(), "grads": [a.grad, b.grad]}, os.path.join(out_dir, f"{rank}.pt"))
    dist.destroy_process_group()


def test_under_autocast_it_is_the_single_process_op_under_autocast(tmp_path):
    # bf16 rows inside autocast: float32 loss (the op's float32 policy for losses, ops/common/autocast.cpp),
    # equal to the single-process op under autocast on the concatenated rows; each rank's rows receive
    # world_size x their gradient in bf16.
    import torch.multiprocessing as mp
    sizes = [7, 12]
    mp.spawn(_autocast_worker, args=(2, str(tmp_path / "init"), str(tmp_path), sizes), nprocs=2)
    x, y = _data(sizes)
    a = x[:, :D_OUT].to(torch.bfloat16).requires_grad_(True)
    b = y[:, :D_OUT].to(torch.bfloat16).requires_grad_(True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = modgap.centroid_uniformity([a, b])
    assert loss.dtype == torch.float32
    (2 * loss).backward()
    for rank in range(2):
        result = torch.load(tmp_path / f"{rank}.pt")
        assert result["loss"].dtype == torch.float32
        torch.testing.assert_close(result["loss"], loss.detach(), rtol=1e-6, atol=1e-6)
        rows = slice(sum(sizes[:rank]), sum(sizes[:rank + 1]))
        for grad, expected in zip(result["grads"], (a.grad[rows], b.grad[rows])):
            assert grad.dtype == torch.bfloat16
            torch.testing.assert_close(grad.float(), expected.float(), rtol=1e-2, atol=1e-3)
