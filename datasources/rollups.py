"""Daily rollups per grid and per village, rebuilt from the raw rows.

Rollups are a cache: ``rebuild_rollups`` recomputes whole Asia/Shanghai days from the raw tables
and replaces those days' rows, so running it again is always safe and always correct. Ticket
figures are keyed by the ticket's creation day (a later closure updates that day's row, see
``days_touched_since``); calls by the day of the call; village facts by the day they happened.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine, delete, distinct, select

from datasources.db import session_scope
from datasources.models import (
    CallEvent,
    GridDailyRollup,
    JobPlacement,
    Mediation,
    Petition,
    PointsTransaction,
    PublicWelfareJob,
    SupervisionItem,
    Ticket,
    TicketEvent,
    VillageDailyRollup,
)
from datasources.periods import SHANGHAI, day_start, local_day
from datasources.sla import DEFAULT_DEADLINES, URGENT, Deadline

ANSWER_WITHIN = dt.timedelta(minutes=5)
APPROVAL_SHARE = 0.8
NOTICE_WORKING_DAYS = 3
BATCH = 5_000
PETITION_LEVELS = ("district", "city", "province", "national")


def _frame(session: Any, statement: Any) -> pd.DataFrame:
    result = session.execute(statement)
    return pd.DataFrame(result.all(), columns=list(result.keys()))


def _local_days(series: pd.Series) -> pd.Series:
    """Map aware UTC datetimes to their Asia/Shanghai dates."""
    return pd.to_datetime(series, utc=True).dt.tz_convert(SHANGHAI).dt.date


def _close_limits(frame: pd.DataFrame, table: dict[str, Deadline]) -> pd.Series:
    hours = frame["category"].map(lambda c: table.get(c, table["other"]).close_hours)
    urgent = frame["priority"] == "urgent"
    hours = hours.where(~urgent, np.minimum(hours, URGENT.close_hours))
    return pd.to_timedelta(hours, unit="h")


def _grid_rows(session: Any, low: dt.datetime, high: dt.datetime, deadlines) -> pd.DataFrame:
    keys = ["day", "grid_code", "village_code", "town_code"]
    tickets = _frame(
        session,
        select(
            Ticket.grid_code,
            Ticket.village_code,
            Ticket.town_code,
            Ticket.category,
            Ticket.priority,
            Ticket.created_at,
            Ticket.closed_at,
            Ticket.rating,
            Ticket.resolution_level,
        ).where(Ticket.created_at >= low, Ticket.created_at < high),
    )
    parts = []
    if not tickets.empty:
        tickets["day"] = _local_days(tickets["created_at"])
        created = pd.to_datetime(tickets["created_at"], utc=True)
        closed = pd.to_datetime(tickets["closed_at"], utc=True)
        t = tickets[keys].copy()
        t["requests"] = 1
        t["closed"] = closed.notna().astype(int)
        t["closed_on_time"] = (
            closed.notna() & ((closed - created) <= _close_limits(tickets, deadlines))
        ).astype(int)
        t["rated"] = tickets["rating"].notna().astype(int)
        t["satisfied"] = (tickets["rating"] == "satisfied").astype(int)
        for level in ("grid", "village", "town", "district"):
            t[f"resolved_{level}"] = (tickets["resolution_level"] == level).astype(int)
        parts.append(t)
    calls = _frame(
        session,
        select(
            CallEvent.grid_code,
            CallEvent.village_code,
            CallEvent.town_code,
            CallEvent.key,
            CallEvent.ts,
            CallEvent.answered_at,
        ).where(CallEvent.ts >= low, CallEvent.ts < high),
    )
    if not calls.empty:
        calls["day"] = _local_days(calls["ts"])
        ts = pd.to_datetime(calls["ts"], utc=True)
        answered = pd.to_datetime(calls["answered_at"], utc=True)
        c = calls[keys].copy()
        green = calls["key"] == "call"
        c["calls"] = green.astype(int)
        c["calls_answered"] = (
            green & answered.notna() & ((answered - ts) <= ANSWER_WITHIN)
        ).astype(int)
        c["thumbs_up"] = (calls["key"] == "satisfied").astype(int)
        c["thumbs_down"] = (calls["key"] == "unsatisfied").astype(int)
        parts.append(c)
    if not parts:
        return pd.DataFrame()
    merged = pd.concat(parts, ignore_index=True).fillna(0)
    return merged.groupby(keys, as_index=False).sum(numeric_only=True)


def _working_days_between(start: pd.Series, end: pd.Series) -> pd.Series:
    return pd.Series(
        np.busday_count(start.to_numpy(dtype="datetime64[D]"), end.to_numpy(dtype="datetime64[D]")),
        index=start.index,
    )


def _village_rows(session: Any, low: dt.datetime, high: dt.datetime) -> pd.DataFrame:
    keys = ["day", "village_code", "town_code"]
    parts = []

    def add(statement: Any, ts_col: str, build) -> None:
        frame = _frame(session, statement)
        if frame.empty:
            return
        frame["day"] = _local_days(frame[ts_col])
        out = frame[keys].copy()
        for name, values in build(frame).items():
            out[name] = values
        parts.append(out)

    def petitions(f: pd.DataFrame) -> dict[str, Any]:
        cols: dict[str, Any] = {}
        for level in PETITION_LEVELS:
            mine = f["level"] == level
            cols[f"petition_batches_{level}"] = mine.astype(int)
            cols[f"petition_persons_{level}"] = f["persons"].where(mine, 0)
        cols["petition_repeat"] = f["repeat"].astype(int)
        return cols

    add(
        select(
            Petition.village_code,
            Petition.town_code,
            Petition.level,
            Petition.persons,
            Petition.repeat,
            Petition.filed_at,
        ).where(Petition.filed_at >= low, Petition.filed_at < high),
        "filed_at",
        petitions,
    )
    add(
        select(Mediation.village_code, Mediation.town_code, Mediation.closed_at).where(
            Mediation.closed_at >= low, Mediation.closed_at < high
        ),
        "closed_at",
        lambda f: {"mediations": 1},
    )
    add(
        select(
            PointsTransaction.village_code,
            PointsTransaction.town_code,
            PointsTransaction.kind,
            PointsTransaction.points,
            PointsTransaction.ts,
        ).where(PointsTransaction.ts >= low, PointsTransaction.ts < high),
        "ts",
        lambda f: {
            "points_earned": f["points"].where(f["kind"] == "earned", 0),
            "points_redeemed": f["points"].where(f["kind"] == "redeemed", 0),
        },
    )
    add(
        select(
            JobPlacement.village_code,
            JobPlacement.town_code,
            JobPlacement.job_kind,
            JobPlacement.placed_at,
        ).where(JobPlacement.placed_at >= low, JobPlacement.placed_at < high),
        "placed_at",
        lambda f: {
            f"placements_{kind}": (f["job_kind"] == kind).astype(int)
            for kind in ("public_welfare", "doorstep", "urban")
        },
    )
    add(
        select(
            PublicWelfareJob.village_code, PublicWelfareJob.town_code, PublicWelfareJob.created_at
        ).where(PublicWelfareJob.created_at >= low, PublicWelfareJob.created_at < high),
        "created_at",
        lambda f: {"welfare_posts_created": 1},
    )

    def supervision(f: pd.DataFrame) -> dict[str, Any]:
        posted_day = pd.Series(_local_days(f["posted_at"]), index=f.index)
        ahead = _working_days_between(posted_day, f["vote_closes"])
        votes = f["approve"] + f["reject"]
        approved = (votes > 0) & (f["approve"] >= APPROVAL_SHARE * votes)
        return {
            "supervision_posted": 1,
            "supervision_on_notice": (ahead >= NOTICE_WORKING_DAYS).astype(int),
            "supervision_approved": approved.astype(int),
        }

    add(
        select(
            SupervisionItem.village_code,
            SupervisionItem.town_code,
            SupervisionItem.posted_at,
            SupervisionItem.vote_closes,
            SupervisionItem.approve,
            SupervisionItem.reject,
        ).where(SupervisionItem.posted_at >= low, SupervisionItem.posted_at < high),
        "posted_at",
        supervision,
    )
    if not parts:
        return pd.DataFrame()
    merged = pd.concat(parts, ignore_index=True).fillna(0)
    return merged.groupby(keys, as_index=False).sum(numeric_only=True)


def _records(frame: pd.DataFrame, model: type) -> list[dict[str, Any]]:
    columns = [c.name for c in model.__table__.c]  # type: ignore[attr-defined]
    out = []
    for record in frame.to_dict("records"):
        row = {}
        for name in columns:
            value = record.get(name, 0)
            row[name] = int(value) if isinstance(value, (int, float, np.integer)) else value
        out.append(row)
    return out


def rebuild_rollups(
    engine: Engine,
    start: dt.date,
    end: dt.date,
    deadlines: dict[str, Deadline] | None = None,
) -> int:
    """Recompute the rollups of the Asia/Shanghai days ``start``..``end``; return rows written."""
    low, high = day_start(start), day_start(end + dt.timedelta(days=1))
    table = deadlines or DEFAULT_DEADLINES
    written = 0
    with session_scope(engine) as session:
        grid = _grid_rows(session, low, high, table)
        village = _village_rows(session, low, high)
        session.execute(
            delete(GridDailyRollup).where(GridDailyRollup.day >= start, GridDailyRollup.day <= end)
        )
        session.execute(
            delete(VillageDailyRollup).where(
                VillageDailyRollup.day >= start, VillageDailyRollup.day <= end
            )
        )
        for model, frame in ((GridDailyRollup, grid), (VillageDailyRollup, village)):
            if frame.empty:
                continue
            records = _records(frame, model)
            for k in range(0, len(records), BATCH):
                session.execute(model.__table__.insert(), records[k : k + BATCH])  # type: ignore[attr-defined]
            written += len(records)
    return written


def rebuild_days(
    engine: Engine, days: Iterable[dt.date], deadlines: dict[str, Deadline] | None = None
) -> int:
    """Rebuild the rollups of each given day (grouped into runs of consecutive days)."""
    ordered = sorted(set(days))
    written = 0
    runs: list[list[dt.date]] = []
    for day in ordered:
        if runs and day == runs[-1][-1] + dt.timedelta(days=1):
            runs[-1].append(day)
        else:
            runs.append([day])
    for run in runs:
        written += rebuild_rollups(engine, run[0], run[-1], deadlines)
    return written


def days_touched_since(engine: Engine, since: dt.datetime) -> set[dt.date]:
    """Return the creation days of tickets with events since ``since`` (their rows changed)."""
    with session_scope(engine) as session:
        created = session.scalars(
            select(distinct(Ticket.created_at))
            .join(TicketEvent, TicketEvent.ticket_id == Ticket.id)
            .where(TicketEvent.ts >= since)
        ).all()
    return {local_day(ts) for ts in created}
