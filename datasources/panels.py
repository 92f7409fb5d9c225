"""The queries behind the dashboard panels: plain DataFrames, dicts and frozen dataclasses.

Every function takes the area (``kpi.AreaRef``) and filters by it in SQL, so a user who may see
one town only never receives another town's rows, whatever the client asks for. Figures keep
the definitions of ``datasources.kpi`` (the rate helpers are reused, never redefined); additive
figures come from the daily rollups, grouped in SQL by child area or by day and then by month in
pandas (at most 366 days a year, so that is cheap and the same on SQLite and PostgreSQL).
Rates are fractions in [0, 1] and null (NaN in a DataFrame, ``None`` in a dict) where there is
nothing to divide by. Village-level facts (petitions, mediations, jobs, supervision) do not
exist per grid: for grids they are null, except points, which are kept per household's grid.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Connection, Engine, Select, case, func, select

from datasources.figures import (
    BY_KEY,
    MAP_METRICS,
    PER_AREA,
    RESPONSE,
    Figure,
    Rollup,
    TicketSpan,
    rate,
    rollup_columns,
)
from datasources.kpi import (
    LOW_BATTERY,
    ONLINE_WITHIN,
    AreaRef,
    _grid_sums,
    _where,
    response_minutes,
    span_seconds,
    span_stats,
)
from datasources.models import (
    Device,
    Grid,
    GridDailyRollup,
    PointsTransaction,
    Staff,
    SupervisionItem,
    Ticket,
    Town,
    Village,
    VillageDailyRollup,
)
from datasources.periods import SHANGHAI, Period
from datasources.privacy import mask_phone
from datasources.rollups import (
    APPROVAL_SHARE,
    NOTICE_WORKING_DAYS,
    PETITION_LEVELS,
    _local_days,
    _working_days_between,
)
from datasources.sla import Deadline, deadline_for

RESOLUTION_LEVELS = ("grid", "village", "town", "district")
PLACEMENT_KINDS = ("public_welfare", "doorstep", "urban")
DEFAULT_BINS: tuple[int | None, ...] = (0, 10, 20, 30, 45, 60, 90, 120, 180, 240, 480, 1440, None)

# Every status the worker writes but "closed" (datasources.ingest); naming them, rather than
# status != 'closed', lets SQLite read the few open tickets from ix_tickets_status.
OPEN_STATUSES = ("open", "dispatched", "in_progress", "resolved", "reopened")

_CHILD_LEVEL = {"district": "town", "town": "village", "village": "grid", "grid": "grid"}
_AREA_MODEL: dict[str, Any] = {"town": Town, "village": Village, "grid": Grid}
_GRID_SUM_COLUMNS = rollup_columns(PER_AREA)
_PETITION_COLUMNS = [
    f"petition_{what}_{level}" for level in PETITION_LEVELS for what in ("batches", "persons")
]
_VILLAGE_SUM_COLUMNS = [
    "petition_batches",
    "petition_persons",
    "mediations",
    "points_earned",
    "points_redeemed",
    *(f"placements_{kind}" for kind in PLACEMENT_KINDS),
    "welfare_posts_created",
    "supervision_posted",
    "supervision_approved",
]
CHILDREN_COLUMNS = [
    "code",
    "name",
    "name_en",
    "level",
    *(f.key for f in PER_AREA),
    "petition_batches",
    "petition_persons",
    "mediations",
    "points_earned",
    "points_redeemed",
    *(f"placements_{kind}" for kind in PLACEMENT_KINDS),
    "welfare_posts",
    "supervision_posted",
    "supervision_approved",
]
_VILLAGE_ONLY = [
    "petition_batches",
    "petition_persons",
    "mediations",
    *(f"placements_{kind}" for kind in PLACEMENT_KINDS),
    "welfare_posts",
    "supervision_posted",
    "supervision_approved",
]


def _frame(conn: Connection, stmt: Select) -> pd.DataFrame:
    result = conn.execute(stmt)
    # Plain tuples: pandas probes each Row with hasattr(), and every miss raises inside
    # SQLAlchemy (measured: half the time of a 7,000-row query went there).
    rows = [tuple(row) for row in result.all()]
    return pd.DataFrame(rows, columns=list(result.keys()))


def _child_level(area: AreaRef) -> str:
    return _CHILD_LEVEL[area.level]


def _in_area(stmt: Select, model: Any, area: AreaRef) -> Select:
    """Filter a geography table (towns, villages, grids) to the rows inside ``area``."""
    if area.level == "district":
        return stmt
    if model is Town:
        return stmt.where(Town.code == area.town_code)
    if model is Village:
        if area.level == "town":
            return stmt.where(Village.town_code == area.code)
        return stmt.where(Village.code == area.village_code)
    if area.level == "town":
        return stmt.where(Grid.town_code == area.code)
    if area.level == "village":
        return stmt.where(Grid.village_code == area.code)
    return stmt.where(Grid.code == area.code)


def _children(conn: Connection, area: AreaRef) -> pd.DataFrame:
    level = _child_level(area)
    model = _AREA_MODEL[level]
    stmt = _in_area(select(model.code, model.name, model.name_en), model, area)
    frame = _frame(conn, stmt.order_by(model.code))
    frame["level"] = level
    return frame


def _key_column(model: Any, level: str) -> Any:
    return getattr(model, f"{level}_code")


def _rollup_sums(
    conn: Connection,
    model: Any,
    columns: Sequence[str],
    area: AreaRef,
    period: Period,
    by: Any,
) -> pd.DataFrame:
    """Sum rollup ``columns`` over the period inside ``area``, grouped by the column ``by``.

    A column named ``petition_batches`` or ``petition_persons`` sums the four levels: one sum
    of a row's total is cheaper than four sums (SQLite pays per aggregate and row).
    """

    def column(name: str) -> Any:
        if name in ("petition_batches", "petition_persons"):
            levels = [getattr(model, f"{name}_{level}") for level in PETITION_LEVELS]
            return sum(levels[1:], levels[0])
        return getattr(model, name)

    stmt = (
        select(
            by.label("key"),
            *(func.coalesce(func.sum(column(c)), 0).label(c) for c in columns),
        )
        .where(model.day >= period.start, model.day <= period.end)
        .group_by(by)
    )
    frame = _frame(conn, _where(stmt, model, area))
    for c in columns:
        frame[c] = frame[c].astype("int64")
    return frame


def _points_by(
    conn: Connection, area: AreaRef, period: Period, by: Any, kinds: Sequence[str]
) -> pd.DataFrame:
    """Sum points per ``by`` and kind from the raw transactions (the rollup has no grids)."""
    low, high = period.utc_bounds
    stmt = (
        select(
            by.label("key"),
            PointsTransaction.kind,
            func.coalesce(func.sum(PointsTransaction.points), 0).label("points"),
        )
        .where(
            PointsTransaction.ts >= low,
            PointsTransaction.ts < high,
            PointsTransaction.kind.in_(list(kinds)),
        )
        .group_by(by, PointsTransaction.kind)
    )
    frame = _frame(conn, _points_where(stmt, area))
    wide = frame.pivot_table(index="key", columns="kind", values="points", aggfunc="sum")
    return wide.reindex(columns=list(kinds)).fillna(0).astype("int64")


def _points_where(stmt: Select, area: AreaRef) -> Select:
    """Filter points transactions to ``area`` so that SQLite can use the (village, ts) index."""
    if area.level == "town":
        # With town_code = X SQLite reads the town's rows of every year; by village and time
        # it reads only the period's (measured: 2x faster for a one-year town period).
        villages = select(Village.code).where(Village.town_code == area.code)
        return stmt.where(PointsTransaction.village_code.in_(villages.scalar_subquery()))
    return _where(stmt, PointsTransaction, area)


def _response_frame(
    conn: Connection, engine: Engine, area: AreaRef, period: Period, *extra: Any
) -> pd.DataFrame:
    """Return ``minutes`` created→arrived of the period's arrived tickets (the kpi's rows)."""
    low, high = period.utc_bounds
    seconds = span_seconds(engine, RESPONSE)
    stmt = select(*extra, seconds.label("seconds")).where(
        Ticket.created_at >= low, Ticket.created_at < high, Ticket.arrived_at.is_not(None)
    )
    frame = _frame(conn, _where(stmt, Ticket, area))
    frame["minutes"] = frame["seconds"].astype(float) / 60
    return frame


def _float(values: Sequence[float | None]) -> list[float]:
    return [math.nan if v is None else float(v) for v in values]


def _rollup_of(key: str) -> Callable[[dict[str, int]], Any]:
    """Return how the declared rollup figure ``key`` is computed from grid-rollup sums."""
    source = BY_KEY[key].source
    if not isinstance(source, Rollup):
        raise ValueError(f"figure {key!r} is not computed from the rollups")
    return source.of


def _per_area(
    conn: Connection,
    engine: Engine,
    figure: Figure,
    area: AreaRef,
    period: Period,
    sums: list[dict[str, int]],
    codes: list[str],
    by: Any,
) -> list[Any]:
    """Return a declared figure for each of ``codes``, the children of ``area`` keyed by ``by``.

    ``sums`` are the children's grid-rollup sums in the order of ``codes``. Counts are ints;
    the other figures floats, NaN where there is none.
    """
    source = figure.source
    if isinstance(source, Rollup):
        values = [source.of(row) for row in sums]
    elif isinstance(source, TicketSpan):
        found = span_stats(conn, engine, area, period, source, getattr(Ticket, by.key))
        values = [found.get(code) for code in codes]
    else:
        raise ValueError(f"figure {figure.key!r} has no per-area definition")
    if figure.kind == "count":
        return [int(v or 0) for v in values]
    return _float(values)


def _months(period: Period) -> list[dt.date]:
    out, month = [], period.start.replace(day=1)
    while month <= period.end:
        out.append(month)
        month = (month + dt.timedelta(days=32)).replace(day=1)
    return out


def _by_month(frame: pd.DataFrame, period: Period, columns: Sequence[str]) -> pd.DataFrame:
    """Sum a per-day frame (``key`` = day) into every month of the period, zero-filled."""
    months = _months(period)
    if frame.empty:
        out = pd.DataFrame(0, index=months, columns=list(columns), dtype="int64")
    else:
        month = frame["key"].map(lambda d: d.replace(day=1))
        out = frame[list(columns)].groupby(month).sum().reindex(months, fill_value=0)
    out.index.name = "month"
    return out.astype("int64")


def _iso_local(series: pd.Series) -> pd.Series:
    local = pd.to_datetime(series, utc=True).dt.tz_convert(SHANGHAI)
    return local.map(lambda ts: ts.isoformat(timespec="seconds"))


def children_figures(engine: Engine, area: AreaRef, period: Period) -> pd.DataFrame:
    """Return the headline figures of each child area of ``area``, sorted by code.

    Children: the district's towns, a town's villages, a village's grids, a grid itself; every
    child is listed, with zero counts and null rates where it has no data. Columns are
    ``CHILDREN_COLUMNS``; for grid children the village-level ones are null, except points
    (summed from the transactions by the household's grid).
    """
    level = _child_level(area)
    by = _key_column(GridDailyRollup, level)
    with engine.connect() as conn:
        out = _children(conn, area)
        grid = _rollup_sums(conn, GridDailyRollup, _GRID_SUM_COLUMNS, area, period, by)
        grid = grid.set_index("key").reindex(out["code"], fill_value=0).astype("int64")
        sums = grid.to_dict("records")
        codes = out["code"].tolist()
        for figure in PER_AREA:
            out[figure.key] = _per_area(conn, engine, figure, area, period, sums, codes, by)
        if level == "grid":
            village = None
            points = _points_by(
                conn, area, period, PointsTransaction.grid_code, ("earned", "redeemed")
            ).reindex(out["code"], fill_value=0)
        else:
            village = _rollup_sums(
                conn,
                VillageDailyRollup,
                _VILLAGE_SUM_COLUMNS,
                area,
                period,
                _key_column(VillageDailyRollup, level),
            ).set_index("key")
            village = village.reindex(out["code"], fill_value=0).astype("int64")
    if village is None:
        for name in _VILLAGE_ONLY:
            out[name] = math.nan
        out["points_earned"] = points["earned"].to_numpy()
        out["points_redeemed"] = points["redeemed"].to_numpy()
    else:
        for name in (
            "petition_batches",
            "petition_persons",
            "mediations",
            "points_earned",
            "points_redeemed",
            "supervision_posted",
            "supervision_approved",
            *(f"placements_{k}" for k in PLACEMENT_KINDS),
        ):
            out[name] = village[name].to_numpy()
        out["welfare_posts"] = village["welfare_posts_created"].to_numpy()
    return out[CHILDREN_COLUMNS].reset_index(drop=True)


MONTHLY_COLUMNS = [
    "month",
    "requests",
    "closed",
    "closure_rate",
    "satisfaction_rate",
    "calls",
    "calls_answered",
    "call_answer_rate",
    *_PETITION_COLUMNS,
    "mediations",
    "points_earned",
    "points_redeemed",
    *(f"placements_{kind}" for kind in PLACEMENT_KINDS),
]
_MONTHLY_GRID = [
    "requests",
    "closed",
    "rated",
    "satisfied",
    "thumbs_up",
    "thumbs_down",
    "calls",
    "calls_answered",
]
_MONTHLY_VILLAGE = [
    *_PETITION_COLUMNS,
    "mediations",
    "points_earned",
    "points_redeemed",
    *(f"placements_{kind}" for kind in PLACEMENT_KINDS),
]


def _points_daily(conn: Connection, area: AreaRef, period: Period) -> pd.DataFrame:
    """Return the points earned and redeemed per Asia/Shanghai day, from the raw rows."""
    low, high = period.utc_bounds
    stmt = select(PointsTransaction.ts, PointsTransaction.kind, PointsTransaction.points).where(
        PointsTransaction.ts >= low, PointsTransaction.ts < high
    )
    raw = _frame(conn, _points_where(stmt, area))
    if raw.empty:
        return pd.DataFrame(columns=["key", "points_earned", "points_redeemed"])
    raw["key"] = _local_days(raw["ts"])
    for kind in ("earned", "redeemed"):
        raw[f"points_{kind}"] = raw["points"].where(raw["kind"] == kind, 0)
    return raw.groupby("key", as_index=False)[["points_earned", "points_redeemed"]].sum()


def monthly_series(engine: Engine, area: AreaRef, period: Period) -> pd.DataFrame:
    """Return one row per Asia/Shanghai month of the period with the monthly figures.

    Columns are ``MONTHLY_COLUMNS``; ``month`` is the first day of the month (a date). Every
    month is present, zero-filled; the first and last months count only the period's days.
    For a grid the village-level columns are null, except points.
    """
    day = GridDailyRollup.day
    with engine.connect() as conn:
        grid = _rollup_sums(conn, GridDailyRollup, _MONTHLY_GRID, area, period, day)
        if area.level == "grid":
            village = None
            points = _points_daily(conn, area, period)
        else:
            village = _rollup_sums(
                conn, VillageDailyRollup, _MONTHLY_VILLAGE, area, period, VillageDailyRollup.day
            )
    g = _by_month(grid, period, _MONTHLY_GRID)
    records = g.to_dict("records")
    out = g[["requests", "closed", "calls", "calls_answered"]].copy()
    for name in ("closure_rate", "satisfaction_rate", "call_answer_rate"):
        out[name] = _float([_rollup_of(name)(r) for r in records])
    if village is None:
        for name in _MONTHLY_VILLAGE:
            out[name] = math.nan
        p = _by_month(points, period, ["points_earned", "points_redeemed"])
        out["points_earned"], out["points_redeemed"] = p["points_earned"], p["points_redeemed"]
    else:
        v = _by_month(village, period, _MONTHLY_VILLAGE)
        for name in _MONTHLY_VILLAGE:
            out[name] = v[name]
    return out.reset_index()[MONTHLY_COLUMNS]


def petition_trend(engine: Engine, area: AreaRef, period: Period) -> pd.DataFrame:
    """Return monthly petition batches and persons per level, and the same month a year before.

    Columns: ``month``, ``petition_{batches,persons}_{level}`` and the totals
    ``petition_{batches,persons}``, each also with ``_prev`` (the same month a year before).
    Petitions are village-level: for a grid every value is null.
    """
    before = period.year_before()
    day = VillageDailyRollup.day
    columns = [*_PETITION_COLUMNS, "petition_batches", "petition_persons"]
    names = [*columns, *(f"{c}_prev" for c in columns)]
    months = _months(period)
    if area.level == "grid":
        out = pd.DataFrame(math.nan, index=range(len(months)), columns=names)
        out.insert(0, "month", months)
        return out
    with engine.connect() as conn:
        now = _rollup_sums(conn, VillageDailyRollup, _PETITION_COLUMNS, area, period, day)
        prev = _rollup_sums(conn, VillageDailyRollup, _PETITION_COLUMNS, area, before, day)
    cur = _by_month(now, period, _PETITION_COLUMNS)
    old = _by_month(prev, before, _PETITION_COLUMNS)
    # The year before has the same months (29 February maps to 28 February), one year earlier.
    old.index = [_plus_year(m) for m in old.index]
    old = old.reindex(cur.index, fill_value=0)
    for frame in (cur, old):
        for what in ("batches", "persons"):
            frame[f"petition_{what}"] = frame[
                [f"petition_{what}_{x}" for x in PETITION_LEVELS]
            ].sum(axis=1)
    out = cur[columns].join(old[columns].add_suffix("_prev"))
    out.index.name = "month"
    return out.reset_index()[["month", *names]]


def _plus_year(month: dt.date) -> dt.date:
    return month.replace(year=month.year + 1)


@dataclass(frozen=True, eq=False)
class ResponseDistribution:
    """Created→arrived minutes of the period's arrived tickets: bin counts and percentiles."""

    bins: pd.DataFrame  # label, low, high (None = open-ended), count
    arrived: int
    median: float | None
    p90: float | None


def _bin_label(low: int, high: int | None) -> str:
    return f"≥{low}" if high is None else f"{low}–{high}"


def response_distribution(
    engine: Engine,
    area: AreaRef,
    period: Period,
    bins: Sequence[int | None] = DEFAULT_BINS,
) -> ResponseDistribution:
    """Count created→arrived minutes of tickets created in the period into ``bins``.

    Bins are [low, high) minutes; a final ``None`` makes the last one open-ended (otherwise
    longer responses are not counted). Median and p90 are ``kpi.response_minutes``.
    """
    edges = list(bins)
    if any(b is None for b in edges[:-1]) or len(edges) < 2:
        raise ValueError("bins: two or more edges, only the last may be None")
    with engine.connect() as conn:
        minutes = _response_frame(conn, engine, area, period)["minutes"].to_numpy()
    labels, counts = [], []
    for k, (lo, hi) in enumerate(zip(edges[:-1], edges[1:], strict=True)):
        assert lo is not None
        # The first bin also takes the odd arrival stamped before creation (clock skew).
        inside = (minutes >= lo) if k else np.ones_like(minutes, dtype=bool)
        if hi is not None:
            inside &= minutes < hi
        labels.append(_bin_label(lo, hi))
        counts.append(int(inside.sum()))
    table = pd.DataFrame(
        {
            "label": labels,
            "low": edges[:-1],
            # object, so the open end stays None rather than the column turning float
            "high": pd.Series(edges[1:], dtype=object),
            "count": counts,
        }
    )
    # The figures themselves come from kpi, so the panel and the headline tile always agree.
    percentiles = response_minutes(engine, area, period)
    return ResponseDistribution(table, len(minutes), percentiles["median"], percentiles["p90"])


def resolution_levels_counts(engine: Engine, area: AreaRef, period: Period) -> dict[str, int]:
    """Return how many of the period's tickets were resolved at each level."""
    sums = _grid_sums(engine, area, period)
    return {level: sums[f"resolved_{level}"] for level in RESOLUTION_LEVELS}


OPEN_TICKET_COLUMNS = [
    "id",
    "created_at",
    "town_code",
    "town",
    "town_en",
    "village_code",
    "village",
    "village_en",
    "grid_code",
    "grid",
    "grid_en",
    "category",
    "priority",
    "status",
    "title",
    "age_hours",
    "overdue_arrival",
    "overdue_closure",
]


def _open_tickets(
    engine: Engine,
    area: AreaRef,
    now: dt.datetime,
    limit: int | None,
    deadlines: dict[str, Deadline] | None,
) -> pd.DataFrame:
    stmt = (
        select(
            Ticket.id,
            Ticket.created_at,
            Ticket.arrived_at,
            Ticket.town_code,
            Town.name.label("town"),
            Town.name_en.label("town_en"),
            Ticket.village_code,
            Village.name.label("village"),
            Village.name_en.label("village_en"),
            Ticket.grid_code,
            Grid.name.label("grid"),
            Grid.name_en.label("grid_en"),
            Ticket.category,
            Ticket.priority,
            Ticket.status,
            Ticket.title,
        )
        .join(Grid, Grid.code == Ticket.grid_code)
        .join(Village, Village.code == Ticket.village_code)
        .join(Town, Town.code == Ticket.town_code)
        .where(Ticket.status.in_(OPEN_STATUSES), Ticket.created_at <= now)
        .order_by(Ticket.created_at.desc(), Ticket.id.desc())
    )
    if limit is not None:
        stmt = stmt.limit(limit)
    with engine.connect() as conn:
        frame = _frame(conn, _where(stmt, Ticket, area))
    if frame.empty:
        kinds = {"age_hours": float, "overdue_arrival": bool, "overdue_closure": bool}
        return pd.DataFrame({c: pd.Series(dtype=kinds.get(c, object)) for c in OPEN_TICKET_COLUMNS})
    created = pd.to_datetime(frame["created_at"], utc=True)
    age = (pd.Timestamp(now).tz_convert("UTC") - created).dt.total_seconds() / 3600
    limits = [
        deadline_for(c, p, deadlines)
        for c, p in zip(frame["category"], frame["priority"], strict=True)
    ]
    arrive = np.array([d.arrive_hours for d in limits], dtype=float)
    close = np.array([d.close_hours for d in limits], dtype=float)
    # The same rule as the scheduler's escalation (dashboard.scheduler.escalate_overdue_tickets).
    frame["overdue_arrival"] = frame["arrived_at"].isna().to_numpy() & (age.to_numpy() > arrive)
    frame["overdue_closure"] = age.to_numpy() > close
    frame["age_hours"] = age.round(1)
    frame["created_at"] = _iso_local(frame["created_at"])
    return frame[OPEN_TICKET_COLUMNS]


def open_tickets(
    engine: Engine,
    area: AreaRef,
    now: dt.datetime,
    limit: int = 500,
    deadlines: dict[str, Deadline] | None = None,
) -> pd.DataFrame:
    """Return the area's tickets not closed as of ``now``, newest first, with overdue flags.

    ``overdue_arrival``: nobody on site and the category's arrival deadline passed;
    ``overdue_closure``: the closure deadline passed (``datasources.sla``, urgent is tighter).
    No personal data: no phones, no residents' names.
    """
    return _open_tickets(engine, area, now, limit, deadlines)


def overdue_tickets(
    engine: Engine,
    area: AreaRef,
    now: dt.datetime,
    limit: int = 500,
    deadlines: dict[str, Deadline] | None = None,
) -> pd.DataFrame:
    """Return the open tickets past their arrival or closure deadline, newest first."""
    frame = _open_tickets(engine, area, now, None, deadlines)
    overdue = frame[frame["overdue_arrival"] | frame["overdue_closure"]]
    return overdue.head(limit).reset_index(drop=True)


SUPERVISION_COLUMNS = [
    "id",
    "village_code",
    "village",
    "village_en",
    "title",
    "posted_at",
    "posted_day",
    "vote_closes",
    "working_days_ahead",
    "approve",
    "reject",
    "approval_share",
    "on_notice",
    "approved",
]


def supervision_items(engine: Engine, area: AreaRef, period: Period) -> pd.DataFrame:
    """Return the supervision items posted in the period with their votes, oldest first.

    ``posted_at`` is an Asia/Shanghai ISO time; ``on_notice`` = posted 3+ working days before
    the vote closes; ``approved`` = at least 80% of the votes approve. Supervision is
    village-level: a grid gets no rows.
    """
    empty = pd.DataFrame({c: pd.Series(dtype=object) for c in SUPERVISION_COLUMNS})
    if area.level == "grid":
        return empty
    low, high = period.utc_bounds
    item = SupervisionItem
    stmt = (
        select(
            item.id,
            item.village_code,
            Village.name.label("village"),
            Village.name_en.label("village_en"),
            item.title,
            item.posted_at,
            item.vote_closes,
            item.approve,
            item.reject,
        )
        .join(Village, Village.code == item.village_code)
        .where(item.posted_at >= low, item.posted_at < high)
        .order_by(item.posted_at, item.id)
    )
    with engine.connect() as conn:
        frame = _frame(conn, _where(stmt, item, area))
    if frame.empty:
        return empty
    frame["posted_day"] = _local_days(frame["posted_at"])
    frame["posted_at"] = _iso_local(frame["posted_at"])
    frame["working_days_ahead"] = _working_days_between(frame["posted_day"], frame["vote_closes"])
    votes = frame["approve"] + frame["reject"]
    frame["approval_share"] = (frame["approve"] / votes.where(votes > 0)).round(4)
    frame["on_notice"] = frame["working_days_ahead"] >= NOTICE_WORKING_DAYS
    frame["approved"] = (votes > 0) & (frame["approve"] >= APPROVAL_SHARE * votes)
    return frame[SUPERVISION_COLUMNS]


def device_health(engine: Engine, area: AreaRef, now: dt.datetime) -> dict[str, Any]:
    """Return callers installed, online in 24 h, offline and low on battery, with a breakdown.

    The definitions are ``kpi.devices``'. ``by_area`` is a DataFrame per child area (the towns
    of the district, the villages of a town, the grids of a village) with ``code, name,
    name_en, level, installed, online, offline, low_battery, online_rate``.
    """
    level = _child_level(area)
    key = _key_column(Device, level)
    online = case((Device.last_heartbeat_at >= now - ONLINE_WITHIN, 1), else_=0)
    low = case((Device.battery < LOW_BATTERY, 1), else_=0)
    stmt = (
        select(
            key.label("key"),
            func.count().label("installed"),
            func.sum(online).label("online"),
            func.sum(low).label("low_battery"),
        )
        .where(Device.installed_at <= now)
        .group_by(key)
    )
    with engine.connect() as conn:
        by = _children(conn, area)
        counts = _frame(conn, _where(stmt, Device, area)).set_index("key")
    counts = counts.reindex(by["code"], fill_value=0).fillna(0).astype("int64")
    for name in ("installed", "online", "low_battery"):
        by[name] = counts[name].to_numpy()
    by["offline"] = by["installed"] - by["online"]
    by["online_rate"] = _float(
        [rate(o, i) for o, i in zip(by["online"], by["installed"], strict=True)]
    )
    by = by[
        [
            "code",
            "name",
            "name_en",
            "level",
            "installed",
            "online",
            "offline",
            "low_battery",
            "online_rate",
        ]
    ]
    installed, n_online = int(by["installed"].sum()), int(by["online"].sum())
    return {
        "installed": installed,
        "online": n_online,
        "offline": installed - n_online,
        "low_battery": int(by["low_battery"].sum()),
        "online_rate": rate(n_online, installed),
        "by_area": by,
    }


def _grids_of(conn: Connection, area: AreaRef) -> pd.DataFrame:
    stmt = _in_area(select(Grid.code, Grid.village_code), Grid, area).order_by(Grid.code)
    return _frame(conn, stmt)


def grid_values(
    engine: Engine, area: AreaRef, period: Period, metric: str, now: dt.datetime
) -> dict[str, float | None]:
    """Return one value of ``metric`` (a key of ``figures.MAP_METRICS``) per grid of the area.

    The value is the figure as declared (``datasources.figures``) for the grid: rollup figures
    are summed over the period, ticket-time figures taken over the grid's tickets; the
    ``Special`` ones are ``open_tickets``, tickets not closed at ``now``; ``points_redeemed``,
    from the transactions' household grid; and ``placements``, which has no grid figure: each
    grid gets its village's placements of all kinds (so do not add grids up). Rates are
    fractions; ``None`` where there is nothing to divide by (or no ticket to take a time of).
    """
    figure = MAP_METRICS.get(metric)
    if figure is None:
        raise ValueError(f"unknown metric {metric!r}; one of {', '.join(MAP_METRICS)}")
    source = figure.source
    with engine.connect() as conn:
        grids = _grids_of(conn, area)
        codes = grids["code"].tolist()
        if isinstance(source, Rollup):
            sums = _rollup_sums(
                conn, GridDailyRollup, source.columns, area, period, GridDailyRollup.grid_code
            ).set_index("key")
            rows = sums.reindex(codes, fill_value=0).to_dict("index")
            return {c: _or_none(source.of(r)) for c, r in rows.items()}
        if isinstance(source, TicketSpan):
            found = span_stats(conn, engine, area, period, source, Ticket.grid_code)
            return {c: found.get(c) for c in codes}
        return _SPECIAL[source.name](conn, area, period, now, grids)


def _or_none(value: float | None) -> float | None:
    return None if value is None else float(value)


def _open_by_grid(
    conn: Connection, area: AreaRef, period: Period, now: dt.datetime, grids: pd.DataFrame
) -> dict[str, float | None]:
    stmt = (
        select(Ticket.grid_code, func.count())
        .where(Ticket.status.in_(OPEN_STATUSES), Ticket.created_at <= now)
        .group_by(Ticket.grid_code)
    )
    found = {grid: n for grid, n in conn.execute(_where(stmt, Ticket, area))}
    return {c: float(found.get(c, 0)) for c in grids["code"]}


def _redeemed_by_grid(
    conn: Connection, area: AreaRef, period: Period, now: dt.datetime, grids: pd.DataFrame
) -> dict[str, float | None]:
    points = _points_by(conn, area, period, PointsTransaction.grid_code, ("redeemed",))
    redeemed = points["redeemed"].reindex(grids["code"], fill_value=0)
    return {c: float(v) for c, v in redeemed.items()}


def _placements_by_grid(
    conn: Connection, area: AreaRef, period: Period, now: dt.datetime, grids: pd.DataFrame
) -> dict[str, float | None]:
    village_area = area
    if area.level == "grid":
        # Placements are village facts: a grid shows its whole village's figure.
        village_area = AreaRef(
            "village", str(area.village_code), "", area.town_code, area.village_code
        )
    columns = [f"placements_{kind}" for kind in PLACEMENT_KINDS]
    sums = _rollup_sums(
        conn, VillageDailyRollup, columns, village_area, period, VillageDailyRollup.village_code
    ).set_index("key")
    per_village = sums[columns].sum(axis=1)
    return {
        c: float(per_village.get(v, 0))
        for c, v in zip(grids["code"].tolist(), grids["village_code"].tolist(), strict=True)
    }


# The map figures with a query of their own, by ``figures.Special.name``.
_SPECIAL: dict[str, Callable[..., dict[str, float | None]]] = {
    "open_tickets": _open_by_grid,
    "points_redeemed": _redeemed_by_grid,
    "placements": _placements_by_grid,
}


GRID_DIRECTORY_COLUMNS = [
    "code",
    "name",
    "name_en",
    "village_code",
    "village",
    "village_en",
    "town_code",
    "town",
    "town_en",
    "grid_leader",
    "grid_leader_phone",
    "grid_worker",
    "grid_worker_phone",
    "households",
    "residents",
]


def grid_directory(engine: Engine, area: AreaRef | None = None) -> pd.DataFrame:
    """Return every grid (of ``area``, default all) with its leader and worker, phones masked.

    Several active staff in one role are joined with "、" in the same order in both columns.
    """
    stmt = (
        select(
            Grid.code,
            Grid.name,
            Grid.name_en,
            Grid.village_code,
            Village.name.label("village"),
            Village.name_en.label("village_en"),
            Grid.town_code,
            Town.name.label("town"),
            Town.name_en.label("town_en"),
            Grid.households,
            Grid.residents,
        )
        .join(Village, Village.code == Grid.village_code)
        .join(Town, Town.code == Grid.town_code)
        .order_by(Grid.code)
    )
    staff = (
        select(Staff.grid_code, Staff.role, Staff.name, Staff.phone)
        .where(
            Staff.active.is_(True),
            Staff.grid_code.is_not(None),
            Staff.role.in_(["grid_leader", "grid_worker"]),
        )
        .order_by(Staff.grid_code, Staff.role, Staff.id)
    )
    if area is not None:
        stmt = _in_area(stmt, Grid, area)
        staff = _where(staff, Staff, area)
    with engine.connect() as conn:
        grids = _frame(conn, stmt)
        people = conn.execute(staff).all()
    names: dict[tuple[str | None, str], list[str]] = {}
    phones: dict[tuple[str | None, str], list[str]] = {}
    for grid, role, name, phone in people:
        names.setdefault((grid, role), []).append(name)
        phones.setdefault((grid, role), []).append(mask_phone(phone))
    codes = grids["code"].tolist()
    for role in ("grid_leader", "grid_worker"):
        grids[role] = ["、".join(names.get((c, role), [])) for c in codes]
        grids[f"{role}_phone"] = ["、".join(phones.get((c, role), [])) for c in codes]
    return grids[GRID_DIRECTORY_COLUMNS]


def area_options(engine: Engine, area: AreaRef) -> dict[str, list[dict[str, str]]]:
    """Return the towns, villages and grids inside ``area`` for the filter dropdowns.

    ``{"towns": [{code, name, name_en}], "villages": [{…, town_code}], "grids": [{…,
    village_code, town_code}]}``, each sorted by code; a town area lists itself as the only
    town, a village area its town and itself.
    """
    with engine.connect() as conn:
        towns = _frame(conn, _in_area(select(Town.code, Town.name, Town.name_en), Town, area))
        villages = _frame(
            conn,
            _in_area(
                select(Village.code, Village.name, Village.name_en, Village.town_code),
                Village,
                area,
            ),
        )
        grids = _frame(
            conn,
            _in_area(
                select(Grid.code, Grid.name, Grid.name_en, Grid.village_code, Grid.town_code),
                Grid,
                area,
            ),
        )
    return {
        key: frame.sort_values("code").to_dict("records")
        for key, frame in (("towns", towns), ("villages", villages), ("grids", grids))
    }
