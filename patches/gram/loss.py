"""GRAM's and VAST's retrieval loss plus the modgap terms, patched into ``forward_ret`` at run time.

GRAM (github.com/ispamm/GRAM) is a fork of VAST; both train with ``utils/pipeline.py``, which calls
``model(batch, task, compute_loss=True)``, sums **every** value of the returned loss dict and logs each
key (upstreams.md §2.4). ``GRAM.forward_ret`` / ``VAST.forward_ret`` compute the per-modality features
through ``self.batch_get(batch, 'feat_t' | 'feat_v' | 'feat_a' | 'feat_s')``, which caches them in the
batch with their graph (L2-normalised, [B_local, 512]). The patch wraps ``forward_ret``: after the
original, when ``compute_loss``, it takes those features (the cache, or for VAST's fused tasks a first
computation: the per-modality heads then get gradients) and adds

* ``loss_modgap_atp`` = lambda1 L_ATP (eq. 7, anchor text: GRAM and VAST treat text as the anchor),
* ``loss_modgap_cu``  = lambda2 L_CU  (eq. 8/9 as the reference code, global batch under DDP with
  modgap.distributed and gather_with_grad=True; GRAM's own contrastive terms gather without gradient),

and, with ``itc="cosine"``, replaces GRAM's volume loss ``loss_area`` by the pairwise cosine InfoNCE of
text with each other modality (VAST's form: learnable ``contra_temp`` divisor, targets offset by the
rank, label smoothing 0.1, other ranks' rows without gradient): the paper's "CLIP" baseline on GRAM's code
base, where the cosine ITC ships commented out.

Weights come from the JSON ``model_cfg`` (``"modgap_lambda1"``, ``"modgap_lambda2"``, ``"modgap_t"``,
``"modgap_itc"``; GRAM's command line cannot add keys), else from :func:`install`'s arguments.
"""
from __future__ import annotations

import functools
import importlib
from typing import Dict, List, Optional, Sequence

import torch
import torch.distributed as dist
import torch.nn.functional as F

import modgap
import modgap.distributed
from modgap.distributed import _gather_rows

from .._upstream import at_least_float32, check_signature

DEFAULTS = {"lambda1": 1.0, "lambda2": 1.0, "t": 2.0, "normalize": True, "modalities": ("t", "v", "a"),
            "itc": "volume"}
#: model classes the patch knows: GRAM's and VAST's (same forward_ret contract).
MODEL_CLASSES = {"gram": ("model.gram", "GRAM"), "vast": ("model.vast", "VAST")}

_installed: Dict[str, tuple] = {}


def _gather_without_grad(x: torch.Tensor) -> tuple[torch.Tensor, int]:
    """All ranks' rows in rank order with a gradient only through this rank's own (GRAM/VAST's
    concat_all_gather, then their local rows), and this rank's row offset; local sizes may differ."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return x, 0
    rows, offset = _gather_rows(x.detach(), None)
    return torch.cat([rows[:offset], x, rows[offset + x.shape[0]:]]), offset


def cosine_itc(feat_t: torch.Tensor, others: Sequence[torch.Tensor], contra_temp: torch.Tensor,
               label_smoothing: float = 0.1) -> torch.Tensor:
    """Mean over the other modalities of VAST's symmetric text <-> modality InfoNCE (upstreams.md §2.4)."""
    feat_t_all, offset = _gather_without_grad(feat_t)
    # VAST's targets rank * bs + i: this rank's rows start at `offset` in the gathered batch
    targets = torch.arange(offset, offset + feat_t.shape[0], device=feat_t.device)
    losses = []
    for feat in others:
        feat_all, _ = _gather_without_grad(feat)
        sim_m2t = feat @ feat_t_all.t() / contra_temp
        sim_t2m = feat_t @ feat_all.t() / contra_temp
        losses.append((F.cross_entropy(sim_m2t, targets, label_smoothing=label_smoothing)
                       + F.cross_entropy(sim_t2m, targets, label_smoothing=label_smoothing)) / 2)
    return torch.stack(losses).mean()


def modality_features(model, batch, modalities: Sequence[str]) -> List[torch.Tensor]:
    """``feat_<m>`` for each modality letter (text first = the anchor), through the model's own cache."""
    features = []
    for letter in modalities:
        feature = model.batch_get(batch, f"feat_{letter}")
        if not isinstance(feature, torch.Tensor) or feature.dim() != 2:
            raise ValueError(f"modgap GRAM/VAST patch: batch_get(batch, 'feat_{letter}') gave "
                             f"{type(feature).__name__}, expected a [B, D] tensor (is modality {letter!r} in the batch?)")
        features.append(at_least_float32(feature))
    return features


def options_of(model, defaults: dict) -> dict:
    """install() defaults overridden by the model config's ``modgap_*`` keys."""
    config = getattr(model, "config", None)
    options = dict(defaults)
    for key in ("lambda1", "lambda2", "t", "normalize", "modalities", "itc"):
        value = getattr(config, f"modgap_{key}", None) if config is not None else None
        if value is None and isinstance(config, dict):
            value = config.get(f"modgap_{key}")
        if value is not None:
            options[key] = value
    if isinstance(options["modalities"], str):
        options["modalities"] = tuple(options["modalities"])
    if options["itc"] not in ("volume", "cosine"):
        raise ValueError(f"modgap GRAM/VAST patch: `itc` must be 'volume' or 'cosine', got {options['itc']!r}")
    if len(options["modalities"]) < 2:
        raise ValueError(f"modgap GRAM/VAST patch: `modalities` needs at least 2 letters, got {options['modalities']!r}")
    return options


def modgap_terms(model, batch, options: dict) -> Dict[str, torch.Tensor]:
    features = modality_features(model, batch, options["modalities"])
    terms: Dict[str, torch.Tensor] = {}
    with torch.autocast(device_type=features[0].device.type, enabled=False):
        if options["lambda1"]:
            terms["loss_modgap_atp"] = float(options["lambda1"]) * modgap.atp_loss(features, 0)
        if options["lambda2"]:
            terms["loss_modgap_cu"] = float(options["lambda2"]) * modgap.distributed.centroid_uniformity(
                features, float(options["t"]), bool(options["normalize"]), gather_with_grad=True)
        if options["itc"] == "cosine":
            terms["loss_area"] = cosine_itc(features[0], features[1:], model.contra_temp)
    return terms


def install(model: str = "gram", **defaults) -> type:
    """Patch ``forward_ret`` of GRAM's (``model="gram"``) or VAST's (``"vast"``) model class in place.

    The code base's root must be on sys.path (``model.gram`` / ``model.vast`` importable). ``defaults``:
    any of lambda1, lambda2, t, normalize, modalities (letters, text first), itc. Returns the class.
    """
    if model not in MODEL_CLASSES:
        raise ValueError(f"modgap GRAM/VAST patch: `model` must be one of {sorted(MODEL_CLASSES)}, got {model!r}")
    unknown = set(defaults) - set(DEFAULTS)
    if unknown:
        raise TypeError(f"modgap GRAM/VAST patch: unknown option(s) {sorted(unknown)}; expected some of {sorted(DEFAULTS)}")
    module_name, class_name = MODEL_CLASSES[model]
    cls = getattr(importlib.import_module(module_name), class_name)
    check_signature(cls, "forward_ret", ("self", "batch", "task", "compute_loss"))
    check_signature(cls, "batch_get", ("self", "batch", "key"))
    settings = dict(DEFAULTS, **defaults)
    uninstall(model)
    original = cls.forward_ret

    @functools.wraps(original)
    def forward_ret(self, batch, task, compute_loss=True):
        out = original(self, batch, task, compute_loss=compute_loss)
        if compute_loss:
            out.update(modgap_terms(self, batch, options_of(self, settings)))
        else:
            from . import evaluation  # buffers the evaluation features for the gap measures
            evaluation.record(batch, out)
        return out

    cls.forward_ret = forward_ret
    _installed[model] = (cls, original)
    return cls


def uninstall(model: Optional[str] = None) -> None:
    """Restore the original ``forward_ret`` (of one model class, or of all patched ones)."""
    for name in [model] if model else list(_installed):
        if name in _installed:
            cls, original = _installed.pop(name)
            cls.forward_ret = original
