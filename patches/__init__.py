"""Integrations of modgap into existing training code bases, without forking them (``modgap.patches``)."""
