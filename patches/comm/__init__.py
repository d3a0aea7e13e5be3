"""modgap inside CoMM (github.com/Duplums/CoMM, ICLR 2025) without forking it (``modgap.patches.comm``).

* :func:`install` patches ``losses.comm_loss.CoMMLoss`` in place: ``loss`` gains lambda1 L_ATP +
  lambda2 L_CU of the per-modality embeddings, and ``loss_atp``, ``loss_cu``, ``gap`` are logged beside
  CoMM's keys (loss.py documents the choices the paper leaves open);
* :func:`make_gap_callback` logs the dataset-level gap, Cos TP, RMG, V-measure and kNN accuracy after
  each validation epoch (callback.py);
* ``python -m modgap.patches.comm --comm-root CoMM -- <CoMM's Hydra overrides>`` does both around CoMM's
  own ``main_multibench.py`` (launcher.py).

CoMM has no license: nothing of it is copied here; it is imported from the user's checkout.
"""
from __future__ import annotations

from .callback import embed_modalities, make_gap_callback, summarize  # noqa: F401
from .loss import DEFAULTS, MODGAP_LOSS_KEYS, install, modgap_terms, modality_embeddings, uninstall  # noqa: F401
