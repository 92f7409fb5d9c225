"""The one module that builds a global app: the entry point uvicorn imports (``wushi web``)."""

from __future__ import annotations

from fastapi import FastAPI

from dashboard.logs import configure_logging
from dashboard.settings import Settings
from dashboard.web import create_web


def app_factory() -> FastAPI:
    """Build the ASGI app from the environment's settings (uvicorn ``--factory``).

    Called once in every web process (``wushi web --workers N`` starts N), so each process sets
    up its own logging; all state the processes share lives in SQL and Redis.
    """
    settings = Settings()
    configure_logging(settings)
    return create_web(settings)
