"""Centroid uniformity over a batch split across data-parallel ranks, exactly.

    loss = modgap.distributed.centroid_uniformity([image_local, text_local], t=2.0, group=None,
                                                  gather_with_grad=True)

Every rank passes its own rows (n_r of them; sizes may differ between ranks). The value on every rank is
the single-process ``modgap.centroid_uniformity`` of the concatenated global batch (N = sum n_r rows, in
rank order). Each rank computes only its n_r x N share of the pairs with the C++ op
``_centroid_uniformity_partial`` and the ranks combine their max-shifted partial sums with two
all_reduces (max, then sum): the N x N matrix exists nowhere, and per-rank work is n_r N D.

Gradients compose with DDP as OpenCLIP's ClipLoss does:

* ``gather_with_grad=True`` (OpenCLIP's ``--local-loss --gather-with-grad``): the local rows receive
  world_size x their gradient of the global loss, so after DDP averages the parameter gradients over
  the ranks, the parameters receive exactly the gradient of the single-process loss on the
  concatenated batch;
* ``gather_with_grad=False``: the local rows receive their gradient of the global loss once, so after
  DDP's averaging the term's gradient is 1/world_size of the single-process one (ClipLoss without
  gather_with_grad has the same 1/world_size scaling).

The collectives run in Python (torch.distributed); the arithmetic is in the C++ ops. Without an
initialised process group (or with world size 1) this is ``modgap.centroid_uniformity``.
"""
from __future__ import annotations

import math
from typing import List, Optional

import torch
import torch.distributed as dist

import modgap

__all__ = ["centroid_uniformity"]


def _gather_rows(local: torch.Tensor, group) -> tuple[torch.Tensor, int]:
    """All ranks' rows in rank order (sizes may differ) and this rank's row offset; no gradient."""
    world_size = dist.get_world_size(group)
    rank = dist.get_rank(group)
    size = torch.tensor([local.shape[0]], dtype=torch.long, device=local.device)
    sizes = [torch.zeros_like(size) for _ in range(world_size)]
    dist.all_gather(sizes, size, group=group)
    sizes = [int(s.item()) for s in sizes]
    largest = max(sizes)
    padded = torch.zeros(largest, local.shape[1], dtype=local.dtype, device=local.device)
    padded[: local.shape[0]] = local
    gathered = [torch.empty_like(padded) for _ in range(world_size)]
    dist.all_gather(gathered, padded.contiguous(), group=group)
    rows = torch.cat([g[:s] for g, s in zip(gathered, sizes)])
    return rows, sum(sizes[:rank])


class _DistributedCentroidUniformity(torch.autograd.Function):
    @staticmethod
    def forward(ctx, t: float, normalize: bool, group, scale: float, *local: torch.Tensor):
        local = [z.detach() for z in local]
        ops = torch.ops.modgap
        all_centroids, offset = _gather_rows(ops._centroids(local, normalize), group)
        num_rows = all_centroids.shape[0]
        if num_rows < 2:
            raise ValueError(f"modgap.distributed.centroid_uniformity: expected at least 2 rows over all ranks, got {num_rows}")
        compute_grad = any(ctx.needs_input_grad[4:])
        row_max, row_sum, weighted = ops._centroid_uniformity_partial(local, all_centroids, offset, t, normalize,
                                                                      compute_grad)
        # log sum_{i != j} exp(x_ij) over all ranks = M + log sum_r sum_i s_i exp(m_i - M).
        shift = row_max.max() if row_max.numel() else torch.tensor(-math.inf, dtype=row_max.dtype, device=row_max.device)
        dist.all_reduce(shift, op=dist.ReduceOp.MAX, group=group)
        finite_shift = torch.where(torch.isinf(shift), torch.zeros_like(shift), shift)
        total = (row_sum * torch.exp(row_max - finite_shift)).sum()
        dist.all_reduce(total, op=dist.ReduceOp.SUM, group=group)
        log_pair_sum = finite_shift + torch.log(total) - math.log(2.0)          # log sum_{i<j} exp(x_ij)
        loss = log_pair_sum - (math.log(num_rows) + math.log(num_rows - 1) - math.log(2.0))
        if not torch.isfinite(loss):
            for m, z in enumerate(local):
                if not torch.isfinite(z).all():
                    raise ValueError(f"modgap.distributed.centroid_uniformity: embeddings[{m}] contains NaN or Inf "
                                     f"values on rank {dist.get_rank(group)}")
            raise ValueError("modgap.distributed.centroid_uniformity: the loss is not finite although this rank's "
                             "embeddings are; check the other ranks' embeddings for NaN/Inf")
        ctx.save_for_backward(*local, row_max, row_sum, weighted, log_pair_sum)
        ctx.settings = (t, normalize, scale, len(local))
        return loss.to(local[0].dtype)

    @staticmethod
    def backward(ctx, grad_output):
        t, normalize, scale, num_modalities = ctx.settings
        saved = ctx.saved_tensors
        local, (row_max, row_sum, weighted, log_pair_sum) = list(saved[:num_modalities]), saved[num_modalities:]
        grads = torch.ops.modgap._centroid_uniformity_partial_backward(
            grad_output, local, row_max, row_sum, weighted, log_pair_sum, t, normalize, scale)
        return (None, None, None, None, *grads)


def centroid_uniformity(embeddings: List[torch.Tensor], t: float = 2.0, normalize: bool = True, group=None,
                        gather_with_grad: bool = True) -> torch.Tensor:
    """L_CU of the global batch (eq. 8/9 as the reference code), from this rank's rows ``embeddings``."""
    if len(embeddings) < 2:
        raise ValueError(f"modgap.distributed.centroid_uniformity: expected at least 2 modalities, got {len(embeddings)}")
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size(group) == 1:
        return modgap.centroid_uniformity(embeddings, t, normalize)
    scale = float(dist.get_world_size(group)) if gather_with_grad else 1.0
    device_type = embeddings[0].device.type
    if torch.amp.is_autocast_available(device_type) and torch.is_autocast_enabled(device_type):
        # As the single-process op under autocast (ops/common/autocast.cpp): PyTorch's float32 policy for
        # losses, fp16 / bf16 rows cast to float32 (the cast is differentiable); the internal ops' autocast
        # kernels keep those float32 rows and run with autocast off.
        embeddings = [z.float() if z.dtype in (torch.float16, torch.bfloat16) else z for z in embeddings]
    return _DistributedCentroidUniformity.apply(float(t), bool(normalize), group, scale, *embeddings)
