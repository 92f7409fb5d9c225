"""The web process: the FastAPI server with the Dash app, the HTTP API, logins and health.

``create_web(settings)`` returns the ASGI application; ``uvicorn`` serves it (``wushi web``).
"""

from __future__ import annotations

import gzip
import json
import logging
import threading
import time
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from sqlalchemy import text
from starlette.middleware.gzip import GZipMiddleware

from dashboard.settings import Settings
from dashboard.sources import Sources

log = logging.getLogger("wushi.web")

LEVEL_ROUTES = {"grids": "grid", "villages": "village", "towns": "town"}


def build_sources(settings: Settings, redis_url: str | None = None) -> Sources:
    """Connect to the configured database and Redis."""
    from dashboard.embedded_redis import redis_from_settings
    from datasources.db import make_engine

    url = redis_url or settings.redis_url
    if not url:
        raise RuntimeError(
            "no Redis URL: set WUSHI_REDIS_URL, or run `wushi demo`, which starts an embedded one"
        )
    engine = make_engine(settings.resolved_database_url, pool_size=10, max_overflow=20)
    return Sources(settings, engine, redis_from_settings(settings, url), url)


def _geojson_bytes(sources: Sources, area: Any, level: str) -> bytes:
    """Return the gzipped GeoJSON of one level inside ``area``, with the hover's staff names."""
    from datasources import panels
    from datasources.geography import load_geography
    from geo.geojson import to_feature_collection

    geography = sources.cached(
        "geography", lambda: load_geography(sources.engine, sources.district), long=True
    )
    fc = to_feature_collection(geography, level)
    if area.level != "district":
        fc["features"] = [f for f in fc["features"] if _inside(f["properties"], area.code)]
    if level == "grid":
        staff = sources.cached(
            "grid_directory", lambda: panels.grid_directory(sources.engine), long=True
        )
        by_code = {row["code"]: row for row in staff.to_dict("records")}
        for feature in fc["features"]:
            row = by_code.get(feature["properties"]["code"], {})
            feature["properties"].update(
                leader=row.get("grid_leader"),
                leader_phone=row.get("grid_leader_phone"),
                worker=row.get("grid_worker"),
                worker_phone=row.get("grid_worker_phone"),
            )
    body = json.dumps(fc, ensure_ascii=False, separators=(",", ":")).encode()
    return gzip.compress(body, compresslevel=6, mtime=0)


def _inside(props: dict[str, Any], code: str) -> bool:
    own = str(props.get("code", ""))
    return own.startswith(code) or code.startswith(own)


def add_routes(server: FastAPI, sources: Sources) -> None:
    """Add health, the boundary layers and the ingest API to the server (before Dash's)."""
    from dashboard.api import build_api_router
    from dashboard.auth import CURRENT_USER, clamp_area

    settings = sources.settings
    server.include_router(build_api_router(settings, lambda: sources.redis))
    cache: dict[tuple[str, str, str], bytes] = {}
    lock = threading.Lock()

    def layer(kind: str):
        level = LEVEL_ROUTES[kind]

        async def route(request: Request) -> Response:
            user = CURRENT_USER.get()
            if user is None:
                return JSONResponse({"error": "login required"}, status_code=401)
            try:
                area = clamp_area(user, sources.engine, district_code=sources.district)
            except PermissionError:
                return JSONResponse({"error": "forbidden"}, status_code=403)
            version = sources.geometry_version()
            key = (version, level, area.code)
            with lock:
                body = cache.get(key)
            if body is None:
                body = _geojson_bytes(sources, area, level)
                with lock:
                    cache[key] = body
            headers = {
                "Content-Type": "application/geo+json",
                "Cache-Control": "private, max-age=86400",
                "ETag": f'"{version}-{area.code}"',
                "Vary": "Cookie",
            }
            if request.headers.get("if-none-match") == headers["ETag"]:
                return Response(status_code=304, headers=headers)
            if "gzip" in request.headers.get("accept-encoding", ""):
                return Response(body, headers=headers | {"Content-Encoding": "gzip"})
            return Response(gzip.decompress(body), headers=headers)

        route.__name__ = f"{kind}_geojson"
        return route

    for kind in LEVEL_ROUTES:
        server.add_api_route(f"/api/v1/{kind}.geojson", layer(kind), methods=["GET"])

    @server.get("/healthz", include_in_schema=False)
    def healthz() -> JSONResponse:
        status: dict[str, Any] = {"status": "ok", "district": sources.district}
        failing = []
        try:
            with sources.engine.connect() as conn:
                conn.execute(text("select 1"))
            status["database"] = "ok"
        except Exception as exc:
            failing.append("database")
            status["database"] = type(exc).__name__
        try:
            sources.redis.ping()
            status["redis"] = "ok"
        except Exception as exc:
            failing.append("redis")
            status["redis"] = type(exc).__name__
        if failing:
            status["status"] = "unavailable"
            status["failing"] = failing
            return JSONResponse(status, status_code=503)
        return JSONResponse(status)


def start_warmer(sources: Sources, every_s: float = 50.0) -> threading.Thread:
    """Keep the common views' charts ready in the background (a daemon thread)."""
    from callbacks.panels import warm_figures

    def loop() -> None:
        time.sleep(5.0)  # let the server answer its first pages before warming
        while True:
            try:
                warm_figures(sources)
            except Exception:
                log.exception("warming the charts failed; trying again later")
            time.sleep(every_s)

    thread = threading.Thread(target=loop, name="wushi-warm-figures", daemon=True)
    thread.start()
    return thread


def create_web(settings: Settings, redis_url: str | None = None, *, warm: bool = True) -> FastAPI:
    """Return the ASGI app: FastAPI with the API, logins, the Dash app, and the auth wall."""
    from dashboard.app import create_app
    from dashboard.auth import AuthMiddleware, register_auth_routes, register_websocket_hooks

    sources = build_sources(settings, redis_url)
    server = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    # Routes go in before Dash: at start-up Dash adds a catch-all GET route that would shadow them.
    add_routes(server, sources)
    register_auth_routes(server, settings=settings, engine=sources.engine, redis=sources.redis)
    register_websocket_hooks(settings=settings, engine=sources.engine, redis=sources.redis)
    create_app(settings, sources, server=server)
    # Level 5: nearly the size of level 9 at a fraction of the CPU (the Plotly bundle is 4.7 MB).
    server.add_middleware(GZipMiddleware, minimum_size=1024, compresslevel=5)
    if warm:
        start_warmer(sources)
    # Added last, so outermost: every HTTP request and WebSocket handshake passes it first.
    server.add_middleware(
        AuthMiddleware, settings=settings, engine=sources.engine, redis=sources.redis
    )
    return server
