"""Pure functions that build component trees from plain values; component ids in ``ids``."""
