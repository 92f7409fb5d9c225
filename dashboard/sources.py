"""What the web process reads from: the database, Redis, and small caches over them.

Callbacks never open sessions or connections themselves: they call these methods, which call
the ``datasources`` functions with the engine and Redis client held here.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from redis import Redis
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from dashboard.settings import Settings
from datasources.kpi import AreaRef, resolve_area
from datasources.models import Grid, Town, Village

T = TypeVar("T")
FIGURE_TTL_S = 60.0


@dataclass
class _TTLCache:
    """A tiny thread-safe cache: many screens asking the same question share one answer."""

    ttl: float
    _data: dict[Any, tuple[float, Any]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def get(self, key: Any, compute: Callable[[], T]) -> T:
        now = time.monotonic()
        with self._lock:
            hit = self._data.get(key)
            if hit is not None and now - hit[0] < self.ttl:
                return hit[1]  # type: ignore[no-any-return]
        value = compute()
        self.put(key, value)
        return value

    def put(self, key: Any, value: Any) -> None:
        with self._lock:
            if len(self._data) > 2000:
                self._data.clear()
            self._data[key] = (time.monotonic(), value)


@dataclass(frozen=True)
class Names:
    """Area names by code, in both languages, for labels and the live feed."""

    zh: dict[str, str]
    en: dict[str, str]

    def of(self, lang: str) -> dict[str, str]:
        """Return the names in ``lang``."""
        return self.en if lang == "en" else self.zh


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

    def cached(self, key: Any, compute: Callable[[], T], *, long: bool = False) -> T:
        """Return ``compute()``, shared for two seconds (or five minutes with ``long``)."""
        return (self._long if long else self._short).get(key, compute)

    def figure(self, key: Any, compute: Callable[[], T]) -> T:
        """Return a chart's figure, shared for a minute: trends by month do not move faster."""
        return self._figures.get(key, compute)

    def refresh_figure(self, key: Any, compute: Callable[[], T]) -> None:
        """Recompute a figure ahead of time, so the first screen to ask finds it ready."""
        self._figures.put(key, compute())

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
            model = {"district": Town, "town": Town, "village": Village, "grid": Grid}[area.level]
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
