"""Callbacks, one module per feature, each with ``register(app, sources)``; listed in order."""

from __future__ import annotations

from typing import Any

from callbacks import audit, filters, i18n, live, map_, panels, router, tables, wall

MODULES = (router, i18n, filters, panels, tables, map_, live, wall, audit)


def register_all(app: Any, sources: Any) -> None:
    """Register every feature's callbacks on ``app``."""
    for module in MODULES:
        module.register(app, sources)
