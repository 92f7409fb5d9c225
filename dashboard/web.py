"""The web process: the FastAPI server with the Dash app, the HTTP API, logins and health.

``create_web(settings)`` returns the ASGI application; ``uvicorn`` serves it (``wushi web``).
"""

from __future__ import annotations

import gzip
import json
import logging
import threading
import time
from collections.abc import Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qs

from dash.fingerprint import check_fingerprint
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CollectorRegistry
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import MutableHeaders
from starlette.middleware.gzip import GZipMiddleware

from dashboard import metrics
from dashboard.api import build_api_router
from dashboard.app import create_app, wall_layouts, warm_figures
from dashboard.dash_requests import DASH_CALLBACK_PATH, MAX_CALLBACK_BODY, read_body, replay_body
from dashboard.kiosk_guard import KioskGuard
from dashboard.login import register_login_routes
from dashboard.logs import RequestLogMiddleware
from dashboard.maps import geojson_bytes, layer_version, map_state
from dashboard.metrics import instrument_callbacks
from dashboard.middleware import AuthMiddleware, register_websocket_hooks
from dashboard.settings import Settings
from dashboard.sources import Sources, build_sources
from datasources.identity import CURRENT_USER, clamp_area
from layouts import ids

log = logging.getLogger("wushi.web")

LEVEL_ROUTES = {"grids": "grid", "villages": "village", "towns": "town"}
IMMUTABLE = "public, max-age=31536000, immutable"
IMMUTABLE_PRIVATE = "private, max-age=31536000, immutable"


def add_routes(server: FastAPI, sources: Sources) -> Callable[[], None]:
    """Add health, the boundary layers and the ingest API to the server (before Dash's).

    Returns a function that builds the district's map layers ahead of the first page that
    asks for them (the warmer calls it at start-up).
    """
    settings = sources.settings
    server.include_router(build_api_router(settings, lambda: sources.redis))
    cache: dict[tuple[str, str], bytes] = {}
    lock = threading.Lock()

    def layer_body(area: Any, level: str) -> tuple[str, bytes]:
        """Return (version, gzipped body) of one level of an area's map, built once."""
        state = map_state(sources)
        version = layer_version(state, area.code)
        key = (version, level)
        with lock:
            body = cache.get(key)
        if body is None:
            body = geojson_bytes(sources, area, level, state)
            with lock:
                if len(cache) > 500:
                    cache.clear()  # old versions: forget them all rather than track ages
                cache[key] = body
        return version, body

    def prepare_district() -> None:
        """Build the district's layers now: after a restart every wall asks at once, and the
        first build (geometry from the database, JSON, gzip) took 0.6–0.8 s of a cold /wall."""
        area = sources.area(None, None, None)
        for level in LEVEL_ROUTES.values():
            layer_body(area, level)

    def layer(kind: str):
        level = LEVEL_ROUTES[kind]

        def answer(user: Any) -> tuple[str, bytes] | None:
            """Return (version, gzipped body) for the user's area; None when it has none."""
            try:
                area = clamp_area(user, sources.engine, district_code=sources.district)
            except PermissionError:
                return None
            return layer_body(area, level)

        async def route(request: Request) -> Response:
            user = CURRENT_USER.get()
            if user is None:
                return JSONResponse({"error": "login required"}, status_code=401)
            # Database reads and the first build of a layer stay off the event loop.
            found = await run_in_threadpool(answer, user)
            if found is None:
                return JSONResponse({"error": "forbidden"}, status_code=403)
            version, body = found
            # The URL the pages use carries the current version: such an answer never changes,
            # so the browser keeps it for a year. Any other URL (an old page, no ?v=) must
            # revalidate. Per user area, so private (never in a shared cache).
            current = request.query_params.get("v") == version
            headers = {
                "Content-Type": "application/geo+json",
                "Cache-Control": IMMUTABLE_PRIVATE if current else "private, no-cache",
                "ETag": f'"{version}"',
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

    stream_registry = CollectorRegistry(auto_describe=False)
    stream_registry.register(metrics.StreamCollector(lambda: sources.redis, settings))

    @server.get("/metrics", include_in_schema=False)
    def metrics_route(request: Request) -> Response:
        """Prometheus text format: bearer token, or loopback only (see dashboard/metrics.py)."""
        peer = request.client.host if request.client else None
        status = metrics.allowed(settings, request.headers, peer)
        if status != 200:
            refused = {"Cache-Control": "no-store"}
            if status == 401:
                refused["WWW-Authenticate"] = "Bearer"
            return Response(
                metrics.REFUSED[status],
                status_code=status,
                media_type="application/json",
                headers=refused,
            )
        return Response(
            metrics.render_web(stream_registry),
            media_type=metrics.CONTENT_TYPE,
            headers={"Cache-Control": "no-store"},
        )

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

    return prepare_district


class KnownCallbackMiddleware:
    """Answer a callback request naming no server callback with 400, not Dash's 500.

    Dash looks the request's ``output`` up in its callback map and fails with a KeyError (a
    500 and a stack trace in the log) for an output it does not know or one a clientside
    callback fills in the browser. Only a forged or stale request does that.
    """

    def __init__(self, app: Any, callbacks: Callable[[], MutableMapping[str, Any]]) -> None:
        self.app = app
        self._callbacks = callbacks

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != DASH_CALLBACK_PATH:
            await self.app(scope, receive, send)
            return
        body = await read_body(receive, MAX_CALLBACK_BODY)
        problem = None
        if body is None:
            problem = (413, "callback request too large")
        else:
            try:
                output = json.loads(body).get("output")
            except (ValueError, AttributeError):
                output = None
            known = self._callbacks().get(output) if isinstance(output, str) else None
            if not known or "callback" not in known:
                problem = (400, "no such server callback")
        if problem is not None:
            log.warning("refused a callback request: %s", problem[1])
            await JSONResponse({"error": problem[1]}, status_code=problem[0])(scope, receive, send)
            return
        await self.app(scope, replay_body(body or b"", receive), send)


class StaticCacheMiddleware:
    """Let browsers keep versioned static files for a year (``immutable``).

    Dash fingerprints ``/_dash-component-suites/…`` file names with the package version and
    the file's time (and already sends ``public, max-age=31536000``), and adds ``?m=<mtime>``
    to every ``/assets/…`` URL it writes into the page; Starlette's static files send no
    ``Cache-Control`` at all. A versioned URL's content never changes, so both get
    ``public, max-age=31536000, immutable``; an asset without ``?m=`` must revalidate.
    """

    def __init__(self, app: Any) -> None:
        self.app = app
        self._fingerprinted = lambda path: check_fingerprint(path)[1]

    def _policy(self, scope: MutableMapping[str, Any]) -> str | None:
        if scope["type"] != "http" or scope.get("method") not in ("GET", "HEAD"):
            return None
        path = scope["path"]
        if path.startswith("/_dash-component-suites/"):
            return IMMUTABLE if self._fingerprinted(path) else None
        if path.startswith("/assets/"):
            query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            return IMMUTABLE if query.get("m") else "no-cache"
        return None

    async def __call__(self, scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
        policy = self._policy(scope)
        if policy is None:
            await self.app(scope, receive, send)
            return

        async def with_policy(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start" and message["status"] in (200, 304):
                MutableHeaders(scope=message)["Cache-Control"] = policy
            await send(message)

        await self.app(scope, receive, with_policy)


# The warmer works in slices of one figure (~5–30 ms) and rests WARM_REST times as long after
# each: a pass of ~0.7 s of CPU held the GIL in one piece and a /wall load that met it took
# 1.8–2.4 s instead of 0.7 (docs/performance.md, "The warmer").
WARM_REST = 3.0
WARM_REST_MAX_S = 0.5


def warm_pace(took_s: float) -> None:
    """Rest after one slice of the warmer's work, so the pages' requests run in between."""
    time.sleep(min(WARM_REST_MAX_S, took_s * WARM_REST))


def start_warmer(
    sources: Sources,
    warm: Callable[..., object],
    every_s: float = 50.0,
    first: Callable[[], None] | None = None,
) -> threading.Thread:
    """Keep the common views' charts ready in the background (a daemon thread): ``warm`` is
    called as ``warm(sources, pace=warm_pace)`` (the app factory's ``warm_figures``);
    ``first`` runs once at start-up (the district's map layers)."""

    def loop() -> None:
        if first is not None:
            try:
                first()
            except Exception:
                log.exception("preparing the map layers failed; the first page will build them")
        time.sleep(5.0)  # let the server answer its first pages before warming
        while True:
            try:
                warm(sources, pace=warm_pace)
            except Exception:
                log.exception("warming the charts failed; trying again later")
            time.sleep(every_s)

    thread = threading.Thread(target=loop, name="wushi-warm-figures", daemon=True)
    thread.start()
    return thread


def create_web(settings: Settings, redis_url: str | None = None, *, warm: bool = True) -> FastAPI:
    """Return the ASGI app: FastAPI with the API, logins, the Dash app, and the auth wall."""
    sources = build_sources(settings, redis_url)
    server = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    # Routes go in before Dash: at start-up Dash adds a catch-all GET route that would shadow them.
    prepare_layers = add_routes(server, sources)
    register_login_routes(server, settings=settings, engine=sources.engine, redis=sources.redis)
    register_websocket_hooks(settings=settings, engine=sources.engine, redis=sources.redis)
    app = create_app(settings, sources, server=server)
    instrument_callbacks(app)
    server.add_middleware(KnownCallbackMiddleware, callbacks=lambda: app.callback_map)
    server.add_middleware(StaticCacheMiddleware)
    # Level 5: nearly the size of level 9 at a fraction of the CPU (the Plotly bundle is 4.7 MB).
    server.add_middleware(GZipMiddleware, minimum_size=1024, compresslevel=5)
    if warm:
        start_warmer(sources, warm_figures, first=prepare_layers)
    # Every HTTP request and WebSocket handshake passes the auth wall first...
    server.add_middleware(
        AuthMiddleware,
        settings=settings,
        engine=sources.engine,
        redis=sources.redis,
        kiosk_guard=KioskGuard.from_layout(*wall_layouts(), url_id=ids.URL),
    )
    # ...inside the request log, so refused requests are logged and measured too.
    server.add_middleware(RequestLogMiddleware)
    return server
