"""CoMM's loss plus the modgap terms, patched into ``losses.comm_loss.CoMMLoss`` at run time.

CoMM (Dufumier & Castillo-Navarro et al., ICLR 2025; github.com/Duplums/CoMM) trains one multimodal
encoder: ``CoMM.forward`` returns, for each of two augmented views, the head outputs of every single
modality (only that modality's tokens through the fusion transformer) and, at index ``prototype`` (-1),
the fused embedding. ``CoMMLoss.forward(outputs)`` returns a dict whose ``loss`` Lightning optimises and
whose every key ``BaseModel.training_step`` / ``validation_step`` log (``val_*`` per epoch).

The patch wraps the class's own methods (``pl_modules.comm`` imported the class by name, so replacing the
class would miss it):

* ``__init__`` accepts the modgap keys among ``loss_kwargs`` (Hydra: ``+model.model.loss_kwargs.lambda1=1``)
  and keeps CoMM's own (``temperature``, ``weights``);
* ``forward`` adds ``lambda1 * L_ATP + lambda2 * L_CU`` (eq. 7, eq. 8/9 as the reference code) of the
  L2-normalised per-modality embeddings to ``loss``, and returns ``loss_atp``, ``loss_cu`` (the weighted
  terms) and ``gap`` (eq. 2 between the first two modalities, no gradient) beside CoMM's keys.

Choices the paper does not state (upstreams.md §5.4), each an option: the terms act on the per-modality
head outputs, not on the fused one (which has no counterpart across modalities); both views by default
(``views="both"`` averages the two views' terms; ``"aug1"`` uses the first only); the anchor of L_ATP is
modality 0 (CoMM's first configured modality). Under DDP, L_CU covers the global batch with the
gradient semantics of CoMM's own all_gather_batch_with_grad (modgap.distributed, gather_with_grad=True);
L_ATP is a mean over rows, so the local mean under DDP's gradient averaging is the global one (equal
local batches, as CoMM's samplers give).
"""
from __future__ import annotations

import functools
import importlib
from typing import Dict, List, Optional

import torch
import torch.nn.functional as F

import modgap
import modgap.distributed

from .._upstream import at_least_float32, check_signature

#: loss_kwargs keys the patched CoMMLoss takes for modgap (everything else goes to CoMM).
MODGAP_LOSS_KEYS = ("lambda1", "lambda2", "t", "anchor", "normalize", "views")
DEFAULTS = {"lambda1": 1.0, "lambda2": 1.0, "t": 2.0, "anchor": 0, "normalize": True, "views": "both"}
_VIEW_KEYS = {"both": ("aug1_embed", "aug2_embed"), "aug1": ("aug1_embed",), "aug2": ("aug2_embed",)}

_installed: Dict[str, object] = {}


def modality_embeddings(outputs: dict, view_key: str) -> List[torch.Tensor]:
    """The per-modality embeddings of one view, L2-normalised (as CoMMLoss does), without the fused one."""
    embeddings = outputs[view_key]
    if not isinstance(embeddings, (list, tuple)) or not embeddings:
        raise ValueError(f"modgap CoMM patch: outputs[{view_key!r}] must be a non-empty list of [B, D] tensors, "
                         f"got {type(embeddings).__name__}")
    prototype = outputs.get("prototype", -1)
    if isinstance(prototype, bool) or not isinstance(prototype, int):
        raise ValueError(f"modgap CoMM patch: outputs['prototype'] must be the int index of the fused embedding, "
                         f"got {prototype!r}")
    fused = prototype % len(embeddings)
    per_modality = [z for i, z in enumerate(embeddings) if i != fused]
    if len(per_modality) < 2:
        raise ValueError(f"modgap CoMM patch: L_ATP and L_CU need at least 2 modalities besides the fused embedding, "
                         f"got {len(per_modality)} in outputs[{view_key!r}]")
    return [F.normalize(at_least_float32(z), p=2, dim=-1) for z in per_modality]


def modgap_terms(outputs: dict, lambda1: float = 1.0, lambda2: float = 1.0, t: float = 2.0, anchor: int = 0,
                 normalize: bool = True, views: str = "both") -> Dict[str, torch.Tensor]:
    """``loss_atp`` = lambda1 L_ATP, ``loss_cu`` = lambda2 L_CU (averaged over the chosen views), ``gap``."""
    if views not in _VIEW_KEYS:
        raise ValueError(f"modgap CoMM patch: `views` must be one of {sorted(_VIEW_KEYS)}, got {views!r}")
    atp: Optional[torch.Tensor] = None
    cu: Optional[torch.Tensor] = None
    first_view: List[torch.Tensor] = []
    for view_key in _VIEW_KEYS[views]:
        zs = modality_embeddings(outputs, view_key)
        first_view = first_view or zs
        view_atp = modgap.atp_loss(zs, int(anchor))
        # The global batch under DDP (a no-op wrapper without it), as CoMMLoss gathers its own.
        view_cu = modgap.distributed.centroid_uniformity(zs, float(t), bool(normalize), gather_with_grad=True)
        atp = view_atp if atp is None else atp + view_atp
        cu = view_cu if cu is None else cu + view_cu
    count = len(_VIEW_KEYS[views])
    with torch.no_grad():
        gap = modgap.gap_stats([z.detach() for z in first_view[:2]])["gap"][0, 1].to(first_view[0].dtype)
    return {"loss_atp": float(lambda1) * atp / count, "loss_cu": float(lambda2) * cu / count, "gap": gap}


def install(comm_loss_module: str = "losses.comm_loss", **defaults) -> type:
    """Patch ``CoMMLoss`` (imported from ``comm_loss_module``, CoMM's checkout on sys.path) in place.

    ``defaults`` (any of MODGAP_LOSS_KEYS) apply when the loss_kwargs do not name a key. Returns the class.
    Installing twice replaces the defaults; :func:`uninstall` restores CoMM's methods.
    """
    unknown = set(defaults) - set(MODGAP_LOSS_KEYS)
    if unknown:
        raise TypeError(f"modgap CoMM patch: unknown option(s) {sorted(unknown)}; expected some of {MODGAP_LOSS_KEYS}")
    module = importlib.import_module(comm_loss_module)
    cls = module.CoMMLoss
    check_signature(cls, "forward", ("self", "outputs"))
    settings = dict(DEFAULTS, **defaults)
    if "cls" in _installed:
        uninstall()
    original_init, original_forward = cls.__init__, cls.forward

    @functools.wraps(original_init)
    def __init__(self, *args, **kwargs):
        modgap_options = {key: kwargs.pop(key) for key in MODGAP_LOSS_KEYS if key in kwargs}
        original_init(self, *args, **kwargs)
        self.modgap_options = dict(settings, **modgap_options)

    @functools.wraps(original_forward)
    def forward(self, outputs):
        out = original_forward(self, outputs)
        options = getattr(self, "modgap_options", settings)
        terms = modgap_terms(outputs, **options)
        out["loss"] = out["loss"] + terms["loss_atp"] + terms["loss_cu"]
        out.update(terms)
        return out

    cls.__init__, cls.forward = __init__, forward
    _installed.update(cls=cls, init=original_init, forward=original_forward)
    return cls


def uninstall() -> None:
    """Restore CoMMLoss's own methods (no-op when not installed)."""
    if "cls" in _installed:
        cls = _installed.pop("cls")
        cls.__init__, cls.forward = _installed.pop("init"), _installed.pop("forward")
