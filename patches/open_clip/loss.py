"""The loss wrapper: OpenCLIP's loss plus the modgap terms, as entries of OpenCLIP's loss dict."""
from __future__ import annotations

from typing import Optional

import torch
from torch import nn

import modgap

from .._upstream import at_least_float32, check_loss_config


def _gather(image: torch.Tensor, text: torch.Tensor, args) -> tuple[torch.Tensor, torch.Tensor]:
    """All ranks' rows, with ClipLoss's gradient semantics.

    ``gather_with_grad=True``: autograd all_gather, every rank computes the loss of the whole global batch
    and receives world_size x the true gradient for its rows; DDP's averaging then gives exactly the
    gradient of the single-process loss (as OpenCLIP's ClipLoss). ``gather_with_grad=False``: other
    ranks' rows are constants, so the term's gradient is 1/world_size of the single-process one, as
    ClipLoss's in that mode.
    """
    world_size = getattr(args, "world_size", 1)
    if world_size <= 1:
        return image, text
    from open_clip.loss import gather_features
    return gather_features(image, text, local_loss=False, gather_with_grad=args.gather_with_grad,
                           rank=args.rank, world_size=world_size, use_horovod=getattr(args, "horovod", False))


def _linear(epoch_fraction: float, warmup: float, duration: float, start: float, end: float) -> float:
    if epoch_fraction <= warmup:
        return start
    if duration <= 0 or epoch_fraction >= warmup + duration:
        return end
    return start + (end - start) * (epoch_fraction - warmup) / duration


# Losses built from per-modality uniformity, alignment and cross-uniformity terms (configs/loss/*.yaml).
SEPARATE_TERM_LOSSES = ("notagap", "atp_uniformity")


def implemented_settings(name: str) -> tuple:
    """The loss settings ModGapLoss applies for a loss of this name (every other set one is refused)."""
    common = ("contrastive", "sparsify_epochs", "temperature_schedule")
    if name in SEPARATE_TERM_LOSSES:
        return common + ("uniformity", "alignment", "cross_uniformity")
    return common + ("lambda1", "lambda2", "normalize", "anchor") + (("schedule",) if name == "ours_scheduled" else ())


def check_loss(loss_config: dict) -> None:
    """A clear error for a setting the patch would drop (``loss=notagap loss.lambda1=1``, ``+loss.lamda1=1``)."""
    check_loss_config(loss_config, "modgap's OpenCLIP patch", implemented_settings(loss_config.get("name", "ours")))


class ModGapLoss(nn.Module):
    """``base`` (whatever OpenCLIP's create_loss built) plus the terms of the composed loss config.

    Keys added to the loss dict (OpenCLIP sums every value and logs each key; never ``loss``):
    ``atp_loss`` = lambda1 * L_ATP (eq. 7) and ``cu_loss`` = lambda2 * L_CU (eq. 8/9) for ``ours`` and
    ``ours_scheduled``; ``uniformity_loss``, ``alignment_loss`` [``cross_uniformity_loss``] for
    ``notagap`` and ``atp_uniformity`` (Table 11's arm). A ``contrastive`` weight in the config scales the
    base loss's terms (``ours_no_infonce``: 0, Table 8's arm without InfoNCE). ``sparsify_epochs: k`` (any
    loss, default 0; ``+loss.sparsify_epochs=1``) trains the first k epochs on ``sparsify_loss`` alone, Wang &
    Isola's uniformity of all embeddings of both modalities together, and switches to the configured loss
    afterwards (the paper's App. A.3 "Impact of the initialization", Fig. 8). Half-precision features (AMP)
    are cast to float32, outside autocast.
    """

    def __init__(self, base: nn.Module, loss_config: dict, args=None, epochs: Optional[int] = None) -> None:
        super().__init__()
        self.base = base
        self.config = dict(loss_config)
        self.name = self.config.get("name", "ours")
        check_loss(self.config)
        self.args = args
        self.epochs = epochs or getattr(args, "epochs", 1) or 1
        self.epoch = 0  # set by the patched train_one_epoch (0-based)
        # NotAGap's terms (and Table 11's ATP + per-modality uniformity), built once from the fixed config.
        self.separate_terms = (modgap.nn.NotAGapLoss(uniformity=float(self.config.get("uniformity", 0.0)),
                                                     alignment=float(self.config.get("alignment", 0.0)),
                                                     cross_uniformity=float(self.config.get("cross_uniformity", 0.0)),
                                                     t=float(self.config.get("t", 2.0)))
                               if self.name in SEPARATE_TERM_LOSSES else None)

    # ---- the scheduled variant (reference code EXP 10), evaluated per epoch ----
    def weights(self) -> tuple[float, float]:
        lambda1 = float(self.config.get("lambda1", 0.0))
        lambda2 = float(self.config.get("lambda2", 0.0))
        schedule = self.config.get("schedule")
        if self.name != "ours_scheduled" or not schedule:
            return lambda1, lambda2
        progress = self.epoch / max(self.epochs, 1)
        alpha = _linear(progress, schedule["alpha_warmup_fraction"], schedule["alpha_increment_fraction"], 1.0,
                        schedule["alpha_end"])
        beta = _linear(progress, schedule["beta_warmup_fraction"], schedule["beta_decay_fraction"], 1.0, 0.0)
        return lambda1 * alpha, lambda2 * beta

    def modgap_terms(self, image_features: torch.Tensor, text_features: torch.Tensor) -> dict:
        with torch.autocast(device_type=image_features.device.type, enabled=False):
            image, text = _gather(at_least_float32(image_features), at_least_float32(text_features), self.args)
            if self.separate_terms is not None:
                return self.separate_terms.terms(image, text)
            terms = {}
            lambda1, lambda2 = self.weights()
            if lambda1:
                terms["atp_loss"] = lambda1 * modgap.atp_loss([image, text], int(self.config.get("anchor", 0)))
            if lambda2:
                t, normalize = float(self.config.get("t", 2.0)), bool(self.config.get("normalize", True))
                if getattr(self.args, "world_size", 1) > 1:
                    # n x N pairs per rank, partial sums combined across ranks (modgap.distributed), with
                    # ClipLoss's gradient semantics for gather_with_grad on/off.
                    local = [at_least_float32(image_features), at_least_float32(text_features)]
                    cu = modgap.distributed.centroid_uniformity(local, t, normalize,
                                                                gather_with_grad=bool(self.args.gather_with_grad))
                else:
                    cu = modgap.centroid_uniformity([image, text], t, normalize)
                terms["cu_loss"] = lambda2 * cu
            return terms

    def sparsifying(self) -> bool:
        return self.epoch < int(self.config.get("sparsify_epochs", 0))

    def sparsify_term(self, image_features: torch.Tensor, text_features: torch.Tensor) -> torch.Tensor:
        """Wang & Isola's lunif over the union of both modalities' embeddings, t as configured (theirs: 2).
        It spreads the embeddings regardless of their modality."""
        with torch.autocast(device_type=image_features.device.type, enabled=False):
            image, text = _gather(at_least_float32(image_features), at_least_float32(text_features), self.args)
            return modgap.uniformity_loss(torch.cat([image, text]), float(self.config.get("t", 2.0)))

    def forward(self, image_features, text_features, *args, output_dict: bool = False, **kwargs):
        out = self.base(image_features=image_features, text_features=text_features, *args, output_dict=True, **kwargs)
        if not isinstance(out, dict):
            out = {"contrastive_loss": out}
        if self.sparsifying():
            # Fig. 8's first phase: the uniformity term alone. The base loss stays in the graph with weight 0,
            # so a learnable logit_scale still receives a (zero) gradient, as DDP expects of every parameter.
            out = {key: 0.0 * value for key, value in out.items()}
            out["sparsify_loss"] = self.sparsify_term(image_features, text_features)
            return out if output_dict else sum(out.values())
        weight = float(self.config.get("contrastive", 1.0))  # Table 8: 0 drops L^(m->n) (kept in the graph)
        if weight != 1.0:
            out = {key: weight * value for key, value in out.items()}
        out.update(self.modgap_terms(image_features, text_features))
        return out if output_dict else sum(out.values())
