"""Login sessions: the signed cookie, who it names (re-checked, cached), revocations on logout.

A session is the signed ``wushi_session`` cookie (username, session id, a mark of the password);
``Sessions.resolve`` re-loads the user at most every few seconds, so disabling a user, a new
password or a logout bites quickly. Wall screens without a person present a kiosk token
(``datasources.kiosk``; cookie ``wushi_kiosk``) instead. One ``Sessions`` per engine and
settings is shared by the middleware, the login routes and Dash's socket hooks
(``sessions_for``), so a logout is refused at once by the same process. See docs/security.md.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import secrets
import threading
import time
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from itsdangerous import BadData, URLSafeTimedSerializer
from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool

from dashboard.settings import Settings
from datasources import kiosk as kiosk_tokens
from datasources import users
from datasources.identity import SessionUser

log = logging.getLogger("wushi.auth")

COOKIE_NAME = "wushi_session"
CACHE_TTL_S = 10.0
# How long a confirmed identity outlives an outage of the database or Redis (see _checked).
STORE_OUTAGE_GRACE_S = 300.0
# Wall screens: the kiosk cookie (the token itself, HttpOnly), and how long the browser keeps it
# (Chrome caps cookies at 400 days; each load of /wall renews it).
KIOSK_COOKIE = "wushi_kiosk"
KIOSK_COOKIE_MAX_AGE_S = 400 * 86400


class SessionStoreUnavailable(RuntimeError):
    """The database or Redis could not be asked whether a session is still valid."""


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


class Sessions:
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

    sessions: weakref.WeakKeyDictionary[Engine, dict[tuple[Any, ...], Sessions]] = field(
        default_factory=weakref.WeakKeyDictionary
    )
    hook_sessions: Sessions | None = None
    hook_engine: Engine | None = None
    hook_ttl_s: float = CACHE_TTL_S
    hooks_registered: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)


REGISTRY = _Registry()


def sessions_for(settings: Settings, engine: Engine, redis: Redis | None) -> Sessions:
    # The middleware, the routes and the hooks must share one revocation list and user cache,
    # so that a logout is refused at once by the same process.
    key = (
        settings.resolved_secret_key,
        settings.district_code,
        settings.session_hours,
        id(redis) if redis is not None else None,
    )
    with REGISTRY.lock:
        per_engine = REGISTRY.sessions.setdefault(engine, {})
        if key not in per_engine:
            per_engine[key] = Sessions(settings, engine, redis)
        return per_engine[key]


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
