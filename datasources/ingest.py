"""Store validated events in SQL, idempotently: the store functions of the event kinds.

``datasources.kinds.store_batch`` runs, in one transaction, the store function each kind
declares; a store function inserts its kind's rows, applies what follows from them in SQL and
in the live state (linking answered calls, ticket stages, open tickets), and lists the events
stored for the first time in ``BatchOutcome.stored`` for their kind's live projection.

Every fact row's primary key is the producer's event id, so each insert is
``INSERT … ON CONFLICT DO NOTHING RETURNING id``: the ids that come back are the events stored
for the first time, and only those move ticket stages and live counters. On PostgreSQL large
inserts go through ``COPY`` into a temporary table first (about twice as fast as executemany).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, bindparam, select, text
from sqlalchemy.dialects import postgresql, sqlite

from datasources.events import (
    ESCALATION_LEVELS,
    TICKET_STAGE_KINDS,
    Event,
    Registry,
)
from datasources.live import (
    LiveDelta,
    LiveKeys,
    call_info,
    ticket_info,
)
from datasources.models import (
    CallEvent,
    CallReturn,
    DeviceHeartbeat,
    JobPlacement,
    Petition,
    PointsTransaction,
    SupervisionItem,
    SupervisionVote,
    Ticket,
    TicketEvent,
    UTCDateTime,
)
from datasources.simple_kinds import SIMPLE_KINDS

CALL_ANSWER_WINDOW = dt.timedelta(minutes=5)
COPY_MIN_ROWS = 64
UNKNOWN_TICKET = "unknown ticket"
UNKNOWN_CALL = "unknown call"
UNKNOWN_ITEM = "unknown supervision item"
_COMMON = {"v", "id", "kind", "ts", "grid", "village", "ticket"}


@dataclass
class BatchOutcome:
    """What storing a batch did."""

    new_ids: set[str] = field(default_factory=set)
    parked: dict[str, str] = field(default_factory=dict)  # event id -> reason
    outbox_id: str | None = None
    payload: str = ""
    # The events stored for the first time, with their (grid, village, town), for projecting.
    stored: list[tuple[Event, tuple[str | None, str, str]]] = field(default_factory=list)


def _insert_new(
    conn: Connection, table: Any, rows: list[dict[str, Any]], key: str = "id"
) -> set[str]:
    """Insert rows, skipping conflicts; return the ``key`` values of the rows inserted."""
    if not rows:
        return set()
    if conn.dialect.name == "postgresql":
        if len(rows) >= COPY_MIN_ROWS:
            return _copy_insert(conn, table, rows, key)
        stmt: Any = postgresql.insert(table).on_conflict_do_nothing()
    else:
        stmt = sqlite.insert(table).on_conflict_do_nothing()
    return {r[0] for r in conn.execute(stmt.returning(table.c[key]), rows)}


def _copy_insert(conn: Connection, table: Any, rows: list[dict[str, Any]], key: str) -> set[str]:
    """COPY rows into a temporary twin of ``table``, then insert the new ones from it."""
    cols = list(rows[0])
    tmp = f"_in_{table.name}"
    pooled = conn.connection
    made: set[str] = pooled.info.setdefault("wushi_temp_tables", set())
    json_cols = {c.name for c in table.columns if c.type.__class__.__name__ == "JSON"}
    collist = ", ".join(cols)
    with pooled.dbapi_connection.cursor() as cur:  # type: ignore[union-attr]
        if tmp not in made:
            cur.execute(
                f"CREATE TEMP TABLE IF NOT EXISTS {tmp} (LIKE {table.name} INCLUDING DEFAULTS) "
                "ON COMMIT DELETE ROWS"
            )
            made.add(tmp)
        else:
            # The same table may be filled twice in one transaction.
            cur.execute(f"DELETE FROM {tmp}")
        with cur.copy(f"COPY {tmp} ({collist}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(
                    [
                        json.dumps(row[c], ensure_ascii=False) if c in json_cols else row[c]
                        for c in cols
                    ]
                )
        cur.execute(
            f"INSERT INTO {table.name} ({collist}) SELECT {collist} FROM {tmp} "
            f"ON CONFLICT DO NOTHING RETURNING {key}"
        )
        return {r[0] for r in cur.fetchall()}


def _sql(statement: str, *datetimes: str) -> Any:
    """Build a text statement whose named datetime parameters go through ``UTCDateTime``."""
    return text(statement).bindparams(*(bindparam(n, type_=UTCDateTime()) for n in datetimes))


_RANK = (
    "(CASE status WHEN 'dispatched' THEN 1 WHEN 'in_progress' THEN 2 WHEN 'resolved' THEN 3 "
    "WHEN 'closed' THEN 4 ELSE 0 END)"
)
_ELEVATION = (
    "(CASE escalation_level WHEN 'village' THEN 1 WHEN 'town' THEN 2 WHEN 'district' THEN 3 "
    "ELSE 0 END)"
)
_STAGE_SQL = {
    "ticket.dispatched": _sql(
        "UPDATE tickets SET dispatched_at = CASE WHEN dispatched_at IS NULL OR dispatched_at > :ts "
        "THEN :ts ELSE dispatched_at END, assignee_id = :assignee, "
        f"status = CASE WHEN {_RANK} < 1 THEN 'dispatched' ELSE status END WHERE id = :ticket",
        "ts",
    ),
    "ticket.arrived": _sql(
        "UPDATE tickets SET arrived_at = CASE WHEN arrived_at IS NULL OR arrived_at > :ts "
        "THEN :ts ELSE arrived_at END, assignee_id = :assignee, "
        f"status = CASE WHEN {_RANK} < 2 THEN 'in_progress' ELSE status END WHERE id = :ticket",
        "ts",
    ),
    "ticket.resolved": _sql(
        "UPDATE tickets SET resolved_at = :ts, resolution_level = :level, "
        f"status = CASE WHEN {_RANK} < 3 THEN 'resolved' ELSE status END WHERE id = :ticket",
        "ts",
    ),
    "ticket.rated": _sql(
        "UPDATE tickets SET rating = :rating, rated_at = :ts WHERE id = :ticket", "ts"
    ),
    "ticket.closed": _sql(
        "UPDATE tickets SET closed_at = :ts, status = 'closed' WHERE id = :ticket", "ts"
    ),
    "ticket.escalated": _sql(
        f"UPDATE tickets SET escalation_level = CASE WHEN {_ELEVATION} < :rank THEN :to "
        "ELSE escalation_level END WHERE id = :ticket"
    ),
    "ticket.reopened": _sql(
        "UPDATE tickets SET reopened_count = reopened_count + 1, closed_at = NULL, "
        "resolved_at = NULL, status = 'reopened' WHERE id = :ticket"
    ),
}
_FIND_CALL = _sql(
    "SELECT id, village_code, town_code, device_id FROM call_events WHERE grid_code = :grid "
    "AND key = 'call' AND answered_at IS NULL AND ts >= :since AND ts <= :ts "
    "ORDER BY ts, id LIMIT 1",
    "since",
    "ts",
)
_ANSWER_CALL = _sql(
    "UPDATE call_events SET answered_at = :ts, ticket_id = :ticket "
    "WHERE id = :call AND answered_at IS NULL",
    "ts",
)
_LINK_TICKET = text("UPDATE tickets SET call_id = :call WHERE id = :ticket")
_RETURN_CALL = _sql(
    "UPDATE call_events SET answered_at = :ts WHERE id = :call AND answered_at IS NULL", "ts"
)
_HEARTBEAT = _sql(
    "UPDATE devices SET last_heartbeat_at = :ts, battery = :battery, online = :online "
    "WHERE id = :device AND (last_heartbeat_at IS NULL OR last_heartbeat_at < :ts)",
    "ts",
)
_FILL_WELFARE_JOB = _sql(
    "UPDATE public_welfare_jobs SET filled_at = :ts, placement_id = :placement WHERE id = "
    "(SELECT id FROM public_welfare_jobs WHERE village_code = :village AND filled_at IS NULL "
    "ORDER BY created_at, id LIMIT 1) AND filled_at IS NULL",
    "ts",
)
_TALLY = _sql(
    "UPDATE supervision_items SET approve = :approve, reject = :reject WHERE id = :item "
    "AND NOT EXISTS (SELECT 1 FROM supervision_votes v WHERE v.item_id = :item "
    "AND (v.ts > :ts OR (v.ts = :ts AND v.id > :id)))",
    "ts",
)


def _extra(event: Event) -> dict[str, Any]:
    """Return the kind-specific fields of an event, JSON-ready (for ticket_events.data)."""
    return {k: v for k, v in event.model_dump(mode="json").items() if k not in _COMMON}


def store_calls(conn, by_kind, registry: Registry, delta: LiveDelta, out: BatchOutcome) -> None:
    calls = by_kind.get("call.key")
    if not calls:
        return
    keys = LiveKeys(registry.district_code)
    rows = []
    for e in calls:
        d = registry.devices[e.device]
        rows.append(
            {
                "id": e.id,
                "device_id": e.device,
                "grid_code": d.grid,
                "village_code": d.village,
                "town_code": d.town,
                "key": e.key,
                "ts": e.ts,
                "answered_at": None,
                "ticket_id": None,
            }
        )
    new = _insert_new(conn, CallEvent.__table__, rows)
    out.new_ids |= new
    for e in calls:
        if e.id not in new:
            continue
        d = registry.devices[e.device]
        areas = (d.grid, d.village, d.town)
        out.stored.append((e, areas))
        if e.key == "call":
            delta.zadd(keys.unanswered, e.id, e.ts.timestamp())
            delta.hset(keys.unanswered_info, e.id, call_info(*areas, e.device, e.ts))


def store_heartbeats(conn, by_kind, registry: Registry, delta: LiveDelta, out) -> None:
    beats = by_kind.get("device.heartbeat")
    if not beats:
        return
    keys = LiveKeys(registry.district_code)
    rows = [{"id": e.id, "device_id": e.device, "ts": e.ts, "battery": e.battery} for e in beats]
    new = _insert_new(conn, DeviceHeartbeat.__table__, rows)
    out.new_ids |= new
    latest: dict[str, Any] = {}
    for e in beats:
        if e.id in new and (e.device not in latest or latest[e.device].ts < e.ts):
            latest[e.device] = e
    if latest:
        conn.execute(
            _HEARTBEAT,
            [
                {"ts": e.ts, "battery": e.battery, "online": True, "device": e.device}
                for e in latest.values()
            ],
        )
        for device in latest:
            delta.hdel(keys.alerts, f"device:{device}")


def store_tickets(conn, by_kind, registry: Registry, delta: LiveDelta, out) -> None:
    keys = LiveKeys(registry.district_code)
    created = by_kind.get("ticket.created", [])
    stage = [e for kind in TICKET_STAGE_KINDS for e in by_kind.get(kind, [])]
    if not created and not stage:
        return
    first: dict[str, Any] = {}
    for e in created:
        first.setdefault(e.ticket, e)
    rows = []
    for e in first.values():
        grid, village, town = registry.areas(e)
        rows.append(
            {
                "id": e.ticket,
                "event_id": e.id,
                "grid_code": grid,
                "village_code": village,
                "town_code": town,
                "source": e.source,
                "category": e.category,
                "priority": e.priority,
                "petition": e.petition,
                "title": e.title,
                "status": "open",
                "created_at": e.ts,
                "reopened_count": 0,
            }
        )
    new_tickets = _insert_new(conn, Ticket.__table__, rows)
    new_created = [e for e in first.values() if e.ticket in new_tickets]
    known: dict[str, tuple[str | None, str, str]] = {}
    wanted = {e.ticket for e in stage} - new_tickets
    if wanted:
        t = Ticket.__table__.c
        for tid, grid, village, town in conn.execute(
            select(t.id, t.grid_code, t.village_code, t.town_code).where(t.id.in_(wanted))
        ):
            known[tid] = (grid, village, town)
    for e in new_created:
        known[e.ticket] = registry.areas(e)
    ready = []
    for e in stage:
        if e.ticket in known:
            ready.append(e)
        else:
            out.parked[e.id] = UNKNOWN_TICKET
    log = [
        {"id": e.id, "ticket_id": e.ticket, "kind": e.kind, "ts": e.ts, "data": _extra(e)}
        for e in (*new_created, *ready)
    ]
    new_log = _insert_new(conn, TicketEvent.__table__, log)
    out.new_ids |= new_log | {e.id for e in new_created}
    for e in new_created:
        areas = known[e.ticket]
        out.stored.append((e, areas))
        if e.source == "caller":
            _link_call(conn, e, areas, delta, keys)
    applied = sorted((e for e in ready if e.id in new_log), key=lambda e: (e.ts, e.id))
    run: list[Any] = []
    for e in applied:
        if run and run[-1].kind != e.kind:
            _apply_stage(conn, run)
            run = []
        run.append(e)
    if run:
        _apply_stage(conn, run)
    for e in applied:
        areas = known[e.ticket]
        out.stored.append((e, areas))
    touched = {e.ticket for e in new_created} | {e.ticket for e in applied}
    if touched:
        t = Ticket.__table__.c
        for tid, grid, village, town, category, priority, status, created_at in conn.execute(
            select(
                t.id,
                t.grid_code,
                t.village_code,
                t.town_code,
                t.category,
                t.priority,
                t.status,
                t.created_at,
            ).where(t.id.in_(touched))
        ):
            if status == "closed":
                delta.hdel(keys.open_tickets, tid)
            else:
                delta.hset(
                    keys.open_tickets,
                    tid,
                    ticket_info((grid, village, town), category, priority, status, created_at),
                )


def _apply_stage(conn: Connection, run: list[Any]) -> None:
    """Apply a run of same-kind stage events (already in time order) with one executemany."""
    kind = run[0].kind
    params: list[dict[str, Any]] = []
    for e in run:
        p: dict[str, Any] = {"ticket": e.ticket}
        if kind in ("ticket.dispatched", "ticket.arrived"):
            p |= {"ts": e.ts, "assignee": e.assignee}
        elif kind == "ticket.resolved":
            p |= {"ts": e.ts, "level": e.level}
        elif kind == "ticket.rated":
            p |= {"ts": e.ts, "rating": e.rating}
        elif kind == "ticket.closed":
            p |= {"ts": e.ts}
        elif kind == "ticket.escalated":
            p |= {"to": e.to, "rank": ESCALATION_LEVELS.index(e.to) + 1}
        params.append(p)
    conn.execute(_STAGE_SQL[kind], params)


def _link_call(conn: Connection, e: Any, areas, delta: LiveDelta, keys: LiveKeys) -> None:
    """Mark the earliest unanswered green-key call of the grid in the 5 minutes before answered."""
    for _ in range(3):
        found = conn.execute(
            _FIND_CALL, {"grid": areas[0], "since": e.ts - CALL_ANSWER_WINDOW, "ts": e.ts}
        ).first()
        if found is None:
            return
        call_id = found[0]
        hit = conn.execute(_ANSWER_CALL, {"ts": e.ts, "ticket": e.ticket, "call": call_id})
        if hit.rowcount:
            conn.execute(_LINK_TICKET, {"call": call_id, "ticket": e.ticket})
            _answered(delta, keys, call_id, e.ts, (areas[0], found[1], found[2]))
            return


def _answered(delta: LiveDelta, keys: LiveKeys, call_id: str, ts: dt.datetime, areas) -> None:
    delta.count(ts, areas, "calls_answered")
    delta.zrem(keys.unanswered, call_id)
    delta.hdel(keys.unanswered_info, call_id)
    delta.hdel(keys.alerts, f"call:{call_id}")


def store_call_returns(conn, by_kind, registry: Registry, delta: LiveDelta, out) -> None:
    returns = by_kind.get("call.returned")
    if not returns:
        return
    keys = LiveKeys(registry.district_code)
    c = CallEvent.__table__.c
    calls = {
        cid: (grid, village, town)
        for cid, grid, village, town in conn.execute(
            select(c.id, c.grid_code, c.village_code, c.town_code).where(
                c.id.in_({e.call for e in returns})
            )
        )
    }
    ready = []
    for e in returns:
        if e.call in calls:
            ready.append(e)
        else:
            out.parked[e.id] = UNKNOWN_CALL
    rows = []
    for e in ready:
        grid, village, town = calls[e.call]
        rows.append(
            {
                "id": e.id,
                "call_id": e.call,
                "device_id": e.device,
                "staff_id": e.staff,
                "grid_code": grid,
                "village_code": village,
                "town_code": town,
                "ts": e.ts,
            }
        )
    new = _insert_new(conn, CallReturn.__table__, rows)
    out.new_ids |= new
    for e in sorted((e for e in ready if e.id in new), key=lambda e: e.ts):
        areas = calls[e.call]
        if conn.execute(_RETURN_CALL, {"ts": e.ts, "call": e.call}).rowcount:
            _answered(delta, keys, e.call, e.ts, areas)
        out.stored.append((e, areas))


def store_petitions(conn, by_kind, registry: Registry, delta: LiveDelta, out) -> None:
    areas: tuple[str | None, str, str]
    petitions = by_kind.get("petition.filed", [])
    if petitions:
        rows = [
            {
                "id": e.id,
                "village_code": e.village,
                "town_code": registry.villages[e.village],
                "level": e.level,
                "persons": e.persons,
                "repeat": e.repeat,
                "filed_at": e.ts,
            }
            for e in petitions
        ]
        new = _insert_new(conn, Petition.__table__, rows)
        out.new_ids |= new
        for e in petitions:
            if e.id in new:
                areas = (None, e.village, registry.villages[e.village])
                out.stored.append((e, areas))


def store_points(conn, by_kind, registry: Registry, delta: LiveDelta, out) -> None:
    areas: tuple[str | None, str, str]
    points = by_kind.get("points.earned", []) + by_kind.get("points.redeemed", [])
    if points:
        rows = [
            {
                "id": e.id,
                "village_code": e.village,
                "town_code": registry.villages[e.village],
                "grid_code": registry.households[e.household][1],
                "household_id": e.household,
                "kind": e.kind.split(".")[1],
                "points": e.points,
                "detail": e.activity if e.kind == "points.earned" else e.item,
                "ts": e.ts,
            }
            for e in points
        ]
        new = _insert_new(conn, PointsTransaction.__table__, rows)
        out.new_ids |= new
        for e in points:
            if e.id in new:
                areas = (
                    registry.households[e.household][1],
                    e.village,
                    registry.villages[e.village],
                )
                out.stored.append((e, areas))


def store_jobs(conn, by_kind, registry: Registry, delta: LiveDelta, out) -> None:
    areas: tuple[str | None, str, str]
    jobs = by_kind.get("job.placed", [])
    if jobs:
        rows = [
            {
                "id": e.id,
                "village_code": e.village,
                "town_code": registry.villages[e.village],
                "person": e.person,
                "job_kind": e.job_kind,
                "employer": e.employer,
                "hourly_wage": e.hourly_wage,
                "placed_at": e.ts,
            }
            for e in jobs
        ]
        new = _insert_new(conn, JobPlacement.__table__, rows)
        out.new_ids |= new
        for e in sorted((e for e in jobs if e.id in new), key=lambda e: e.ts):
            if e.job_kind == "public_welfare":
                conn.execute(
                    _FILL_WELFARE_JOB, {"ts": e.ts, "placement": e.id, "village": e.village}
                )
            areas = (None, e.village, registry.villages[e.village])
            out.stored.append((e, areas))


def store_supervision(conn, by_kind, registry: Registry, delta: LiveDelta, out) -> None:
    posted = by_kind.get("supervision.posted", [])
    votes = by_kind.get("supervision.voted", [])
    if posted:
        first: dict[str, Any] = {}
        for e in posted:
            first.setdefault(e.item, e)
        rows = [
            {
                "id": e.item,
                "event_id": e.id,
                "village_code": e.village,
                "town_code": registry.villages[e.village],
                "title": e.title,
                "posted_at": e.ts,
                "vote_closes": e.vote_closes,
                "approve": 0,
                "reject": 0,
            }
            for e in first.values()
        ]
        new = _insert_new(conn, SupervisionItem.__table__, rows)
        for e in first.values():
            if e.item in new:
                out.new_ids.add(e.id)
                areas = (None, e.village, registry.villages[e.village])
                out.stored.append((e, areas))
    if not votes:
        return
    s = SupervisionItem.__table__.c
    items = {
        item: (village, town)
        for item, village, town in conn.execute(
            select(s.id, s.village_code, s.town_code).where(s.id.in_({e.item for e in votes}))
        )
    }
    ready = []
    for e in votes:
        if e.item in items:
            ready.append(e)
        else:
            out.parked[e.id] = UNKNOWN_ITEM
    rows = [
        {"id": e.id, "item_id": e.item, "approve": e.approve, "reject": e.reject, "ts": e.ts}
        for e in ready
    ]
    new = _insert_new(conn, SupervisionVote.__table__, rows)
    out.new_ids |= new
    fresh = [e for e in ready if e.id in new]
    if fresh:
        conn.execute(
            _TALLY,
            [
                {"approve": e.approve, "reject": e.reject, "item": e.item, "ts": e.ts, "id": e.id}
                for e in fresh
            ],
        )
    for e in fresh:
        village, town = items[e.item]
        areas = (None, village, town)
        out.stored.append((e, areas))


def store_simple(conn, by_kind, registry: Registry, delta: LiveDelta, out) -> None:
    """Store the events of every simple kind (``datasources.simple_kinds``): one row each."""
    for simple in SIMPLE_KINDS:
        events = by_kind.get(simple.kind, [])
        if not events:
            continue
        stored: list[tuple[Any, tuple[str | None, str, str]]] = []
        rows = []
        for e in events:
            areas = (None, e.village, registry.villages[e.village])
            row = {"id": e.id, "village_code": e.village, "town_code": areas[2]}
            row[simple.time_column] = e.ts
            for name, column in simple.columns.items():
                row[column] = getattr(e, name)
            rows.append(row)
            stored.append((e, areas))
        new = _insert_new(conn, simple.table.__table__, rows)
        out.new_ids |= new
        out.stored.extend((e, areas) for e, areas in stored if e.id in new)
