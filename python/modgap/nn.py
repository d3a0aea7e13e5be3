"""nn.Module front-ends of the losses (TorchScript-compatible)."""
from __future__ import annotations

from typing import List

import torch


class GapLoss(torch.nn.Module):
    """``lambda1 * L_ATP + lambda2 * L_CU``: the two terms eq. 21 adds to a CLIP loss.

    Call it with the list of per-modality embeddings ``[z^1, ..., z^M]`` (each [N, D], as your model
    produces them; the paper's reference code L2-normalises them first), and add the result to the
    contrastive loss: ``loss = clip_loss + gap_loss([image_features, text_features])``.
    Scriptable with ``torch.jit.script``.
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
