"""Integrations of modgap into existing training code bases, without forking them (``modgap.patches``)."""
from ._upstream import LOSS_KEYS, check_loss_config  # noqa: F401  (scripts check their loss sections too)
