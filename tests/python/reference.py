"""Independent oracles for the tests.

The first block is the authors' reference loss code (ispamm/ModGap, README and losses.py), written out
verbatim apart from formatting: the tests for M = 2 compare against it. The second block is a float64
formula of eq. 7 and eq. 8/9 for any number of modalities, written from the paper.
"""
from __future__ import annotations

from typing import List

import torch
import torch.nn.functional as F


# ---- seed reference code (ispamm/ModGap) ------------------------------------------------------
def compute_centroids_only(text_embeddings, visual_embeddings):
    centroids = (text_embeddings + visual_embeddings) / 2.0
    return centroids


def lalign_loss(x, y, alpha=2):
    return (x - y).norm(dim=1).pow(alpha).mean()


def lunif_loss(x, t=2):
    sq_pdist = torch.pdist(x, p=2).pow(2)
    return sq_pdist.mul(-t).exp().mean().log()


def reference_gap_terms(image_embeds, text_embeds, t=2.0):
    """(lalign, lunif(centroids)) exactly as the reference training loop combines them."""
    centroids = compute_centroids_only(image_embeds, text_embeds)
    centroids = F.normalize(centroids, dim=-1)
    return lalign_loss(image_embeds, text_embeds), lunif_loss(centroids, t)


# ---- float64 formulas of the paper's equations for M modalities --------------------------------
def atp_formula(embeddings: List[torch.Tensor], anchor: int = 0) -> torch.Tensor:
    """Eq. 7: 1/(M-1) sum_{m != a} 1/N sum_i ||z_i^m - z_i^a||^2."""
    z = [e.double() for e in embeddings]
    terms = [((z[m] - z[anchor]) ** 2).sum(dim=1).mean() for m in range(len(z)) if m != anchor]
    return torch.stack(terms).sum() / (len(z) - 1)


def centroid_uniformity_formula(embeddings: List[torch.Tensor], t: float = 2.0, normalize: bool = True) -> torch.Tensor:
    """Eq. 9 centroids (normalised as the reference code does), eq. 8 kernel, mean over pairs i < j."""
    mu = torch.stack([e.double() for e in embeddings]).mean(dim=0)
    if normalize:
        mu = mu / mu.norm(dim=1, keepdim=True).clamp_min(1e-12)
    n = mu.shape[0]
    sq = ((mu[:, None, :] - mu[None, :, :]) ** 2).sum(-1)
    iu = torch.triu_indices(n, n, offset=1)
    return torch.logsumexp(-t * sq[iu[0], iu[1]], dim=0) - torch.log(torch.tensor(n * (n - 1) / 2.0, dtype=torch.float64))


def eq8_as_printed(embeddings: List[torch.Tensor], t: float = 2.0) -> torch.Tensor:
    """Eq. 8 literally: log(1/N sum_i sum_{j != i} exp(-t ||mu_i - mu_j||^2)), with eq. 9 centroids (no normalisation)."""
    mu = torch.stack([e.double() for e in embeddings]).mean(dim=0)
    n = mu.shape[0]
    sq = ((mu[:, None, :] - mu[None, :, :]) ** 2).sum(-1)
    off = ~torch.eye(n, dtype=torch.bool)
    return torch.log(torch.exp(-t * sq[off]).sum() / n)
