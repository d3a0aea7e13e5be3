"""Dataset-level gap and group-wise evaluation of a CoMM model during training (paper Table 6's "Gap").

The batch ``gap`` the patched loss logs is a per-batch number; Table 6 reports the gap of the whole
evaluation set. :func:`make_gap_callback` builds a Lightning callback that, after each validation epoch
(rank 0), embeds a split of the labelled ("Sup") MultiBench data module that CoMM's own linear-probing
callback already holds, modality by modality exactly as CoMM trains (``encoder`` with one mask per
modality, then ``head``), and logs ``modgap_*`` measures from :func:`modgap.evaluate`: gap, Cos TP and
RMG per modality pair, and V-measure of joint k-means and kNN accuracy against the class labels.
(CoMM's accuracy to compare with the paper stays the linear probe's ``acc1``, balanced accuracy on the
fused 40-d encoder output; upstreams.md §3.5.)
"""
from __future__ import annotations

from typing import Dict, Optional

import torch

import modgap


def embed_modalities(pl_module, loader, names=None) -> tuple[Dict[str, torch.Tensor], Optional[torch.Tensor]]:
    """Per-modality head outputs {name: [N, D]} of a CoMM model on ``loader``'s (X, y) batches; ``names``
    (CoMM's modality names, e.g. vision, text, audio), else modality0, modality1, ..."""
    chunks: Dict[str, list] = {}
    labels = []
    device = pl_module.device
    with torch.inference_mode():
        for X, y in loader:
            X = [X] if isinstance(X, torch.Tensor) else list(X)
            X = [x.to(device) if isinstance(x, torch.Tensor) else x for x in X]
            masks = pl_module.gen_all_possible_masks(len(X))[:-1]  # one mask per modality, not the fused one
            for i, z in enumerate(pl_module.encoder(X, mask_modalities=masks)):
                name = str(names[i]) if names is not None and i < len(names) else f"modality{i}"
                chunks.setdefault(name, []).append(pl_module.head(z).float().cpu())
            labels.append(torch.as_tensor(y).reshape(len(X[0]), -1)[:, 0].cpu())
    embeddings = {name: torch.cat(parts) for name, parts in chunks.items()}
    y = torch.cat(labels)
    return embeddings, (y.long() if not torch.is_floating_point(y) or torch.equal(y, y.round()) else None)


def summarize(result: dict) -> Dict[str, float]:
    """The loggable numbers of a :func:`modgap.evaluate` result (per pair, and the group-wise ones)."""
    out: Dict[str, float] = {}
    for pair, stats in result["pairs"].items():
        for key in ("gap", "cos_tp_mean", "rmg"):
            out[f"modgap_{key}_{pair}"] = float(stats[key])
    if "clustering" in result:
        out["modgap_v_measure"] = float(result["clustering"]["v_measure"])
        for name, accuracy in result["knn"]["accuracy"].items():
            out[f"modgap_knn_accuracy_{name}"] = float(accuracy)
    return out


def make_gap_callback(split: str = "test", every_n_epochs: int = 1, seed: int = 0, data_module=None):
    """A ``pytorch_lightning.Callback`` logging :func:`summarize` of the chosen split each validation epoch.

    ``data_module``: a labelled MultiBench data module; by default the first ``downstream_data_modules``
    entry of a callback already on the trainer (CoMM's LinearProbingCallback).
    """
    from pytorch_lightning import Callback  # CoMM's dependency, not modgap's

    if split not in ("train", "val", "test"):
        raise ValueError(f"modgap CoMM gap callback: `split` must be train, val or test, got {split!r}")

    class ModGapEvaluationCallback(Callback):
        def __init__(self) -> None:
            self.data_module = data_module
            self.last: Dict[str, float] = {}

        def _data_module(self, trainer):
            if self.data_module is not None:
                return self.data_module
            for callback in trainer.callbacks:
                modules = getattr(callback, "downstream_data_modules", None)
                if modules:
                    return modules[0]
            raise RuntimeError("modgap CoMM gap callback: no labelled data module given and none found on a "
                               "trainer callback (`downstream_data_modules`)")

        def on_validation_epoch_end(self, trainer, pl_module) -> None:
            if trainer.sanity_checking or trainer.current_epoch % every_n_epochs or trainer.global_rank != 0:
                return
            data_module = self._data_module(trainer)
            loader = getattr(data_module, f"{split}_dataloader")()
            # MultiBenchDataModule keeps the configured modality names among its dataset kwargs.
            names = (getattr(data_module, "dataset_kwargs", None) or {}).get("modalities")
            embeddings, labels = embed_modalities(pl_module, loader, list(names) if names else None)
            # summarize() logs gap, Cos TP, RMG, V-measure and kNN: no Fill the Gap, probe or separability
            self.last = summarize(modgap.evaluate(embeddings, labels, seed=seed, fill_gap_k=0, probe_max_iter=0))
            for key, value in self.last.items():
                pl_module.log(key, value, on_epoch=True, rank_zero_only=True)

    return ModGapEvaluationCallback()
