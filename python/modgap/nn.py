"""nn.Module front-ends of the losses (TorchScript-compatible)."""
from __future__ import annotations

from typing import Dict, List

import torch


class GapLoss(torch.nn.Module):
    """``lambda1 * L_ATP + lambda2 * L_CU``: the two terms eq. 21 adds to a CLIP loss.

    Call it with the list of per-modality embeddings ``[z^1, ..., z^M]`` (each [N, D], as your model
    produces them; the paper's reference code L2-normalises them first), and add the result to the
    contrastive loss: ``loss = clip_loss + gap_loss([image_features, text_features])``.
    Scriptable with ``torch.jit.script``.

    Under data parallelism it sees this rank's rows only. L_ATP is a mean over rows, so with equal local
    batches DDP's gradient averaging gives the global batch's; L_CU is then the uniformity of the local
    centroids. For L_CU over the global batch (as one process would compute it) use
    ``modgap.distributed.centroid_uniformity`` instead of this module's term, as the OpenCLIP patch does.
    """

    def __init__(self, lambda1: float = 1.0, lambda2: float = 1.0, t: float = 2.0, anchor: int = 0,
                 normalize_centroids: bool = True) -> None:
        super().__init__()
        self.lambda1 = float(lambda1)
        self.lambda2 = float(lambda2)
        self.t = float(t)
        self.anchor = int(anchor)
        self.normalize_centroids = bool(normalize_centroids)

    def forward(self, embeddings: List[torch.Tensor]) -> torch.Tensor:
        atp = torch.ops.modgap.atp_loss(embeddings, self.anchor)
        cu = torch.ops.modgap.centroid_uniformity(embeddings, self.t, self.normalize_centroids)
        return self.lambda1 * atp + self.lambda2 * cu

    def extra_repr(self) -> str:
        return (f"lambda1={self.lambda1}, lambda2={self.lambda2}, t={self.t}, anchor={self.anchor}, "
                f"normalize_centroids={self.normalize_centroids}")


class NotAGapLoss(torch.nn.Module):
    """Fahim et al. (2024)'s terms ("It's not a modality gap", the paper's NotAGap baseline), to add to a
    CLIP loss on L2-normalised image features ``x`` and text features ``y`` (each [N, D], paired by row):

    ``uniformity * (lunif(x) + lunif(y)) / 2 + alignment * mean_i ||x_i - y_i||^2
    + cross_uniformity * log mean_{i != j} exp(-t ||x_i - y_j||^2)``

    with Wang & Isola's ``lunif(z) = log mean_{i<j} exp(-t ||z_i - z_j||^2)``. Their code sets every weight
    to 1, leaves the cross term off in its default sweep, uses t = 2, and trains InfoNCE at a fixed
    temperature of 0.01 (the contrastive part is yours, not included here). No term materialises an N x N
    matrix. ``terms(x, y)`` returns the weighted terms that are switched on, by name, for logging; the
    module's value is their sum. Scriptable with ``torch.jit.script``.
    """

    def __init__(self, uniformity: float = 1.0, alignment: float = 1.0, cross_uniformity: float = 0.0,
                 t: float = 2.0) -> None:
        super().__init__()
        self.uniformity = float(uniformity)
        self.alignment = float(alignment)
        self.cross_uniformity = float(cross_uniformity)
        self.t = float(t)

    @torch.jit.export
    def terms(self, x: torch.Tensor, y: torch.Tensor) -> Dict[str, torch.Tensor]:
        out: Dict[str, torch.Tensor] = {}
        if self.uniformity != 0.0:
            # lunif(z) is centroid_uniformity of [z, z] without normalisation (the centroid of z with itself).
            unif = 0.5 * (torch.ops.modgap.centroid_uniformity([x, x], self.t, False)
                          + torch.ops.modgap.centroid_uniformity([y, y], self.t, False))
            out["uniformity_loss"] = self.uniformity * unif
        if self.alignment != 0.0:
            out["alignment_loss"] = self.alignment * torch.ops.modgap.atp_loss([x, y], 0)
        if self.cross_uniformity != 0.0:
            out["cross_uniformity_loss"] = self.cross_uniformity * torch.ops.modgap.cross_uniformity(x, y, self.t, True)
        return out

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        total = torch.zeros((), dtype=x.dtype, device=x.device)
        for value in self.terms(x, y).values():
            total = total + value
        return total

    def extra_repr(self) -> str:
        return (f"uniformity={self.uniformity}, alignment={self.alignment}, "
                f"cross_uniformity={self.cross_uniformity}, t={self.t}")
