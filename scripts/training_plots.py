"""The figures the paper's runs write (shared by scripts/openclip_digits.py and scripts/av_mnist.py):
a PCA of every modality's held-out embeddings per run (Fig. 2 / 6), the gap and V-measure over
training (Fig. 5 / 7) and, for 3-dimensional embeddings, the embeddings on the sphere itself (Fig. 9's
semantic stripes)."""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import numpy as np
import torch


def _pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def save(fig, out: Path) -> Path:
    """Lays out, writes (creating the folder) and closes a figure."""
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    _pyplot().close(fig)
    return out


def pca_scatter(runs: Dict[str, Tuple[Dict[str, torch.Tensor], str]], labels: torch.Tensor, out: Path,
                suptitle: str, markers: Sequence[str], large: Sequence[str] = ()) -> Path:
    """One panel per run: ``runs[name] = (embeddings {modality: [N, D]}, panel title)``. The modalities are
    projected together on their first two principal components; colour = label, one marker per modality.
    Modalities named in ``large`` (few distinct points, e.g. one text per class) are drawn large and on top."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(runs), figsize=(6 * len(runs), 5))
    n = len(labels)
    for ax, (embeddings, title) in zip(np.atleast_1d(axes), runs.values()):
        joint = torch.cat(list(embeddings.values())).double()
        centred = joint - joint.mean(0)
        _, _, v = torch.linalg.svd(centred, full_matrices=False)
        xy = (centred @ v[:2].T).numpy()
        for i, (marker, name) in enumerate(zip(markers, embeddings)):
            big = name in large
            ax.scatter(xy[i * n:(i + 1) * n, 0], xy[i * n:(i + 1) * n, 1], c=labels.numpy(), cmap="tab10", vmin=0,
                       vmax=9, marker=marker, s=80 if big else 10, alpha=1.0 if big else 0.65,
                       edgecolors="k" if big else "none", zorder=3 if big else 2, label=name)
        ax.set_title(title)
        ax.legend(loc="best")
    fig.suptitle(suptitle)
    return save(fig, out)


def training_curves(curves: Dict[str, Tuple[List[int], List[float], List[float]]], out: Path,
                    gap_label: str = "gap (eq. 2)") -> Path:
    """``curves[run] = (epochs, gap per epoch, V-measure per epoch)``: two panels, one line per run."""
    plt = _pyplot()
    fig, (ax_gap, ax_v) = plt.subplots(1, 2, figsize=(11, 4))
    for run, (epochs, gaps, v_measures) in curves.items():
        ax_gap.plot(epochs, gaps, marker=".", label=run)
        ax_v.plot(epochs, v_measures, marker=".", label=run)
    ax_gap.set(xlabel="epoch", ylabel=gap_label, title="Modality gap during training")
    ax_v.set(xlabel="epoch", ylabel="V-measure", title="Joint k-means V-measure during training")
    ax_gap.legend()
    ax_v.legend()
    return save(fig, out)


def sphere_scatter(runs: Dict[str, Tuple[Dict[str, torch.Tensor], str]], labels: torch.Tensor, out: Path,
                   suptitle: str, markers: Sequence[str], large: Sequence[str] = ()) -> Path:
    """Fig. 9: 3-dimensional unit embeddings drawn on the sphere, no projection; one panel per run, as
    ``pca_scatter`` (colour = label, one marker per modality, ``large`` modalities drawn large)."""
    plt = _pyplot()
    fig = plt.figure(figsize=(6 * len(runs), 5.5))
    u, v = np.meshgrid(np.linspace(0, 2 * np.pi, 36), np.linspace(0, np.pi, 18))
    for index, (embeddings, title) in enumerate(runs.values()):
        ax = fig.add_subplot(1, len(runs), index + 1, projection="3d")
        ax.plot_wireframe(np.cos(u) * np.sin(v), np.sin(u) * np.sin(v), np.cos(v), color="0.85", linewidth=0.4)
        for marker, (name, z) in zip(markers, embeddings.items()):
            if z.shape[1] != 3:
                raise ValueError(f"sphere_scatter: {name} embeddings have {z.shape[1]} dimensions, expected 3")
            z = torch.nn.functional.normalize(z.double(), dim=1).numpy()
            big = name in large
            ax.scatter(z[:, 0], z[:, 1], z[:, 2], c=labels.numpy(), cmap="tab10", vmin=0, vmax=9, marker=marker,
                       s=80 if big else 10, alpha=1.0 if big else 0.7, edgecolors="k" if big else "none",
                       depthshade=False, label=name)
        ax.set_title(title)
        ax.set_box_aspect((1, 1, 1))
        ax.legend(loc="upper left")
    fig.suptitle(suptitle)
    return save(fig, out)
