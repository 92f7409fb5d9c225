"""The ingest API: ``POST /api/v1/events`` (docs/contract.md, section 2) as a FastAPI router.

The lead includes the router into the Dash app's FastAPI server; nothing is built at import.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from redis import Redis

from dashboard.settings import Settings
from datasources.events import Registry, check_events
from datasources.stream import append_events, key


def _error(status: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status)


def build_api_router(
    settings: Settings,
    redis_factory: Callable[[], Redis],
    registry_factory: Callable[[], Registry | None] | None = None,
) -> APIRouter:
    """Return a router with the ingest route; ``registry_factory`` enables referential checks."""
    router = APIRouter()
    token = settings.resolved_ingest_token.encode()
    stream = key(settings.district_code, "events")
    clients: dict[str, Redis] = {}

    def redis() -> Redis:
        if "client" not in clients:
            clients["client"] = redis_factory()
        return clients["client"]

    def authorised(request: Request) -> bool:
        header = request.headers.get("authorization", "")
        scheme, _, given = header.partition(" ")
        return scheme.lower() == "bearer" and secrets.compare_digest(given.strip().encode(), token)

    @router.post("/api/v1/events", status_code=202)
    async def ingest_events(request: Request) -> JSONResponse:
        """Accept one event or an array of events into the stream."""
        if not authorised(request):
            return JSONResponse(
                {"error": "a valid ingest token is required (Authorization: Bearer …)"},
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > settings.ingest_max_bytes:
            return _error(413, f"body larger than {settings.ingest_max_bytes} bytes")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > settings.ingest_max_bytes:
                return _error(413, f"body larger than {settings.ingest_max_bytes} bytes")
        try:
            data = json.loads(body)
        except (ValueError, RecursionError):
            return _error(400, "body is not valid JSON")
        if isinstance(data, dict):
            items: list[Any] = [data]
        elif isinstance(data, list):
            items = data
        else:
            return _error(400, "body must be a JSON object (one event) or an array of events")
        if len(items) > settings.ingest_max_events:
            return _error(413, f"more than {settings.ingest_max_events} events in one request")
        registry = registry_factory() if registry_factory else None
        valid, rejected = await run_in_threadpool(
            check_events, items, dt.datetime.now(dt.UTC), registry
        )
        events = [e for _, e in valid]
        await run_in_threadpool(append_events, redis(), stream, events, settings.stream_maxlen)
        accepted = [e.id for e in events]
        if rejected:
            return JSONResponse(
                {
                    "accepted": accepted,
                    "rejected": [
                        {"index": r.index, "id": r.id, "errors": r.errors} for r in rejected
                    ],
                },
                status_code=422,
            )
        return JSONResponse({"accepted": accepted}, status_code=202)

    return router
