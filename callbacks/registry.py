"""Callbacks, one module per feature, each with ``register(app, sources)``; listed in order."""

from __future__ import annotations

from dash import Dash

from callbacks import audit, filters, i18n, live, map_, panels, router, tables, wall
from dashboard.sources import Sources

MODULES = (router, i18n, filters, panels, tables, map_, live, wall, audit)


def register_all(app: Dash, sources: Sources) -> None:
    """Register every feature's callbacks on ``app``."""
    for module in MODULES:
        module.register(app, sources)
