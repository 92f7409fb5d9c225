"""What the web process reads from: the database, Redis, and small caches over them.

Callbacks never open sessions or connections themselves: they call these methods, which call
the ``datasources`` functions with the engine and Redis client held here.

When the database cannot be reached, a cached answer is not an error: ``cached`` and ``figure``
hand back the last good value of the key (however old) and note the time the data went stale;
``stale_since()`` tells the pages, which show "数据暂停更新 / Data stale since HH:MM". Only a
successful probe (``check_database``) clears the mark, so an answer built from other stale
answers never passes for fresh. See docs/reliability.md.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from redis import Redis
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session

from dashboard.embedded_redis import redis_from_settings
from dashboard.settings import Settings
from datasources.db import make_engine
from datasources.kpi import AreaRef, resolve_area
from datasources.models import Grid, Town, Village

log = logging.getLogger("wushi.sources")
T = TypeVar("T")
FIGURE_TTL_S = 60.0
# A user's choice may be answered from values this old; the live socket corrects them.
CHOICE_MAX_AGE_S = FIGURE_TTL_S
# Errors that mean "the database cannot be reached now", not "the query is wrong" (drivers'
# errors arrive wrapped in OperationalError; not OSError as a whole: PermissionError is one).
DB_UNAVAILABLE: tuple[type[BaseException], ...] = (
    OperationalError,
    InterfaceError,
    DisconnectionError,
    PoolTimeout,
    ConnectionError,
    TimeoutError,
)


RETRY_S = 2.0  # while the database is down, ask it again at most this often
PROBE_S = 2.0  # a healthy database is probed at most this often (shared by all pages)


@dataclass
class _TTLCache:
    """A tiny thread-safe cache: many screens asking the same question share one answer."""

    ttl: float
    _data: dict[Any, tuple[float, Any]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _flights: dict[Any, threading.Lock] = field(default_factory=dict)

    def lookup(self, key: Any, max_age: float | None = None) -> tuple[bool, bool, Any]:
        """Return (found, fresh, value) of ``key``; an old value is still found.

        Fresh means younger than the cache's ttl, or than ``max_age`` when given.
        """
        with self._lock:
            hit = self._data.get(key)
        if hit is None:
            return False, False, None
        ttl = self.ttl if max_age is None else max_age
        return True, time.monotonic() - hit[0] < ttl, hit[1]

    def put(self, key: Any, value: Any) -> None:
        with self._lock:
            if len(self._data) > 2000:
                self._data.clear()
                self._flights.clear()
            self._data[key] = (time.monotonic(), value)

    def flight(self, key: Any) -> threading.Lock:
        """Return the lock of ``key``'s computation: when a value expires and a hundred
        screens ask for it at once, one computes it and the others wait for its answer."""
        with self._lock:
            lock = self._flights.get(key)
            if lock is None:
                lock = self._flights[key] = threading.Lock()
            return lock


@dataclass(frozen=True)
class Names:
    """Area names by code, in both languages, for labels and the live feed."""

    zh: dict[str, str]
    en: dict[str, str]

    def of(self, lang: str) -> dict[str, str]:
        """Return the names in ``lang``."""
        return self.en if lang == "en" else self.zh


class _Health:
    """Whether the database answers, as seen by this process (thread-safe)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.probe_lock = threading.Lock()
        self.stale_since: float | None = None  # epoch seconds of the first failure
        self.retry_at = 0.0  # monotonic: do not ask the database again before this
        self.checked_at = -PROBE_S  # monotonic time of the last probe

    def failed(self, exc: BaseException) -> None:
        with self.lock:
            first = self.stale_since is None
            if first:
                self.stale_since = time.time()
            self.retry_at = time.monotonic() + RETRY_S
        if first:
            log.warning("database unavailable (%s); serving the last values", type(exc).__name__)

    def recovered(self) -> None:
        with self.lock:
            was = self.stale_since
            self.stale_since = None
            self.retry_at = 0.0
        if was is not None:
            log.warning("database answers again after %.0f s", time.time() - was)


class Sources:
    """The web process's handles on SQL and Redis, with short-lived shared caches."""

    def __init__(self, settings: Settings, engine: Engine, redis: Redis, redis_url: str) -> None:
        self.settings = settings
        self.engine = engine
        self.redis = redis
        self.redis_url = redis_url
        self.district = settings.district_code
        self._short = _TTLCache(ttl=2.0)
        self._figures = _TTLCache(ttl=FIGURE_TTL_S)
        self._long = _TTLCache(ttl=300.0)
        self._health = _Health()

    def cached(
        self,
        key: Any,
        compute: Callable[[], T],
        *,
        long: bool = False,
        max_age: float | None = None,
    ) -> T:
        """Return ``compute()``, shared for two seconds (or five minutes with ``long``).

        ``max_age`` accepts an older value than that: a user's choice (a town chosen) is
        answered from what the warmer or the last live push computed, at most ``max_age``
        seconds ago, and the page's live socket pushes the current figures within two seconds
        while events arrive (docs/performance.md, "Town switch").

        While the database is unreachable, the last value of ``key`` is returned (and the data
        marked stale); with no value to fall back on, the error is raised.
        """
        return self._get(self._long if long else self._short, key, compute, max_age)

    def refresh(self, key: Any, compute: Callable[[], T]) -> None:
        """Recompute a two-second value ahead of time, for ``cached(..., max_age=...)``."""
        self._refresh(self._short, key, compute)

    def figure(self, key: Any, compute: Callable[[], T]) -> T:
        """Return a chart's figure, shared for a minute: trends by month do not move faster."""
        return self._get(self._figures, key, compute)

    def refresh_figure(self, key: Any, compute: Callable[[], T]) -> None:
        """Recompute a figure ahead of time, so the first screen to ask finds it ready.

        While the database is down the old figure is kept (and the data marked stale).
        """
        self._refresh(self._figures, key, compute)

    def _refresh(self, cache: _TTLCache, key: Any, compute: Callable[[], T]) -> None:
        if not self._may_ask_database():
            return
        try:
            value = compute()
        except DB_UNAVAILABLE as exc:
            self._health.failed(exc)
            return
        cache.put(key, value)

    def _get(
        self, cache: _TTLCache, key: Any, compute: Callable[[], T], max_age: float | None = None
    ) -> T:
        found, fresh, value = cache.lookup(key, max_age)
        if fresh:
            return value
        if found and not self._may_ask_database():
            return value
        with cache.flight(key):
            found, fresh, value = cache.lookup(key, max_age)
            if fresh:  # computed by another thread while this one waited
                return value
            try:
                value = compute()
            except DB_UNAVAILABLE as exc:
                self._health.failed(exc)
                found, _fresh, last = cache.lookup(key)
                if not found:
                    raise
                return last
            cache.put(key, value)
            return value

    def _may_ask_database(self) -> bool:
        """Return False while the database is known to be down (it is re-probed every 2 s)."""
        health = self._health
        with health.lock:
            if health.stale_since is None:
                return True
            if time.monotonic() < health.retry_at:
                return False
        return self.check_database(max_age_s=0.0)

    def check_database(self, max_age_s: float = PROBE_S) -> bool:
        """Probe the database (``select 1``, at most once per ``max_age_s`` for the process).

        Returns whether it answers; a failure marks the data stale, an answer clears the mark.
        Never blocks behind another thread's probe: that one's outcome is as good.
        """
        health = self._health
        if time.monotonic() - health.checked_at < max_age_s:
            return health.stale_since is None
        if not health.probe_lock.acquire(blocking=False):
            return health.stale_since is None
        try:
            try:
                with self.engine.connect() as conn:
                    conn.execute(text("select 1"))
            except DB_UNAVAILABLE as exc:
                health.failed(exc)
                return False
            health.recovered()
            return True
        finally:
            health.checked_at = time.monotonic()
            health.probe_lock.release()

    def stale_since(self) -> float | None:
        """Return when the database stopped answering (epoch seconds), or None if it answers."""
        return self._health.stale_since

    def names(self) -> Names:
        """Return the names of every town, village and grid."""

        def load() -> Names:
            zh: dict[str, str] = {self.district: "叶集区"}
            en: dict[str, str] = {self.district: "Yeji District"}
            with Session(self.engine) as session:
                for model in (Town, Village, Grid):
                    for code, name, name_en in session.execute(
                        select(model.code, model.name, model.name_en)
                    ):
                        zh[code], en[code] = name, name_en
            return Names(zh, en)

        return self.cached("names", load, long=True)

    def area(self, town: str | None, village: str | None, grid: str | None) -> AreaRef:
        """Resolve an area from filter codes (cached; raises for unknown codes)."""
        key = ("area", town, village, grid)
        return self.cached(
            key,
            lambda: resolve_area(
                self.engine, town=town, village=village, grid=grid, district_code=self.district
            ),
            long=True,
        )

    def geometry_version(self) -> str:
        """Return a short hash of the stored geometry, to bust browser caches when it changes."""

        def load() -> str:
            digest = hashlib.sha1(usedforsecurity=False)
            with Session(self.engine) as session:
                for code, lon, lat in session.execute(
                    select(Grid.code, Grid.centroid_lon, Grid.centroid_lat).order_by(Grid.code)
                ):
                    digest.update(f"{code}{lon}{lat}".encode())
            return digest.hexdigest()[:12]

        return self.cached("geometry_version", load, long=True)

    def area_bounds(self, area: AreaRef) -> list[list[float]] | None:
        """Return [[south, west], [north, east]] of an area's outline, for fitting the map."""

        def load() -> list[list[float]] | None:
            models: dict[str, type[Town] | type[Village] | type[Grid]] = {
                "district": Town,
                "town": Town,
                "village": Village,
                "grid": Grid,
            }
            model = models[area.level]
            stmt = select(model.geometry)
            if area.level != "district":
                stmt = stmt.where(model.code == area.code)
            xs: list[float] = []
            ys: list[float] = []
            with Session(self.engine) as session:
                for geometry in session.scalars(stmt):
                    for ring in geometry["coordinates"]:
                        xs.extend(p[0] for p in ring)
                        ys.extend(p[1] for p in ring)
            if not xs:
                return None
            return [[min(ys), min(xs)], [max(ys), max(xs)]]

        return self.cached(("bounds", area.code), load, long=True)

    def now(self) -> dt.datetime:
        """Return the current time (one place, so tests and callbacks agree)."""
        return dt.datetime.now(dt.UTC)


def build_sources(settings: Settings, redis_url: str | None = None) -> Sources:
    """Connect to the configured database and Redis."""
    url = redis_url or settings.redis_url
    if not url:
        raise RuntimeError(
            "no Redis URL: set WUSHI_REDIS_URL, or run `wushi demo`, which starts an embedded one"
        )
    engine = make_engine(settings.resolved_database_url, pool_size=10, max_overflow=20)
    return Sources(settings, engine, redis_from_settings(settings, url), url)
