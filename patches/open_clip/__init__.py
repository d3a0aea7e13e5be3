"""modgap inside OpenCLIP 3.3.0's own training loop, without forking it.

    python -m modgap.patches.open_clip <any open_clip_train.main arguments> \\
        --modgap-config configs/train.yaml [--modgap-override loss=ours --modgap-override loss.lambda2=0.5] \\
        [--modgap-lambda1 1.0] [--modgap-lambda2 1.0] [--modgap-fixed-temperature 0.07] [--modgap-val-labels FILE]

Works under ``torchrun ... -m modgap.patches.open_clip``. What it patches (names bound in
``open_clip_train.main`` / ``open_clip_train.train``, see ../shared/notes/openclip.md §7):

* ``parse_args``: our ``--modgap-*`` options are taken out (``allow_abbrev=False``) before OpenCLIP's
  strict parser sees the rest; the composed config lands on ``args.modgap`` (and so in params.txt);
* ``create_model_and_transforms``: a fixed-temperature loss config (CLIP (FT), ours, NotAGap) sets
  ``logit_scale = log(1 / temperature)`` and freezes it before the optimiser is built;
* ``create_loss``: OpenCLIP's loss is wrapped by :class:`ModGapLoss`, which adds ``atp_loss`` and
  ``cu_loss`` (or NotAGap's terms) to the dict OpenCLIP sums and logs;
* ``train_one_epoch``: tells the loss the epoch (for the scheduled variant) and, with
  ``loss.temperature_schedule``, wraps the per-step scheduler to set the scheduled temperature;
* ``get_clip_metrics``: adds gap, Cos TP, RMG, AV (and V-measure / kNN when ``--modgap-val-labels`` is
  given) to the validation metrics, so they reach the console, TensorBoard/W&B and results.jsonl.
"""
from __future__ import annotations

from .launcher import SUPPORTED_OPEN_CLIP_VERSION, apply_patches, main  # noqa: F401
from .loss import ModGapLoss  # noqa: F401
