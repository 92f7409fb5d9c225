"""The login wall: one ASGI middleware around the whole server, and Dash's socket hooks.

``AuthMiddleware`` checks the session cookie (or a wall's kiosk token) on every HTTP request
and WebSocket except the public paths, refuses what the user may not open, and puts the
``SessionUser`` and the client's address into ``datasources.identity.CURRENT_USER`` and
``CURRENT_ADDRESS`` for the request. Dash's WebSocket hooks check the session again on connect
and on every message, and the middleware every 20 s whatever the page sends. See
docs/security.md.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import MutableMapping
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

from dash import hooks as dash_hooks
from fastapi.responses import JSONResponse, RedirectResponse, Response
from redis import Redis
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.requests import cookie_parser

from dashboard.dash_requests import (
    DASH_CALLBACK_PATH,
    MAX_CALLBACK_BODY,
    ASGIApp,
    ASGIScope,
    Receive,
    Send,
    read_body,
    replay_body,
)
from dashboard.kiosk_guard import (
    KIOSK_INVALID,
    KIOSK_ONLY_WALL,
    WALL_PATH,
    KioskGuard,
    kiosk_param,
    page_path,
)
from dashboard.login import message_page
from dashboard.origin import client_address, is_https, parse_trusted_proxies
from dashboard.sessions import (
    CACHE_TTL_S,
    KIOSK_COOKIE,
    KIOSK_COOKIE_MAX_AGE_S,
    REGISTRY,
    SessionStoreUnavailable,
    sessions_for,
)
from dashboard.settings import Settings
from datasources.audit import record
from datasources.identity import CURRENT_ADDRESS, CURRENT_USER, SessionUser
from layouts.i18n import both

log = logging.getLogger("wushi.auth")

# /metrics checks its own bearer token or loopback client (dashboard/metrics.py).
PUBLIC_PATHS = frozenset(
    {
        "/login",
        "/logout",
        "/_favicon.ico",
        "/favicon.ico",
        "/healthz",
        "/metrics",
        "/api/v1/events",
    }
)
PUBLIC_PREFIXES = ("/assets/", "/_dash-component-suites/")


# Pages only a district admin (a person, not a kiosk) may open; others get 403.
DISTRICT_ADMIN_PAGES = frozenset({"/audit"})
# How often an open WebSocket's login or kiosk token is checked again, whether or not the page
# sends anything (with the 10 s cache, a revoked token's socket closes within ~30 s).
SOCKET_RECHECK_S = 20.0
# The close code and reasons of a socket whose login or token ended; Dash's client does not
# reconnect after 4001, and the page's status badge shows "disconnected" for these reasons.
ENDED_CODE = 4001


def _is_public(path: str) -> bool:
    if path in PUBLIC_PATHS:
        return True
    if not path.startswith(PUBLIC_PREFIXES):
        return False
    # "/assets/../_dash-layout" must not count as a static file.
    return not any(seg in (".", "..") for seg in path.split("/"))


DISTRICT_ONLY = both("district_only")


# --- The middleware --------------------------------------------------------------------------


class AuthMiddleware:
    """Require a valid session on every HTTP request and WebSocket except the public paths.

    A wall screen's kiosk token counts too, but only for what ``/wall`` needs (``kiosk_guard``);
    ``/wall?kiosk=TOKEN`` exchanges a token for the kiosk cookie. Open sockets are checked again
    every ``socket_recheck_s`` and closed (4001) when their login or token has ended.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        settings: Settings,
        engine: Engine,
        redis: Redis | None = None,
        cache_ttl_s: float = CACHE_TTL_S,
        socket_recheck_s: float = SOCKET_RECHECK_S,
        kiosk_guard: KioskGuard | None = None,
    ) -> None:
        self.app = app
        self._engine = engine  # keeps it alive for the sessions, which refer to it weakly
        self._sessions = sessions_for(settings, engine, redis)
        # The wall's component ids, given by create_web; without them kiosks run no callback.
        self._kiosk_guard = kiosk_guard or KioskGuard()
        self._ttl_s = cache_ttl_s
        self._recheck_s = socket_recheck_s
        self._proxies = parse_trusted_proxies(settings.trusted_proxies)

    async def __call__(self, scope: ASGIScope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        user: SessionUser | None = None
        if not _is_public(path):
            if scope["type"] == "http" and page_path(path) == WALL_PATH and kiosk_param(scope):
                await self._open_kiosk(scope, receive, send)
                return
            cookies = cookie_parser(Headers(scope=scope).get("cookie", ""))
            try:
                user = await self._sessions.resolve_cookies(cookies, self._ttl_s)
            except SessionStoreUnavailable:
                await _refuse(scope, receive, send, 503)
                return
            if user is None:
                await _refuse(scope, receive, send, 401)
                return
            if user.kiosk:
                body = None
                if scope["type"] == "http" and path == DASH_CALLBACK_PATH:
                    body = await read_body(receive, MAX_CALLBACK_BODY)
                    receive = replay_body(body or b"", receive)
                status = self._kiosk_guard.refusal(
                    scope["type"], scope.get("method", "GET"), path, body
                )
                if status:
                    await _forbid(scope, receive, send, status, KIOSK_ONLY_WALL)
                    return
                if scope["type"] == "http" and page_path(path) == WALL_PATH:
                    # Each load of the wall renews the cookie, so a screen keeps it for good.
                    token = cookies.get(KIOSK_COOKIE, "")
                    send = _adding_header(send, self._kiosk_cookie(scope, token))
            elif page_path(path) in DISTRICT_ADMIN_PAGES and user.role != "district":
                await _forbid(scope, receive, send, 403, DISTRICT_ONLY)
                return
        reset = CURRENT_USER.set(user)
        reset_address = CURRENT_ADDRESS.set(client_address(scope, self._proxies))
        try:
            if scope["type"] == "websocket" and user is not None:
                await self._guarded_socket(scope, receive, send, user)
            else:
                await self.app(scope, receive, send)
        finally:
            CURRENT_ADDRESS.reset(reset_address)
            CURRENT_USER.reset(reset)

    def _kiosk_cookie(self, scope: ASGIScope, token: str) -> tuple[bytes, bytes]:
        response = Response()
        response.set_cookie(
            KIOSK_COOKIE,
            token,
            max_age=KIOSK_COOKIE_MAX_AGE_S,
            path="/",
            secure=is_https(scope, self._proxies),
            httponly=True,
            samesite="lax",
        )
        return next((k, v) for k, v in response.raw_headers if k == b"set-cookie")

    async def _open_kiosk(self, scope: ASGIScope, receive: Receive, send: Send) -> None:
        """Answer ``/wall?kiosk=TOKEN``: set the kiosk cookie and go to the wall without it."""
        query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        token = next((v for k, v in query if k == "kiosk"), "")
        rest = [(k, v) for k, v in query if k != "kiosk"]
        address = client_address(scope, self._proxies)
        response: Response
        try:
            user = await run_in_threadpool(self._sessions.load_kiosk, token)
            if user is not None:
                await run_in_threadpool(
                    record,
                    self._engine,
                    action="kiosk.open",
                    username=user.username,
                    address=address,
                    area_code=user.area_code,
                    detail={"kiosk": user.display_name},
                )
        except (SessionStoreUnavailable, SQLAlchemyError, OSError) as exc:
            log.error("cannot open a kiosk from %s: %r", address, exc)
            await _refuse(scope, receive, send, 503)
            return
        if user is None:
            log.warning("refused an unknown or revoked kiosk token from %s", address)
            response = message_page(KIOSK_INVALID, 403)
        else:
            log.info("kiosk %s opened the wall from %s", user.display_name, address)
            response = RedirectResponse(
                WALL_PATH + ("?" + urlencode(rest) if rest else ""), status_code=303
            )
            response.raw_headers.append(self._kiosk_cookie(scope, token))
        response.headers["Cache-Control"] = "no-store"
        response.headers["Referrer-Policy"] = "no-referrer"
        await response(scope, receive, send)

    async def _guarded_socket(
        self, scope: ASGIScope, receive: Receive, send: Send, user: SessionUser
    ) -> None:
        """Run the socket, closing it (4001) once its login or kiosk token has ended.

        Dash checks sessions only when the page sends something (``check_socket_message``);
        this checks every ``socket_recheck_s`` whatever the page does, so a revoked wall that
        sends nothing still stops receiving. After the close the app's further messages are
        dropped, and the next thing it receives is the disconnect.
        """
        cookies = cookie_parser(Headers(scope=scope).get("cookie", ""))
        closed = False

        async def guarded_send(message: MutableMapping[str, Any]) -> None:
            nonlocal closed
            if closed:
                return
            if message["type"] == "websocket.close":
                closed = True
            await send(message)

        async def guarded_receive() -> MutableMapping[str, Any]:
            message = await receive()
            if closed and message["type"] != "websocket.disconnect":
                return {"type": "websocket.disconnect", "code": ENDED_CODE}
            return message

        async def watch() -> None:
            while not closed:
                await asyncio.sleep(self._recheck_s)
                try:
                    now = await self._sessions.resolve_cookies(cookies, self._ttl_s)
                except SessionStoreUnavailable:
                    continue  # keep the screen while the store is down; HTTP fails closed
                if now is None or _identity(now) != _identity(user):
                    log.info("closing the socket of %s: %s", user.username, _ended(user))
                    await guarded_send(
                        {"type": "websocket.close", "code": ENDED_CODE, "reason": _ended(user)}
                    )
                    return

        watcher = asyncio.create_task(watch())
        try:
            await self.app(scope, guarded_receive, guarded_send)
        finally:
            watcher.cancel()


async def _refuse(scope: ASGIScope, receive: Receive, send: Send, status: int) -> None:
    if scope["type"] == "websocket":
        # Closing before accept makes the server answer the handshake with HTTP 403; 1013 (try
        # again later) lets Dash's client retry when only the session store is down.
        code = 1013 if status == 503 else 4401
        await send({"type": "websocket.close", "code": code, "reason": "login required"})
        return
    headers = Headers(scope=scope)
    path = scope["path"]
    is_page = (
        scope["method"] in ("GET", "HEAD")
        and not path.startswith(("/_dash-", "/api/"))
        and "text/html" in headers.get("accept", "")
    )
    response: Response
    if status == 503:
        response = JSONResponse({"error": "session store unavailable"}, status_code=503)
    elif is_page:
        query = scope.get("query_string", b"").decode("latin-1")
        target = path + ("?" + query if query else "")
        response = RedirectResponse("/login?next=" + quote(target, safe=""), status_code=303)
    else:
        response = JSONResponse({"error": "login required"}, status_code=401)
    response.headers["Cache-Control"] = "no-store"
    await response(scope, receive, send)


def _adding_header(send: Send, header: tuple[bytes, bytes]) -> Send:
    async def wrapped(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            message = dict(message)
            message["headers"] = [*message.get("headers", []), header]
        await send(message)

    return wrapped


async def _forbid(scope: ASGIScope, receive: Receive, send: Send, status: int, why: str) -> None:
    """Refuse a logged-in request: 403 (a page, JSON or a refused socket), or 204 for no-op."""
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 4403, "reason": "forbidden"})
        return
    response: Response
    if status == 204:
        response = Response(status_code=204)
    elif scope["method"] in ("GET", "HEAD") and "text/html" in Headers(scope=scope).get(
        "accept", ""
    ):
        response = message_page(why, 403)
    else:
        response = JSONResponse({"error": "forbidden"}, status_code=403)
    response.headers["Cache-Control"] = "no-store"
    await response(scope, receive, send)


# --- Dash WebSocket hooks --------------------------------------------------------------------


def _identity(user: SessionUser) -> tuple[str, str, str | None, str, bool]:
    return user.username, user.role, user.area_code, user.session_id, user.kiosk


def _ended(user: SessionUser | None) -> str:
    """Return the close reason for a socket whose login or token ended."""
    return "kiosk revoked" if user is not None and user.kiosk else "session ended"


async def _socket_user(websocket: Any) -> SessionUser | None:
    sessions = REGISTRY.hook_sessions
    if sessions is None:
        return None
    return await sessions.resolve_cookies(websocket.cookies, REGISTRY.hook_ttl_s)


async def check_socket_connect(websocket: Any) -> bool | tuple[int, str]:
    """Allow a Dash socket only with a valid session (Dash hook ``websocket_connect``)."""
    try:
        user = await _socket_user(websocket)
    except SessionStoreUnavailable:
        return (1013, "session store unavailable")
    return True if user is not None else (4401, "login required")


async def check_socket_message(websocket: Any, message: Any) -> bool | tuple[int, str]:
    """Close a Dash socket whose session ended or changed (Dash hook ``websocket_message``)."""
    try:
        user = await _socket_user(websocket)
    except SessionStoreUnavailable:
        return (1013, "session store unavailable")
    current = CURRENT_USER.get()
    if user is None:
        # 4001: Dash's client does not reconnect; the page must be reloaded (to the login).
        return (ENDED_CODE, _ended(current))
    if current is not None and _identity(current) != _identity(user):
        return (ENDED_CODE, "session changed")
    return True


def register_websocket_hooks(
    settings: Settings,
    engine: Engine,
    redis: Redis | None = None,
    *,
    cache_ttl_s: float = CACHE_TTL_S,
) -> None:
    """Make Dash's socket hooks check sessions against these settings (registered once)."""
    sessions = sessions_for(settings, engine, redis)
    with REGISTRY.lock:
        REGISTRY.hook_sessions = sessions
        REGISTRY.hook_engine = engine
        REGISTRY.hook_ttl_s = cache_ttl_s
        if not REGISTRY.hooks_registered:
            dash_hooks.websocket_connect()(check_socket_connect)
            dash_hooks.websocket_message()(check_socket_message)
            REGISTRY.hooks_registered = True
