"""modgap: losses and measures that close the modality gap, as PyTorch operators (C++/CUDA).

``import modgap`` loads the operator library, after which every op is available as
``torch.ops.modgap.<name>`` (also from TorchScript) and through the thin wrappers below.
The math lives in C++ (see the repository's ``ops/`` folder); these wrappers only document it.
"""
from __future__ import annotations

from typing import List

import torch

from ._library import library_path, load_library

load_library()

from . import nn  # noqa: E402  (needs the ops loaded)

__all__ = ["atp_loss", "centroid_uniformity", "library_path", "cuda_version", "nn"]
__version__ = "0.1.0"


def atp_loss(embeddings: List[torch.Tensor], anchor: int = 0) -> torch.Tensor:
    """Alignment of true pairs, eq. 7 of Grassucci et al. (ICLR 2026).

    ``mean over the M-1 non-anchor modalities m of mean_i ||z_i^m - z_i^anchor||^2`` for M >= 2
    tensors of shape [N, D]. For two modalities it equals the reference ``lalign_loss(x, y, alpha=2)``.
    The embeddings are used as given (the reference code L2-normalises them before the loss; the op
    does not).
    """
    _check_not_empty("atp_loss", embeddings)
    return torch.ops.modgap.atp_loss(embeddings, anchor)


def centroid_uniformity(embeddings: List[torch.Tensor], t: float = 2.0, normalize: bool = True) -> torch.Tensor:
    """Centroid uniformity, eq. 8/9 of Grassucci et al. (ICLR 2026), as the reference code computes it.

    ``mu_i = mean_m z_i^m`` (L2-normalised when ``normalize``), value
    ``log(mean_{i<j} exp(-t ||mu_i - mu_j||^2))`` = the reference
    ``lunif_loss(F.normalize(compute_centroids_only(a, b)), t)``. Eq. 8 of the paper equals this value
    plus the constant ``log(N-1)`` (same gradients). The N x N distance matrix is never materialised.
    """
    _check_not_empty("centroid_uniformity", embeddings)
    return torch.ops.modgap.centroid_uniformity(embeddings, t, normalize)


def _check_not_empty(op: str, embeddings: List[torch.Tensor]) -> None:
    # An empty list carries no device, so the dispatcher could not even reach the kernels' checks.
    if len(embeddings) == 0:
        raise ValueError(f"modgap::{op}: expected at least 2 modalities in `embeddings`, got 0")


def cuda_version() -> int:
    """CUDA runtime version libmodgap was compiled against (e.g. 13000), or -1 for a CPU-only build."""
    return int(torch.ops.modgap._cuda_version())
