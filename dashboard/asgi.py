"""The one module that builds a global app: the entry point uvicorn imports (``wushi web``)."""

from __future__ import annotations

from fastapi import FastAPI

from dashboard.settings import Settings
from dashboard.web import create_web


def app_factory() -> FastAPI:
    """Build the ASGI app from the environment's settings (uvicorn ``--factory``)."""
    return create_web(Settings())
