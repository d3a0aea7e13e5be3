"""modgap inside GRAM (github.com/ispamm/GRAM) and VAST, which share one code base, without forking them.

* :func:`install` wraps ``GRAM.forward_ret`` / ``VAST.forward_ret``: the loss dict that GRAM's pipeline sums
  and logs gains ``loss_modgap_atp`` and ``loss_modgap_cu`` (and, with ``itc="cosine"``, the pairwise
  cosine InfoNCE in place of the volume loss); loss.py documents the choices;
* :func:`install_evaluation` adds the gap measures (and, with a category map, V-measure / kNN) to the
  validation log of ``evaluate_ret`` (evaluation.py);
* ``torchrun ... -m modgap.patches.gram --root GRAM -- <run.py arguments>`` does both (launcher.py).
"""
from __future__ import annotations

from .evaluation import gap_log, record  # noqa: F401
from .evaluation import install as install_evaluation  # noqa: F401
from .evaluation import uninstall as uninstall_evaluation  # noqa: F401
from .loss import DEFAULTS, MODEL_CLASSES, cosine_itc, install, modgap_terms, options_of, uninstall  # noqa: F401
