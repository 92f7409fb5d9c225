"""Logins on the web: session cookie, ASGI middleware, /login and /logout, socket checks, scope.

One plain ASGI middleware wraps the whole FastAPI app (HTTP and WebSocket): it checks the signed
``wushi_session`` cookie, re-loads the user (cached a few seconds, so disabling a user or logging
out bites quickly) and puts a ``SessionUser`` into ``CURRENT_USER`` for the request or socket.
Dash's WebSocket hooks check the session again on connect and on every message, and the
middleware every 20 s whatever the page sends. Wall screens without a person use a kiosk token
(``datasources.kiosk``; cookie ``wushi_kiosk``), which opens ``/wall`` only, read-only. See
``docs/security.md``.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import html
import ipaddress
import json
import logging
import secrets
import threading
import time
import weakref
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, parse_qsl, quote, urlencode, urlsplit

from dash import hooks as dash_hooks
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from itsdangerous import BadData, URLSafeTimedSerializer
from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.requests import cookie_parser

from dashboard.settings import Settings
from datasources import kiosk as kiosk_tokens
from datasources import users
from datasources.audit import record
from datasources.kpi import AreaRef, UnknownArea, resolve_area
from datasources.scope import OutOfScope, Scope, own_filter, require
from datasources.scope import allowed as scope_allows
from datasources.users import hash_password, verify_password

__all__ = [
    "CURRENT_ADDRESS",
    "CURRENT_USER",
    "COOKIE_NAME",
    "AuthMiddleware",
    "LoginLimiter",
    "OutOfScope",
    "SessionUser",
    "allowed",
    "clamp_area",
    "client_address",
    "hash_password",
    "register_auth_routes",
    "register_websocket_hooks",
    "safe_next",
    "user_area",
    "user_scope",
    "verify_password",
]

log = logging.getLogger("wushi.auth")

COOKIE_NAME = "wushi_session"
CACHE_TTL_S = 10.0
# How long a confirmed identity outlives an outage of the database or Redis (see _checked).
STORE_OUTAGE_GRACE_S = 300.0
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
MAX_FORM_BYTES = 4096
# Wall screens: the kiosk cookie (the token itself, HttpOnly), and how long the browser keeps it
# (Chrome caps cookies at 400 days; each load of /wall renews it).
KIOSK_COOKIE = "wushi_kiosk"
KIOSK_COOKIE_MAX_AGE_S = 400 * 86400
WALL_PATH = "/wall"
# Pages only a district admin (a person, not a kiosk) may open; others get 403.
DISTRICT_ADMIN_PAGES = frozenset({"/audit"})
# How often an open WebSocket's login or kiosk token is checked again, whether or not the page
# sends anything (with the 10 s cache, a revoked token's socket closes within ~30 s).
SOCKET_RECHECK_S = 20.0
# The close code and reasons of a socket whose login or token ended; Dash's client does not
# reconnect after 4001, and the page's status badge shows "disconnected" for these reasons.
ENDED_CODE = 4001

ASGIScope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[ASGIScope, Receive, Send], Awaitable[None]]


@dataclass(frozen=True)
class SessionUser:
    """The logged-in user of the current request or socket."""

    username: str
    display_name: str
    role: str  # district | town | village
    area_code: str | None  # None for district
    area_level: str  # the level of area_code: district | town | village
    session_id: str
    # A wall screen's kiosk token, not a person: /wall only, read-only (see kiosk_refusal).
    kiosk: bool = False


CURRENT_USER: ContextVar[SessionUser | None] = ContextVar("wushi_current_user", default=None)
# The client's address of the current request or socket (X-Forwarded-For from trusted proxies
# only), for the audit entries callbacks write (an export).
CURRENT_ADDRESS: ContextVar[str | None] = ContextVar("wushi_current_address", default=None)


class SessionStoreUnavailable(RuntimeError):
    """The database or Redis could not be asked whether a session is still valid."""


# --- Where a request comes from --------------------------------------------------------------

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_trusted_proxies(value: str) -> tuple[Network, ...]:
    """Parse ``WUSHI_TRUSTED_PROXIES`` (comma-separated addresses or networks)."""
    return tuple(
        ipaddress.ip_network(item, strict=False)
        for item in (part.strip() for part in value.split(","))
        if item
    )


def _trusted(address: str | None, proxies: tuple[Network, ...]) -> bool:
    if not address or not proxies:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in proxies)


def client_address(scope: ASGIScope, proxies: tuple[Network, ...]) -> str | None:
    """Return the client's address, from ``X-Forwarded-For`` only when the peer is trusted."""
    client = scope.get("client")
    peer = client[0] if client else None
    if not _trusted(peer, proxies):
        return peer
    forwarded = Headers(scope=scope).getlist("x-forwarded-for")
    hops = [h.strip() for line in forwarded for h in line.split(",") if h.strip()]
    # Walk from the nearest hop: the first one that is not a trusted proxy is the client; hops
    # further left were written by the client itself and may be forged.
    for hop in reversed(hops):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            return peer
        if not _trusted(hop, proxies):
            return hop
    return hops[0] if hops else peer


def _is_https(scope: ASGIScope, proxies: tuple[Network, ...]) -> bool:
    if scope.get("scheme") in ("https", "wss"):
        return True
    client = scope.get("client")
    if _trusted(client[0] if client else None, proxies):
        proto = Headers(scope=scope).get("x-forwarded-proto", "")
        return proto.split(",")[0].strip().lower() == "https"
    return False


def safe_next(value: str | None) -> str:
    """Return ``value`` if it is a local path to go to after login, else ``/``."""
    if not value or len(value) > 2000 or not value.startswith("/"):
        return "/"
    # "//host" and "/\\host" are read by browsers as another host.
    if value.startswith("//") or "\\" in value:
        return "/"
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        return "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or parts.path in ("/login", "/logout"):
        return "/"
    return value


def _is_public(path: str) -> bool:
    if path in PUBLIC_PATHS:
        return True
    if not path.startswith(PUBLIC_PREFIXES):
        return False
    # "/assets/../_dash-layout" must not count as a static file.
    return not any(seg in (".", "..") for seg in path.split("/"))


# --- Revoked sessions ------------------------------------------------------------------------


class _Revocations:
    """Session ids ended by logout, kept as long as a cookie could still be presented.

    With Redis: one sorted set ``wushi:{district}:auth:revoked`` (member = session id, score =
    when it may be forgotten), shared by every web process. Without Redis: this process's memory
    only, which suits tests and a single process; every deployment has a Redis (embedded by
    default), so the SQL schema carries no session table.
    """

    def __init__(self, redis: Redis | None, key: str, keep_s: int) -> None:
        self._redis = redis
        self._key = key
        self._keep_s = keep_s
        self._memory: dict[str, float] = {}
        self._lock = threading.Lock()

    def revoke(self, session_id: str) -> None:
        now = time.time()
        if self._redis is not None:
            pipe = self._redis.pipeline(transaction=True)
            pipe.zadd(self._key, {session_id: now + self._keep_s})
            pipe.zremrangebyscore(self._key, "-inf", now)
            pipe.expire(self._key, self._keep_s + 60)
            pipe.execute()
            return
        with self._lock:
            self._memory[session_id] = now + self._keep_s
            for sid in [s for s, until in self._memory.items() if until <= now]:
                del self._memory[sid]

    def is_revoked(self, session_id: str) -> bool:
        if self._redis is not None:
            until = self._redis.zscore(self._key, session_id)
        else:
            with self._lock:
                until = self._memory.get(session_id)
        return until is not None and float(until) > time.time()


# --- Sessions --------------------------------------------------------------------------------


class _Sessions:
    """Issue, decode, check and end sessions; one per engine and settings, shared by all parts."""

    def __init__(self, settings: Settings, engine: Engine, redis: Redis | None) -> None:
        secret = settings.resolved_secret_key
        # Weak, so the per-engine registry can forget engines; the middleware, the routes and
        # the hook registry each hold the engine itself.
        self._engine = weakref.ref(engine)
        self.max_age_s = int(settings.session_hours * 3600)
        self._signer = URLSafeTimedSerializer(secret, salt="wushi.session")
        self._tag_key = hashlib.sha256(b"wushi.password-tag:" + secret.encode()).digest()
        self._revocations = _Revocations(redis, settings.stream_key("auth:revoked"), self.max_age_s)
        self._cache: dict[str, tuple[float, SessionUser | None]] = {}
        self._cache_lock = threading.Lock()
        self._flights: weakref.WeakKeyDictionary[Any, dict[str, asyncio.Future[Any]]] = (
            weakref.WeakKeyDictionary()
        )

    def _password_mark(self, password_tag: str) -> str:
        return hmac.new(self._tag_key, password_tag.encode(), hashlib.sha256).hexdigest()[:24]

    def issue(self, user: users.User) -> tuple[str, str]:
        """Return a new cookie value and its session id for ``user``."""
        session_id = secrets.token_urlsafe(18)
        # The password mark ends the session when the password changes.
        payload = {"u": user.username, "s": session_id, "p": self._password_mark(user.password_tag)}
        return self._signer.dumps(payload), session_id

    def decode(self, token: str | None) -> tuple[str, str, str] | None:
        """Return (username, session id, password mark) of a valid, unexpired cookie value."""
        if not token:
            return None
        try:
            data = self._signer.loads(token, max_age=self.max_age_s)
        except BadData:
            return None
        if not isinstance(data, dict):
            return None
        values = data.get("u"), data.get("s"), data.get("p")
        if not all(isinstance(v, str) and v for v in values):
            return None
        return values  # type: ignore[return-value]

    def _load(self, username: str, session_id: str, mark: str) -> SessionUser | None:
        try:
            if self._revocations.is_revoked(session_id):
                return None
            engine = self._engine()
            if engine is None:
                raise SessionStoreUnavailable("the database engine is gone")
            user = users.get_user(engine, username)
        except (SQLAlchemyError, RedisError, OSError) as exc:
            log.error("cannot check session of %s: %r", username, exc)
            raise SessionStoreUnavailable(str(exc)) from exc
        if user is None or user.disabled:
            return None
        if not hmac.compare_digest(self._password_mark(user.password_tag), mark):
            return None
        return SessionUser(
            username=user.username,
            display_name=user.display_name or user.username,
            role=user.role,
            area_code=user.area_code,
            area_level=user.role,
            session_id=session_id,
        )

    def load_kiosk(self, token: str) -> SessionUser | None:
        try:
            engine = self._engine()
            if engine is None:
                raise SessionStoreUnavailable("the database engine is gone")
            found = kiosk_tokens.verify(engine, token)
        except (SQLAlchemyError, OSError) as exc:
            log.error("cannot check a kiosk token: %r", exc)
            raise SessionStoreUnavailable(str(exc)) from exc
        return None if found is None else kiosk_user(found)

    async def resolve_kiosk(self, token: str | None, ttl_s: float) -> SessionUser | None:
        """Return the kiosk identity of a token, re-checked at most every ``ttl_s``."""
        if not token or len(token) > kiosk_tokens.MAX_TOKEN:
            return None
        key = "kiosk:" + kiosk_tokens.hash_token(token)
        return await self._checked(key, ttl_s, self.load_kiosk, token)

    async def _checked(
        self, key: str, ttl_s: float, load: Callable[..., SessionUser | None], *args: Any
    ) -> SessionUser | None:
        """Return the cached answer for ``key`` if fresh, else ``load(*args)`` (then cached).

        While the database or Redis cannot be asked, an identity confirmed within
        ``STORE_OUTAGE_GRACE_S`` stays valid, so open pages and reloads keep serving their last
        figures (marked stale) through a short outage instead of being logged out. The cost: a
        logout or revocation made during an outage bites only when the store answers again
        (or after the grace period).
        """
        now = time.monotonic()
        with self._cache_lock:
            hit = self._cache.get(key)
        if hit is not None and now - hit[0] < ttl_s:
            return hit[1]
        # A page sends several requests at once: when its entry expires, one of them asks the
        # stores and the others wait for that answer (per event loop: one per web process).
        flights = self._flights.setdefault(asyncio.get_running_loop(), {})
        flight = flights.get(key)
        if flight is not None:
            return await asyncio.shield(flight)
        # Its own task: a request that goes away does not cancel the check for the others.
        flight = asyncio.ensure_future(self._check(key, now, hit, load, *args))
        flights[key] = flight
        flight.add_done_callback(lambda done: _forget_flight(flights, key, done))
        return await asyncio.shield(flight)

    async def _check(
        self,
        key: str,
        now: float,
        hit: tuple[float, SessionUser | None] | None,
        load: Callable[..., SessionUser | None],
        *args: Any,
    ) -> SessionUser | None:
        try:
            user = await run_in_threadpool(load, *args)
        except SessionStoreUnavailable:
            if hit is not None and hit[1] is not None and now - hit[0] < STORE_OUTAGE_GRACE_S:
                return hit[1]
            raise
        with self._cache_lock:
            if len(self._cache) >= 10_000:
                # Bounded: forget everything rather than track ages; misses only cost a query.
                self._cache.clear()
            self._cache[key] = (now, user)
        return user

    async def resolve_cookies(self, cookies: Mapping[str, str], ttl_s: float) -> SessionUser | None:
        """Return who the cookies name: a person's session first, else a wall's kiosk token."""
        user = await self.resolve(cookies.get(COOKIE_NAME), ttl_s)
        if user is None:
            user = await self.resolve_kiosk(cookies.get(KIOSK_COOKIE), ttl_s)
        return user

    async def resolve(self, token: str | None, ttl_s: float) -> SessionUser | None:
        """Return the user of a cookie value, re-checked in the database at most every ``ttl_s``."""
        decoded = self.decode(token)
        if decoded is None:
            return None
        username, session_id, mark = decoded
        return await self._checked(session_id, ttl_s, self._load, username, session_id, mark)

    def revoke(self, session_id: str) -> None:
        """End a session everywhere (and at once in this process)."""
        self._revocations.revoke(session_id)
        with self._cache_lock:
            self._cache[session_id] = (time.monotonic(), None)


def _forget_flight(flights: dict[str, Any], key: str, done: asyncio.Future[Any]) -> None:
    """Drop a finished session check; mark its error as seen (each waiter gets it raised)."""
    if flights.get(key) is done:
        del flights[key]
    if not done.cancelled():
        done.exception()


@dataclass
class _Registry:
    """Process-wide state: the sessions per engine and what the Dash socket hooks check with.

    Dash's hooks are process-global, so they are registered once and read the latest
    settings and engine from here.
    """

    sessions: weakref.WeakKeyDictionary[Engine, dict[tuple[Any, ...], _Sessions]] = field(
        default_factory=weakref.WeakKeyDictionary
    )
    hook_sessions: _Sessions | None = None
    hook_engine: Engine | None = None
    hook_ttl_s: float = CACHE_TTL_S
    hooks_registered: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)


_REGISTRY = _Registry()


def _sessions_for(settings: Settings, engine: Engine, redis: Redis | None) -> _Sessions:
    # The middleware, the routes and the hooks must share one revocation list and user cache,
    # so that a logout is refused at once by the same process.
    key = (
        settings.resolved_secret_key,
        settings.district_code,
        settings.session_hours,
        id(redis) if redis is not None else None,
    )
    with _REGISTRY.lock:
        per_engine = _REGISTRY.sessions.setdefault(engine, {})
        if key not in per_engine:
            per_engine[key] = _Sessions(settings, engine, redis)
        return per_engine[key]


# --- Login rate limits -----------------------------------------------------------------------

_FAILURE_SCRIPT = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
if n < tonumber(ARGV[2]) then return 0 end
local strikes = redis.call('INCR', KEYS[3])
redis.call('PEXPIRE', KEYS[3], ARGV[5])
local ms = math.floor(math.min(tonumber(ARGV[3]) * 2 ^ (strikes - 1), tonumber(ARGV[4])))
redis.call('SET', KEYS[2], '1', 'PX', ms)
redis.call('DEL', KEYS[1])
return ms
"""


@dataclass
class _Counter:
    failures: int = 0
    window_ends: float = 0.0
    locked_until: float = 0.0
    strikes: int = 0
    forget_at: float = 0.0


class LoginLimiter:
    """Count failed logins per username and per client address, and lock them out for a while.

    After ``max_failures`` failures within ``window_s`` (per address: ``address_max_failures``,
    higher because a town office shares one address), the name or address is refused for
    ``lockout_s``, doubling with each further lockout up to ``max_lockout_s``; lockouts are
    remembered for ``memory_s``. Redis keys live under ``prefix`` (``wushi:{district}:auth:``);
    without Redis the counts stay in this process.
    """

    def __init__(
        self,
        redis: Redis | None = None,
        *,
        prefix: str = "wushi:auth:",
        max_failures: int = 5,
        address_max_failures: int = 20,
        window_s: float = 60.0,
        lockout_s: float = 30.0,
        max_lockout_s: float = 3600.0,
        memory_s: float = 86400.0,
    ) -> None:
        self._redis = redis
        self._prefix = prefix
        self._max = {"user": max_failures, "addr": address_max_failures}
        self._window_s = window_s
        self._lockout_s = lockout_s
        self._max_lockout_s = max_lockout_s
        self._memory_s = memory_s
        self._counters: dict[str, _Counter] = {}
        self._lock = threading.Lock()
        self._script = redis.register_script(_FAILURE_SCRIPT) if redis is not None else None

    @classmethod
    def for_settings(
        cls, settings: Settings, redis: Redis | None = None, **kw: Any
    ) -> LoginLimiter:
        """Return a limiter with the district's Redis key prefix."""
        return cls(redis, prefix=settings.stream_key("auth:"), **kw)

    def _subjects(self, username: str, address: str | None) -> list[tuple[str, str]]:
        if users.USERNAME_RE.fullmatch(username):
            name = username
        else:  # keep attacker-chosen strings out of key names
            name = "~" + hashlib.sha256(username.encode()).hexdigest()[:16]
        subjects = [("user", name)]
        if address:
            subjects.append(("addr", address))
        return subjects

    def _key(self, kind: str, subject: str, part: str) -> str:
        return f"{self._prefix}fail:{kind}:{subject}:{part}"

    def locked_for(self, username: str, address: str | None) -> float:
        """Return how many seconds attempts for this name or from this address are refused."""
        subjects = self._subjects(username, address)
        if self._redis is not None:
            pipe = self._redis.pipeline(transaction=False)
            for kind, subject in subjects:
                pipe.pttl(self._key(kind, subject, "lock"))
            return max([0.0, *(ms / 1000 for ms in pipe.execute() if ms and ms > 0)])
        now = time.monotonic()
        with self._lock:
            waits = [
                self._counters[f"{k}:{s}"].locked_until - now
                for k, s in subjects
                if f"{k}:{s}" in self._counters
            ]
        return max([0.0, *waits])

    def failure(self, username: str, address: str | None) -> float:
        """Count a failed attempt; return the lockout in seconds it started (0 for none)."""
        started = 0.0
        for kind, subject in self._subjects(username, address):
            if self._script is not None:
                ms = self._script(
                    keys=[self._key(kind, subject, p) for p in ("n", "lock", "strikes")],
                    args=[
                        int(self._window_s * 1000),
                        self._max[kind],
                        int(self._lockout_s * 1000),
                        int(self._max_lockout_s * 1000),
                        int(self._memory_s * 1000),
                    ],
                )
                started = max(started, int(ms) / 1000)
            else:
                started = max(started, self._memory_failure(f"{kind}:{subject}", self._max[kind]))
        return started

    def _memory_failure(self, name: str, limit: int) -> float:
        now = time.monotonic()
        with self._lock:
            if len(self._counters) > 100_000:
                self._counters = {k: c for k, c in self._counters.items() if c.forget_at > now}
            c = self._counters.setdefault(name, _Counter())
            if now >= c.forget_at:
                c.strikes = 0
            if now >= c.window_ends:
                c.failures, c.window_ends = 0, now + self._window_s
            c.failures += 1
            c.forget_at = max(c.forget_at, now + self._window_s)
            if c.failures < limit:
                return 0.0
            c.strikes += 1
            c.failures = 0
            seconds = min(self._lockout_s * 2 ** (c.strikes - 1), self._max_lockout_s)
            c.locked_until = now + seconds
            c.forget_at = now + max(self._memory_s, seconds)
            return seconds

    def success(self, username: str) -> None:
        """Forget the failures and lockouts of ``username`` (not of the address)."""
        ((kind, subject),) = self._subjects(username, None)
        if self._redis is not None:
            self._redis.delete(self._key(kind, subject, "n"), self._key(kind, subject, "strikes"))
            return
        with self._lock:
            self._counters.pop(f"{kind}:{subject}", None)


# --- The login page --------------------------------------------------------------------------

WRONG_LOGIN = "用户名或密码错误 / Wrong username or password"
EMPTY_LOGIN = "请输入用户名和密码 / Enter your username and password"
UNAVAILABLE = "登录服务暂时不可用，请稍后再试 / Login is unavailable right now; try again shortly"

_PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "Referrer-Policy": "same-origin",
}

_LOGIN_PAGE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>登录 · Log in — 无事找书记</title>
<style>
*{{box-sizing:border-box}}
body{{margin:0;min-height:100vh;display:flex;align-items:center;justify-content:center;
background:#0f2741;color:#1b2733;font:18px/1.5 "Noto Sans CJK SC","PingFang SC",
"Microsoft YaHei",system-ui,sans-serif}}
main{{width:min(460px,92vw);background:#fff;border-radius:12px;padding:32px 36px;
box-shadow:0 8px 32px rgba(0,0,0,.35)}}
h1{{margin:0 0 4px;font-size:28px;color:#b71c1c}}
p.sub{{margin:0 0 24px;color:#55606b;font-size:16px}}
label{{display:block;margin:16px 0 6px;font-weight:600}}
label span{{font-weight:400;color:#55606b}}
input,button{{font-family:inherit}}
input{{width:100%;height:56px;padding:0 14px;font-size:20px;border:2px solid #9aa5b1;
border-radius:8px}}
input:focus{{outline:none;border-color:#1565c0;box-shadow:0 0 0 3px rgba(21,101,192,.25)}}
button{{width:100%;height:60px;margin-top:28px;font-size:22px;font-weight:700;color:#fff;
background:#c62828;border:0;border-radius:8px;cursor:pointer}}
button:active{{background:#8e0000}}
.msg{{margin:0 0 8px;padding:12px 14px;border-radius:8px;background:#fdecea;color:#8e0000;
font-weight:600}}
</style></head>
<body><main>
<h1>无事找书记 · 指挥中心</h1>
<p class="sub">叶集区 Yeji District command center</p>
{message}
<form method="post" action="/login" autocomplete="on">
<input type="hidden" name="next" value="{next}">
<label for="username">用户名 <span>/ Username</span></label>
<input id="username" name="username" value="{username}" autocomplete="username"
 autocapitalize="none" autocorrect="off" spellcheck="false" required {focus_user}>
<label for="password">密码 <span>/ Password</span></label>
<input id="password" name="password" type="password" autocomplete="current-password" required
 {focus_password}>
<button type="submit" id="login-button">登录 / Log in</button>
</form>
</main></body></html>
"""


def _login_page(
    *,
    next_path: str = "/",
    message: str = "",
    username: str = "",
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    body = _LOGIN_PAGE.format(
        next=html.escape(next_path),
        username=html.escape(username),
        # After a failed attempt the name is kept, so the password is what to type next.
        focus_user="" if username else "autofocus",
        focus_password="autofocus" if username else "",
        message=f'<p class="msg" role="alert">{html.escape(message)}</p>' if message else "",
    )
    return HTMLResponse(body, status_code=status, headers=_PAGE_HEADERS | (headers or {}))


def _locked_message(seconds: float) -> str:
    n = max(1, int(seconds + 0.999))
    return f"尝试次数过多，请 {n} 秒后再试 / Too many attempts: try again in {n} s"


async def _read_form(request: Request) -> dict[str, str] | None:
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            return None
    fields = parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True)
    return {name: values[0] for name, values in fields.items()}


def register_auth_routes(
    server: FastAPI,
    *,
    settings: Settings,
    engine: Engine,
    redis: Redis | None = None,
    limiter: LoginLimiter | None = None,
) -> None:
    """Add ``GET/POST /login`` and ``GET/POST /logout`` to ``server`` (before it starts)."""
    sessions = _sessions_for(settings, engine, redis)
    limiter = limiter or LoginLimiter.for_settings(settings, redis)
    proxies = parse_trusted_proxies(settings.trusted_proxies)

    def audit(action: str, username: str, address: str | None, **detail: Any) -> Awaitable[None]:
        return run_in_threadpool(
            record,
            engine,
            action=action,
            username=username[:64],
            address=address,
            detail=detail,
        )

    async def login_form(request: Request) -> Response:
        return _login_page(next_path=safe_next(request.query_params.get("next")))

    async def login(request: Request) -> Response:
        form = await _read_form(request)
        if form is None:
            return _login_page(message="请求过大 / Request too large", status=413)
        username = form.get("username", "").strip().lower()
        password = form.get("password", "")
        next_path = safe_next(form.get("next"))
        address = client_address(request.scope, proxies)

        def page(message: str, status: int, headers: dict[str, str] | None = None) -> Response:
            return _login_page(
                next_path=next_path,
                username=username[:64],
                message=message,
                status=status,
                headers=headers,
            )

        if not username or not password:
            return page(EMPTY_LOGIN, 401)
        try:
            wait = await run_in_threadpool(limiter.locked_for, username, address)
            if wait > 0:
                log.info("refused login for %r from %s: locked %.0f s", username, address, wait)
                return page(
                    _locked_message(wait), 429, {"Retry-After": str(max(1, int(wait + 0.999)))}
                )
            check = await run_in_threadpool(users.verify_login, engine, username, password)
            if check.user is None:
                lockout = await run_in_threadpool(limiter.failure, username, address)
                log.warning("failed login for %r from %s (%s)", username, address, check.reason)
                await audit("login.failed", username, address, reason=check.reason)
                if lockout:
                    log.warning("locked out %r / %s for %.0f s", username, address, lockout)
                    await audit("login.lockout", username, address, seconds=lockout)
                    return page(f"{WRONG_LOGIN}。{_locked_message(lockout)}", 401)
                return page(WRONG_LOGIN, 401)
            await run_in_threadpool(limiter.success, username)
            user = check.user
            cookie, session_id = sessions.issue(user)
            await run_in_threadpool(
                record,
                engine,
                action="login",
                username=user.username,
                address=address,
                area_code=user.area_code,
                detail={"session": session_id[:8]},
            )
        except (RedisError, SQLAlchemyError, OSError) as exc:
            log.error("login for %r failed: %r", username, exc)
            return page(UNAVAILABLE, 503)
        log.info("login %s from %s", user.username, address)
        response = RedirectResponse(next_path, status_code=303)
        response.set_cookie(
            COOKIE_NAME,
            cookie,
            max_age=sessions.max_age_s,
            path="/",
            secure=_is_https(request.scope, proxies),
            httponly=True,
            samesite="lax",
        )
        response.headers["Cache-Control"] = "no-store"
        return response

    async def logout(request: Request) -> Response:
        decoded = sessions.decode(request.cookies.get(COOKIE_NAME))
        if decoded is not None:
            username, session_id, _mark = decoded
            address = client_address(request.scope, proxies)
            try:
                await run_in_threadpool(sessions.revoke, session_id)
                await audit("logout", username, address, session=session_id[:8])
            except (RedisError, SQLAlchemyError, OSError) as exc:
                # The cookie is still deleted below; the session may live until it expires.
                log.error("logout of %s could not be recorded: %r", username, exc)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(
            COOKIE_NAME,
            path="/",
            secure=_is_https(request.scope, proxies),
            httponly=True,
            samesite="lax",
        )
        response.headers["Cache-Control"] = "no-store"
        return response

    server.add_api_route("/login", login_form, methods=["GET"], include_in_schema=False)
    server.add_api_route("/login", login, methods=["POST"], include_in_schema=False)
    server.add_api_route("/logout", logout, methods=["GET", "POST"], include_in_schema=False)


# --- The middleware --------------------------------------------------------------------------


class AuthMiddleware:
    """Require a valid session on every HTTP request and WebSocket except the public paths.

    A wall screen's kiosk token counts too, but only for what ``/wall`` needs (``kiosk_refusal``);
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
    ) -> None:
        self.app = app
        self._engine = engine  # keeps it alive for the sessions, which refer to it weakly
        self._sessions = _sessions_for(settings, engine, redis)
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
            if scope["type"] == "http" and _page_path(path) == WALL_PATH and _kiosk_param(scope):
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
                status = kiosk_refusal(scope["type"], scope.get("method", "GET"), path, body)
                if status:
                    await _forbid(scope, receive, send, status, KIOSK_ONLY_WALL)
                    return
                if scope["type"] == "http" and _page_path(path) == WALL_PATH:
                    # Each load of the wall renews the cookie, so a screen keeps it for good.
                    token = cookies.get(KIOSK_COOKIE, "")
                    send = _adding_header(send, self._kiosk_cookie(scope, token))
            elif _page_path(path) in DISTRICT_ADMIN_PAGES and user.role != "district":
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
            secure=_is_https(scope, self._proxies),
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
            response = _message_page(KIOSK_INVALID, 403)
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


# --- Kiosks: wall screens without a person ----------------------------------------------------

DASH_CALLBACK_PATH = "/_dash-update-component"
DASH_SOCKET_PATH = "/_dash-ws-callback"
MAX_CALLBACK_BODY = 1 << 20
# What a kiosk may GET besides the callbacks: the wall, Dash's layout and callback list, the map.
KIOSK_GET_PATHS = frozenset(
    {
        WALL_PATH,
        "/_dash-layout",
        "/_dash-dependencies",
        "/api/v1/grids.geojson",
        "/api/v1/villages.geojson",
        "/api/v1/towns.geojson",
    }
)
KIOSK_ONLY_WALL = (
    "此大屏令牌只能打开 /wall（只读）/ A wall-screen token opens /wall only (read-only)"
)
KIOSK_INVALID = (
    "大屏令牌无效或已撤销，请联系区指挥中心 / "
    "This wall-screen token is not valid or was revoked: ask the district command center"
)
DISTRICT_ONLY = "仅区级管理员可以打开此页 / Only district administrators may open this page"


def kiosk_user(kiosk: kiosk_tokens.Kiosk) -> SessionUser:
    """Return the identity of a wall screen: its token's area, marked as a kiosk."""
    return SessionUser(
        username=f"kiosk:{kiosk.name}",
        display_name=kiosk.name,
        role=kiosk.level,
        area_code=kiosk.area_code,
        area_level=kiosk.level,
        session_id=f"kiosk:{kiosk.id}",
        kiosk=True,
    )


def _page_path(path: str) -> str:
    return path.rstrip("/") or "/"


def _kiosk_param(scope: ASGIScope) -> bool:
    query = scope.get("query_string", b"").decode("latin-1")
    return any(k == "kiosk" for k, _ in parse_qsl(query, keep_blank_values=True))


async def read_body(receive: Receive, limit: int) -> bytes | None:
    """Read a request body of at most ``limit`` bytes (None when larger or cut off)."""
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        body += message.get("body", b"")
        if len(body) > limit:
            return None
        if not message.get("more_body"):
            return bytes(body)


def replay_body(body: bytes, receive: Receive) -> Receive:
    """Return a ``receive`` that hands the app the body already read, then the real one."""
    pending = True

    async def replay() -> MutableMapping[str, Any]:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def _adding_header(send: Send, header: tuple[bytes, bytes]) -> Send:
    async def wrapped(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            message = dict(message)
            message["headers"] = [*message.get("headers", []), header]
        await send(message)

    return wrapped


_MESSAGE_PAGE = """<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>无事找书记 · 指挥中心</title>
<style>body{{margin:0;min-height:100vh;display:flex;align-items:center;justify-content:center;
background:#0f2741;color:#fff;font:24px/1.6 "Noto Sans CJK SC","PingFang SC","Microsoft YaHei",
system-ui,sans-serif;text-align:center}}main{{max-width:900px;padding:32px}}
a{{color:#90caf9}}</style></head>
<body><main><p role="alert">{message}</p><p><a href="/">首页 / Home</a></p></main></body></html>
"""


def _message_page(message: str, status: int) -> HTMLResponse:
    body = _MESSAGE_PAGE.format(message=html.escape(message))
    return HTMLResponse(body, status_code=status, headers=dict(_PAGE_HEADERS))


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
        response = _message_page(why, 403)
    else:
        response = JSONResponse({"error": "forbidden"}, status_code=403)
    response.headers["Cache-Control"] = "no-store"
    await response(scope, receive, send)


def kiosk_refusal(kind: str, method: str, path: str, body: bytes | None) -> int:
    """Return 0 if a kiosk may make this request, 204 if it has nothing to do, else 403.

    A kiosk may open ``/wall``, load Dash's layout and callback list, the map's GeoJSON, the live
    socket, and run the callbacks that write only to components of the wall (so no export, no
    table, no other page's chart, no audit log), with ``/wall`` as the page wherever a callback
    is told the page. Everything else is refused.
    """
    if kind == "websocket":
        return 0 if path == DASH_SOCKET_PATH else 403
    if method in ("GET", "HEAD"):
        return 0 if _page_path(path) in KIOSK_GET_PATHS else 403
    if method == "POST" and path == DASH_CALLBACK_PATH and body is not None:
        return _kiosk_callback_refusal(body)
    return 403


def _ident_key(ident: Any) -> str:
    return json.dumps(ident, sort_keys=True, separators=(",", ":"))


def _wall_components() -> tuple[frozenset[str], tuple[dict[str, Any], ...]]:
    """Return the ids on the wall (with the page's shell): plain ids, and dict ids."""
    cached = _WALL_IDS.get("ids")
    if cached is not None:
        return cached
    from dashboard.app import root_layout
    from layouts.pages import PageContext, wall

    ctx = PageContext(
        lang="zh",
        path=WALL_PATH,
        username="",
        filters={},
        options={"towns": [], "villages": [], "grids": []},
        metrics=[],
        metric="calls",
        map_version="0",
        map_bounds=None,
        hideout={},
    )
    plain: set[str] = set()
    dicts: list[dict[str, Any]] = []
    for tree in (root_layout(), wall(ctx)):
        for component in [tree, *tree._traverse()]:
            ident = getattr(component, "id", None)
            if isinstance(ident, str):
                plain.add(ident)
            elif isinstance(ident, dict):
                dicts.append(ident)
    _WALL_IDS["ids"] = (frozenset(plain), tuple(dicts))
    return _WALL_IDS["ids"]


_WALL_IDS: dict[str, tuple[frozenset[str], tuple[dict[str, Any], ...]]] = {}


def _matches(pattern: dict[str, Any], ident: dict[str, Any]) -> bool:
    """Return whether a callback's wildcard id (``["ALL"]`` etc.) matches a concrete id."""
    if set(pattern) != set(ident):
        return False
    return all(isinstance(v, list) or ident[k] == v for k, v in pattern.items())


def _dependencies(value: Any) -> list[dict[str, Any]]:
    """Flatten a callback request's outputs, inputs or state (nested for wildcards)."""
    if isinstance(value, dict):
        return [value]
    if isinstance(value, list):
        return [d for item in value for d in _dependencies(item)]
    return []


def _kiosk_callback_refusal(body: bytes) -> int:
    try:
        request = json.loads(body)
    except ValueError:
        return 403
    output = request.get("output") if isinstance(request, dict) else None
    if not isinstance(output, str):
        return 403
    plain, dicts = _wall_components()
    parts = output[2:-2].split("...") if output.startswith("..") else [output]
    patterns = []
    for part in parts:
        ident, _, _prop = part.rpartition(".")
        if ident.startswith("{"):
            try:
                pattern = json.loads(ident)
            except ValueError:
                return 403
            if not isinstance(pattern, dict):
                return 403
            patterns.append(pattern)
        elif ident not in plain:
            return 403
    wall_keys = {_ident_key(d) for d in dicts}
    concrete = [dep.get("id") for dep in _dependencies(request.get("outputs"))]
    for target in concrete:
        if isinstance(target, dict) and _ident_key(target) in wall_keys:
            continue
        if isinstance(target, str) and target in plain:
            continue
        return 403
    if not concrete and not any(_matches(p, d) for p in patterns for d in dicts):
        # A wildcard callback for components the wall does not have: nothing to write.
        return 204
    for dep in _dependencies(request.get("inputs")) + _dependencies(request.get("state")):
        if dep.get("id") == "url" and dep.get("property") == "pathname":
            if _page_path(str(dep.get("value") or "")) != WALL_PATH:
                return 403
    return 0


# --- Dash WebSocket hooks --------------------------------------------------------------------


def _identity(user: SessionUser) -> tuple[str, str, str | None, str, bool]:
    return user.username, user.role, user.area_code, user.session_id, user.kiosk


def _ended(user: SessionUser | None) -> str:
    """Return the close reason for a socket whose login or token ended."""
    return "kiosk revoked" if user is not None and user.kiosk else "session ended"


async def _socket_user(websocket: Any) -> SessionUser | None:
    sessions = _REGISTRY.hook_sessions
    if sessions is None:
        return None
    return await sessions.resolve_cookies(websocket.cookies, _REGISTRY.hook_ttl_s)


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
    sessions = _sessions_for(settings, engine, redis)
    with _REGISTRY.lock:
        _REGISTRY.hook_sessions = sessions
        _REGISTRY.hook_engine = engine
        _REGISTRY.hook_ttl_s = cache_ttl_s
        if not _REGISTRY.hooks_registered:
            dash_hooks.websocket_connect()(check_socket_connect)
            dash_hooks.websocket_message()(check_socket_message)
            _REGISTRY.hooks_registered = True


# --- Areas -----------------------------------------------------------------------------------


def user_scope(user: SessionUser) -> Scope:
    """Return what ``user`` may see."""
    return Scope(user.role, user.area_code if user.role != "district" else None)


def user_area(user: SessionUser, engine: Engine, *, district_code: str = "341504") -> AreaRef:
    """Return the user's own area (the district, their town or their village)."""
    return resolve_area(engine, **own_filter(user_scope(user)), district_code=district_code)


def allowed(user: SessionUser | None, area: AreaRef) -> bool:
    """Return whether ``user`` may see ``area`` (never for no user)."""
    return user is not None and scope_allows(user_scope(user), area)


def clamp_area(
    user: SessionUser | None,
    engine: Engine,
    town: str | None = None,
    village: str | None = None,
    grid: str | None = None,
    *,
    district_code: str = "341504",
) -> AreaRef:
    """Return the requested area (the user's own when none is named) or raise PermissionError."""
    if user is None:
        raise OutOfScope("no user")
    scope = user_scope(user)
    filters = {"town": town, "village": village, "grid": grid}
    if not any(filters.values()):
        filters = dict(own_filter(scope))
    try:
        area = resolve_area(engine, **filters, district_code=district_code)  # type: ignore[arg-type]
    except UnknownArea as exc:
        # Unknown and forbidden look alike, so probing does not reveal which codes exist.
        raise OutOfScope(str(exc)) from None
    require(scope, area)
    return area
