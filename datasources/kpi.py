"""The headline figures of docs/figures.md for any period and area: ``kpi`` computes them all.

What each scalar figure is computed from is declared in ``datasources.figures``; this module
runs those definitions for one area (``figure_value``, ``span_stats``) and adds the grouped
figures (petitions, employment, supervision, devices…). Additive counts come from the daily
rollups (``datasources.rollups``); the ticket-time figures come from the raw tickets (they do
not add up); device figures are the callers' state now. Every function returns plain values.
Rates are fractions in [0, 1] and ``None`` where there is nothing to divide by; changes are
fractions against the same period a year before and ``None`` where the year before has none.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import (
    Connection,
    Engine,
    Float,
    Select,
    String,
    cast,
    extract,
    func,
    select,
    type_coerce,
)
from sqlalchemy.orm import Session

from datasources.figures import KPI_FLAT, Figure, Rollup, TicketSpan, rate
from datasources.models import (
    Device,
    Grid,
    GridDailyRollup,
    PointsTransaction,
    PublicWelfareJob,
    Ticket,
    Town,
    Village,
    VillageDailyRollup,
)
from datasources.periods import Period
from datasources.rollups import PETITION_LEVELS

LOW_BATTERY = 20
ONLINE_WITHIN = dt.timedelta(hours=24)
DISTRICT_NAMES = {"341504": "叶集区"}


@dataclass(frozen=True)
class AreaRef:
    """An area the figures are for: the district, a town, a village or a grid."""

    level: str
    code: str
    name: str
    town_code: str | None = None
    village_code: str | None = None

    def as_dict(self) -> dict[str, str]:
        """Return the area as in the ``kpi`` output (docs/contract.md)."""
        return {"level": self.level, "code": self.code, "name": self.name}


class UnknownArea(LookupError):
    """A town, village or grid code that is not stored, or not inside the given parent."""


def resolve_area(
    engine: Engine,
    *,
    town: str | None = None,
    village: str | None = None,
    grid: str | None = None,
    district_code: str = "341504",
) -> AreaRef:
    """Return the most specific area named, checking that the codes nest."""
    with Session(engine) as session:
        if grid:
            row = session.get(Grid, grid)
            if row is None:
                raise UnknownArea(f"unknown grid {grid}")
            if (village and row.village_code != village) or (town and row.town_code != town):
                raise UnknownArea(f"grid {grid} is not in the given village/town")
            return AreaRef("grid", row.code, row.name, row.town_code, row.village_code)
        if village:
            vrow = session.get(Village, village)
            if vrow is None:
                raise UnknownArea(f"unknown village {village}")
            if town and vrow.town_code != town:
                raise UnknownArea(f"village {village} is not in town {town}")
            return AreaRef("village", vrow.code, vrow.name, vrow.town_code, vrow.code)
        if town:
            trow = session.get(Town, town)
            if trow is None:
                raise UnknownArea(f"unknown town {town}")
            return AreaRef("town", trow.code, trow.name, trow.code)
    return AreaRef("district", district_code, DISTRICT_NAMES.get(district_code, district_code))


def _where(stmt: Select, model: Any, area: AreaRef) -> Select:
    if area.level == "town":
        return stmt.where(model.town_code == area.code)
    if area.level == "village":
        return stmt.where(model.village_code == area.code)
    if area.level == "grid":
        return stmt.where(model.grid_code == area.code)
    return stmt


def _sums(engine: Engine, model: Any, columns: list[str], area: AreaRef, period: Period):
    stmt = select(*(func.coalesce(func.sum(getattr(model, c)), 0) for c in columns)).where(
        model.day >= period.start, model.day <= period.end
    )
    with Session(engine) as session:
        row = session.execute(_where(stmt, model, area)).one()
    return {c: int(v) for c, v in zip(columns, row, strict=True)}


def _change(now: int, before: int) -> float | None:
    return round(now / before - 1, 4) if before else None


def _grid_sums(engine: Engine, area: AreaRef, period: Period) -> dict[str, int]:
    columns = [
        c.name
        for c in GridDailyRollup.__table__.c
        if c.name not in ("day", "grid_code", "village_code", "town_code")
    ]
    return _sums(engine, GridDailyRollup, columns, area, period)


def _resolution_of(s: dict[str, int]) -> dict[str, float | None]:
    levels = ("grid", "village", "town", "district")
    total = sum(s[f"resolved_{level}"] for level in levels)
    return {level: rate(s[f"resolved_{level}"], total) for level in levels}


def span_seconds(engine: Engine, span: TicketSpan) -> Any:
    """Return a SQL expression for the seconds from a ticket's ``span.start`` to ``span.end``.

    Computed in the database: parsing two timestamps per ticket in Python cost more than the
    query. SQLite's julianday is a double, so it is rounded to milliseconds (its precision),
    which keeps whole-second stamps exact, as ``timedelta.total_seconds`` is.
    """
    start, end = getattr(Ticket, span.start), getattr(Ticket, span.end)
    if engine.dialect.name == "sqlite":
        days = func.julianday(end) - func.julianday(start)
        return func.round(days * 86_400_000) / 1000.0
    return cast(extract("epoch", end - start), Float)


def span_stats(
    conn: Connection,
    engine: Engine,
    area: AreaRef,
    period: Period,
    span: TicketSpan,
    by: Any = None,
) -> dict[Any, float | None]:
    """Return ``span``'s statistic over the area's tickets created in the period.

    Grouped by the column ``by`` (``{key: value}``, keys without tickets left out), or for the
    whole area under the key ``None`` (``None`` where no ticket has the span's end). The
    median interpolates like ``np.percentile(…, 50)``.
    """
    low, high = period.utc_bounds
    columns = [span_seconds(engine, span).label("seconds")]
    if by is not None:
        columns.insert(0, by.label("key"))
    stmt = select(*columns).where(
        Ticket.created_at >= low,
        Ticket.created_at < high,
        getattr(Ticket, span.end).is_not(None),
    )
    result = conn.execute(_where(stmt, Ticket, area))
    # Plain tuples: pandas probes each Row with hasattr(), which is slow in SQLAlchemy.
    frame = pd.DataFrame([tuple(row) for row in result.all()], columns=list(result.keys()))
    values = frame["seconds"].astype(float) / span.seconds
    if by is None:
        if values.empty:
            return {None: None}
        return {None: round(float(values.agg(span.stat)), span.digits)}
    stats = values.groupby(frame["key"]).agg(span.stat)
    return {key: round(float(v), span.digits) for key, v in stats.items()}


def figure_value(
    engine: Engine, figure: Figure, sums: dict[str, int], area: AreaRef, period: Period
) -> Any:
    """Return one declared figure of the area and period (``sums``: its grid-rollup sums)."""
    source = figure.source
    if isinstance(source, Rollup):
        return source.of(sums)
    if isinstance(source, TicketSpan):
        with engine.connect() as conn:
            return span_stats(conn, engine, area, period, source)[None]
    raise ValueError(f"figure {figure.key!r} has a query of its own (datasources.panels)")


def response_minutes(engine: Engine, area: AreaRef, period: Period) -> dict[str, float | None]:
    """响应时长: minutes from created to arrived on site, median and 90th percentile."""
    low, high = period.utc_bounds
    if engine.dialect.name == "postgresql":
        return _response_minutes_pg(engine, area, low, high)
    stmt = select(Ticket.created_at, Ticket.arrived_at).where(
        Ticket.created_at >= low, Ticket.created_at < high, Ticket.arrived_at.is_not(None)
    )
    minutes = None
    if engine.dialect.name == "sqlite":
        minutes = _sqlite_minutes(engine, _where(stmt, Ticket, area))
    if minutes is None:
        with Session(engine) as session:
            rows = session.execute(_where(stmt, Ticket, area)).all()
        minutes = np.array([(a - c).total_seconds() / 60 for c, a in rows], dtype=float)
    return response_percentiles(minutes)


def response_percentiles(minutes: np.ndarray) -> dict[str, float | None]:
    """Return the median and 90th percentile of response minutes (``None`` for none)."""
    if not len(minutes):
        return {"median": None, "p90": None}
    median, p90 = np.percentile(minutes, [50, 90])
    return {"median": round(float(median), 1), "p90": round(float(p90), 1)}


def _sqlite_minutes(engine: Engine, stmt: Select) -> np.ndarray | None:
    """The minutes of (created_at, arrived_at) rows, parsed by numpy from SQLite's text.

    SQLite stores the UTC times as 'YYYY-MM-DD HH:MM:SS.ffffff'; numpy parses them to exact
    microseconds, and microseconds / 10**6 / 60 are the same floats as
    ``timedelta.total_seconds() / 60``. Returns None if a stored value is not in that form.
    """
    raw = stmt.with_only_columns(
        type_coerce(Ticket.created_at, String), type_coerce(Ticket.arrived_at, String)
    )
    with Session(engine) as session:
        rows = [tuple(row) for row in session.execute(raw)]  # numpy is slow on Row objects
    try:
        stamps = np.array(rows, dtype="datetime64[us]").reshape(-1, 2)
    except ValueError:
        return None
    micros = (stamps[:, 1] - stamps[:, 0]).astype(np.int64)
    return micros / 10**6 / 60


def _response_minutes_pg(
    engine: Engine, area: AreaRef, low: dt.datetime, high: dt.datetime
) -> dict[str, float | None]:
    # percentile_cont interpolates linearly between the two nearest values, like numpy's
    # default; only the two figures cross the wire.
    minutes = cast(extract("epoch", Ticket.arrived_at - Ticket.created_at), Float) / 60
    stmt = select(
        func.percentile_cont(0.5).within_group(minutes),
        func.percentile_cont(0.9).within_group(minutes),
    ).where(Ticket.created_at >= low, Ticket.created_at < high, Ticket.arrived_at.is_not(None))
    with Session(engine) as session:
        median, p90 = session.execute(_where(stmt, Ticket, area)).one()
    if median is None:
        return {"median": None, "p90": None}
    return {"median": round(float(median), 1), "p90": round(float(p90), 1)}


def _village_level(area: AreaRef) -> bool:
    return area.level != "grid"


def _village_sums(engine: Engine, columns: list[str], area: AreaRef, period: Period):
    return _sums(engine, VillageDailyRollup, columns, area, period)


_PETITION_COLUMNS = [
    f"petition_{what}_{lvl}" for lvl in PETITION_LEVELS for what in ("batches", "persons")
]
_VILLAGE_COLUMNS = [
    c.name
    for c in VillageDailyRollup.__table__.c
    if c.name not in ("day", "village_code", "town_code")
]


def _all_village_sums(engine: Engine, area: AreaRef, period: Period) -> dict[str, int]:
    """Every village-rollup column over the period, in one query."""
    return _village_sums(engine, _VILLAGE_COLUMNS, area, period)


def _petitions_of(now: dict[str, int], before: dict[str, int]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for level in PETITION_LEVELS:
        b, p = f"petition_batches_{level}", f"petition_persons_{level}"
        out[level] = {
            "batches": now[b],
            "persons": now[p],
            "batches_change": _change(now[b], before[b]),
            "persons_change": _change(now[p], before[p]),
        }
    out["repeat"] = now["petition_repeat"]
    return out


def _points_of(s: dict[str, int]) -> dict[str, int]:
    return {"earned": s["points_earned"], "redeemed": s["points_redeemed"]}


def _grid_points(engine: Engine, area: AreaRef, period: Period) -> dict[str, int]:
    low, high = period.utc_bounds
    stmt = (
        select(PointsTransaction.kind, func.coalesce(func.sum(PointsTransaction.points), 0))
        .where(PointsTransaction.ts >= low, PointsTransaction.ts < high)
        .group_by(PointsTransaction.kind)
    )
    with Session(engine) as session:
        rows = session.execute(_where(stmt, PointsTransaction, area))
        sums = {kind: total for kind, total in rows}
    return {"earned": int(sums.get("earned", 0)), "redeemed": int(sums.get("redeemed", 0))}


def _posts_filled(engine: Engine, area: AreaRef, period: Period) -> int:
    low, high = period.utc_bounds
    stmt = select(func.count()).where(
        PublicWelfareJob.created_at >= low,
        PublicWelfareJob.created_at < high,
        PublicWelfareJob.filled_at.is_not(None),
    )
    with Session(engine) as session:
        return int(session.scalar(_where(stmt, PublicWelfareJob, area)) or 0)


def _employment_of(s: dict[str, int], filled: int) -> dict[str, int]:
    return {
        "public_welfare": s["placements_public_welfare"],
        "doorstep": s["placements_doorstep"],
        "urban": s["placements_urban"],
        "public_welfare_posts": s["welfare_posts_created"],
        "public_welfare_posts_filled": filled,
    }


def _supervision_of(s: dict[str, int]) -> dict[str, int]:
    return {
        "posted": s["supervision_posted"],
        "on_notice": s["supervision_on_notice"],
        "approved": s["supervision_approved"],
    }


def devices(engine: Engine, area: AreaRef, now: dt.datetime) -> dict[str, int]:
    """设备: callers installed, online in the last 24 hours, and low on battery, as of now."""
    recent = now - ONLINE_WITHIN
    online = (Device.last_heartbeat_at >= recent).label("online")
    stmt = select(
        func.count(),
        func.coalesce(func.sum(online.cast(Device.battery.type)), 0),
        func.coalesce(func.sum((Device.battery < LOW_BATTERY).cast(Device.battery.type)), 0),
    ).where(Device.installed_at <= now)
    with Session(engine) as session:
        installed, n_online, low = session.execute(_where(stmt, Device, area)).one()
    return {"installed": int(installed), "online": int(n_online), "low_battery": int(low)}


def kpi(engine: Engine, area: AreaRef, period: Period, now: dt.datetime) -> dict[str, Any]:
    """Return every headline figure as the JSON object of docs/contract.md, section 3.

    One grid-rollup query and (above grid level) two village-rollup queries, this period's and
    the year before's petitions, serve every additive figure. The figures with a key of their
    own at the top level are those ``datasources.figures`` declares there (``KPI_FLAT``).
    """
    s = _grid_sums(engine, area, period)
    village: dict[str, Any] = {
        "petitions": None,
        "mediations": None,
        "employment": None,
        "supervision": None,
    }
    if _village_level(area):
        v = _all_village_sums(engine, area, period)
        before = _village_sums(engine, _PETITION_COLUMNS, area, period.year_before())
        village = {
            "petitions": _petitions_of(v, before),
            "mediations": v["mediations"],
            "points": _points_of(v),
            "employment": _employment_of(v, _posts_filled(engine, area, period)),
            "supervision": _supervision_of(v),
        }
    else:
        village["points"] = _grid_points(engine, area, period)
    return {
        "area": area.as_dict(),
        "period": period.as_dict(),
        **{f.kpi_path[0]: figure_value(engine, f, s, area, period) for f in KPI_FLAT},
        "response_minutes": response_minutes(engine, area, period),
        "resolution_levels": _resolution_of(s),
        "petitions": village["petitions"],
        "mediations": village["mediations"],
        "points": village["points"],
        "employment": village["employment"],
        "supervision": village["supervision"],
        "devices": devices(engine, area, now),
    }
