"""Every event kind, declared once: its schema, storage, live projection, feed entry, simulator.

``KINDS`` holds one ``KindSpec`` per kind of the event stream (docs/contract.md section 1,
docs/events.md). The rest of the code walks this table instead of naming kinds:

- ``model``: the pydantic schema in ``datasources.events`` (validation, the HTTP API).
- ``table`` and ``store``: the SQL table the kind's rows go to and the function in
  ``datasources.ingest`` that stores them (a function may store several kinds, e.g. all ticket
  stages; ``store_batch`` calls each once, in the order of this table).
- ``project``: the kind's live projection, ONE function for both paths: ``store_batch`` applies
  it to the events stored for the first time, and the rebuild after Redis lost its state
  applies it to the same events read back from SQL by ``history``.
- the feed entry: its code is the kind, ``project`` gives the parameters; the page renders
  ``feed.<kind>`` with them and the label ``event.<kind>`` (the UI-string catalogues read by
  ``layouts/i18n.py``).
- ``simulate``: the ``Simulator`` story that produces the kind.

A complex kind (calls, tickets, points…) has its own model in ``datasources.events``, store
function, projection and history written out below. A simple kind is declared once, as a
``SimpleKind`` in ``datasources.simple_kinds``, and its row here is derived: the generic store
``ingest.store_simple``, a projection of its declared counters and feed fields, the generic
history ``_simple_history`` and its sampled story ``simulator.SAMPLED[kind]``.

docs/events.md lists the same kinds (tests/test_kinds.py checks it against this table).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from redis import Redis
from sqlalchemy import Connection, Engine, select

from datasources import events as ev
from datasources import ingest
from datasources.eventbase import SimpleKind
from datasources.events import Event, Registry
from datasources.ingest import BatchOutcome
from datasources.live import LiveDelta, feed_entry, rebuild_live_state, write_outbox
from datasources.models import (
    Base,
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
)
from datasources.simple_kinds import SIMPLE_KINDS
from datasources.simulator import SAMPLED, Simulator

Areas = tuple[str | None, str, str]


@dataclass(frozen=True)
class Projection:
    """What one stored event adds to the live state: counters and its feed entry's parameters."""

    counts: tuple[tuple[str, int], ...] = ()
    params: dict[str, Any] | None = None  # None: the kind has no feed entry
    key: str | None = None  # the key a caller pressed (the page marks green calls)


Store = Callable[[Connection, dict[str, list[Any]], Registry, LiveDelta, BatchOutcome], None]
# Reads the events of one or more kinds stored since a time back from SQL, with their areas.
History = Callable[[Connection, dt.datetime], Iterable[tuple[Any, Areas]]]


@dataclass(frozen=True)
class KindSpec:
    """The declaration of one event kind (see the module docstring)."""

    model: type[BaseModel]
    table: type[Base]
    store: Store
    project: Callable[[Any], Projection]
    history: History | None  # None: the kind adds nothing to the live state
    simulate: Callable[[Simulator], dict[str, Any]]

    @property
    def kind(self) -> str:
        return self.model.model_fields["kind"].annotation.__args__[0]  # type: ignore[union-attr]

    @property
    def label(self) -> str:
        """The UI-string key of the kind's label."""
        return f"event.{self.kind}"

    @property
    def code(self) -> str:
        """The code of the kind's feed entries (``feed.<code>`` is their UI string)."""
        return self.kind


# --- Live projections ---------------------------------------------------------------------------

_CALL_KEY_METRIC = {
    "call": "calls",
    "hangup": "hangups",
    "satisfied": "thumbs_up",
    "unsatisfied": "thumbs_down",
}


def _call_key(e: Any) -> Projection:
    return Projection(((_CALL_KEY_METRIC[e.key], 1),), {"key": e.key}, e.key)


def _feed_only(e: Any) -> Projection:
    return Projection((), {})


def _nothing(e: Any) -> Projection:
    return Projection()


def _ticket_created(e: Any) -> Projection:
    return Projection((("requests", 1),), {"title": e.title})


def _ticket_stage(metric: str) -> Callable[[Any], Projection]:
    def project(e: Any) -> Projection:
        return Projection(((metric, 1),), {"ticket": e.ticket})

    return project


def _ticket_rated(e: Any) -> Projection:
    return Projection((("rated", 1), (e.rating, 1)), {"ticket": e.ticket})


def _petition(e: Any) -> Projection:
    return Projection((("petitions", 1), ("petition_persons", e.persons)), {"level": e.level})


def _points(metric: str) -> Callable[[Any], Projection]:
    def project(e: Any) -> Projection:
        return Projection(((metric, e.points),), {"points": e.points})

    return project


def _job(e: Any) -> Projection:
    return Projection((("placements", 1),), {"job_kind": e.job_kind})


def _supervision_posted(e: Any) -> Projection:
    return Projection((("supervision_posted", 1),), {"title": e.title})


def _supervision_voted(e: Any) -> Projection:
    return Projection((("supervision_votes", 1),), {"approve": e.approve, "reject": e.reject})


def _simple_projection(simple: SimpleKind) -> Callable[[Any], Projection]:
    """The projection of a simple kind: its declared counters and feed parameters."""

    def project(e: Any) -> Projection:
        counts = tuple(
            (metric, n if isinstance(n, int) else getattr(e, n)) for metric, n in simple.counts
        )
        return Projection(counts, {name: getattr(e, name) for name in simple.feed})

    return project


# --- Stored events read back for the rebuild ----------------------------------------------------
# The rows become the same event models the worker projects (``model_construct``: the fields
# the projections read; the rows were validated when they arrived).


def _calls(conn: Connection, start: dt.datetime) -> Iterable[tuple[Any, Areas]]:
    c = CallEvent
    for eid, key, ts, grid, village, town, device in conn.execute(
        select(c.id, c.key, c.ts, c.grid_code, c.village_code, c.town_code, c.device_id).where(
            c.ts >= start
        )
    ):
        event = ev.CallKey.model_construct(
            id=eid, kind="call.key", ts=ts, grid=grid, device=device, key=key
        )
        yield event, (grid, village, town)


def _call_returns(conn: Connection, start: dt.datetime) -> Iterable[tuple[Any, Areas]]:
    r = CallReturn
    for eid, ts, grid, village, town, call, device, staff in conn.execute(
        select(
            r.id, r.ts, r.grid_code, r.village_code, r.town_code, r.call_id, r.device_id, r.staff_id
        ).where(r.ts >= start)
    ):
        event = ev.CallReturned.model_construct(
            id=eid, kind="call.returned", ts=ts, grid=grid, call=call, device=device, staff=staff
        )
        yield event, (grid, village, town)


def _ticket_events(conn: Connection, start: dt.datetime) -> Iterable[tuple[Any, Areas]]:
    t, te = Ticket, TicketEvent
    for eid, kind, ts, data, tid, grid, village, town, title in conn.execute(
        select(
            te.id,
            te.kind,
            te.ts,
            te.data,
            te.ticket_id,
            t.grid_code,
            t.village_code,
            t.town_code,
            t.title,
        )
        .join(t, t.id == te.ticket_id)
        .where(te.ts >= start)
    ):
        model = ev.EVENT_MODELS.get(kind)
        if model is None:
            continue
        fields = dict(data or {})
        if kind == "ticket.created":
            fields["title"] = title
        fields |= {"id": eid, "kind": kind, "ts": ts, "grid": grid, "ticket": tid}
        event = model.model_construct(**fields)
        yield event, (grid, village, town)


def _petitions(conn: Connection, start: dt.datetime) -> Iterable[tuple[Any, Areas]]:
    p = Petition
    for eid, ts, village, town, persons, level, repeat in conn.execute(
        select(p.id, p.filed_at, p.village_code, p.town_code, p.persons, p.level, p.repeat).where(
            p.filed_at >= start
        )
    ):
        event = ev.PetitionFiled.model_construct(
            id=eid,
            kind="petition.filed",
            ts=ts,
            village=village,
            level=level,
            persons=persons,
            repeat=repeat,
        )
        yield event, (None, village, town)


def _points_transactions(conn: Connection, start: dt.datetime) -> Iterable[tuple[Any, Areas]]:
    pt = PointsTransaction
    for eid, ts, grid, village, town, kind, points, household, detail in conn.execute(
        select(
            pt.id,
            pt.ts,
            pt.grid_code,
            pt.village_code,
            pt.town_code,
            pt.kind,
            pt.points,
            pt.household_id,
            pt.detail,
        ).where(pt.ts >= start)
    ):
        fields: dict[str, Any] = {"activity": detail} if kind == "earned" else {"item": detail}
        model = ev.PointsEarned if kind == "earned" else ev.PointsRedeemed
        fields |= {"id": eid, "kind": f"points.{kind}", "ts": ts, "village": village}
        event = model.model_construct(**fields, household=household, points=points)
        yield event, (grid, village, town)


def _placements(conn: Connection, start: dt.datetime) -> Iterable[tuple[Any, Areas]]:
    j = JobPlacement
    for eid, ts, village, town, job_kind, person, employer, wage in conn.execute(
        select(
            j.id,
            j.placed_at,
            j.village_code,
            j.town_code,
            j.job_kind,
            j.person,
            j.employer,
            j.hourly_wage,
        ).where(j.placed_at >= start)
    ):
        event = ev.JobPlaced.model_construct(
            id=eid,
            kind="job.placed",
            ts=ts,
            village=village,
            person=person,
            job_kind=job_kind,
            employer=employer,
            hourly_wage=wage,
        )
        yield event, (None, village, town)


def _supervision_items(conn: Connection, start: dt.datetime) -> Iterable[tuple[Any, Areas]]:
    s = SupervisionItem
    for eid, item, ts, village, town, title, closes in conn.execute(
        select(
            s.event_id, s.id, s.posted_at, s.village_code, s.town_code, s.title, s.vote_closes
        ).where(s.posted_at >= start)
    ):
        event = ev.SupervisionPosted.model_construct(
            id=eid,
            kind="supervision.posted",
            ts=ts,
            village=village,
            item=item,
            title=title,
            vote_closes=closes,
        )
        yield event, (None, village, town)


def _supervision_votes(conn: Connection, start: dt.datetime) -> Iterable[tuple[Any, Areas]]:
    s, v = SupervisionItem, SupervisionVote
    for eid, ts, item, approve, reject, village, town in conn.execute(
        select(v.id, v.ts, v.item_id, v.approve, v.reject, s.village_code, s.town_code)
        .join(s, s.id == v.item_id)
        .where(v.ts >= start)
    ):
        event = ev.SupervisionVoted.model_construct(
            id=eid,
            kind="supervision.voted",
            ts=ts,
            village=village,
            item=item,
            approve=approve,
            reject=reject,
        )
        yield event, (None, village, town)


def _simple_history(conn: Connection, start: dt.datetime) -> Iterable[tuple[Any, Areas]]:
    """Read back the events of every simple kind stored since ``start`` (one row each)."""
    for simple in SIMPLE_KINDS:
        table = simple.table.__table__
        when = table.c[simple.time_column]
        fields = list(simple.columns)
        columns = [table.c[simple.columns[name]] for name in fields]
        query = select(table.c.id, when, table.c.village_code, table.c.town_code, *columns)
        for eid, ts, village, town, *values in conn.execute(query.where(when >= start)):
            fields_of_row = dict(zip(fields, values, strict=True))
            event = simple.model.model_construct(
                id=eid, kind=simple.kind, ts=ts, village=village, **fields_of_row
            )
            yield event, (None, village, town)


# --- The declarations ---------------------------------------------------------------------------
# In storing order: a ticket created in a batch is stored before a call-back in it, as before;
# the simple kinds follow the complex ones.

KINDS: dict[str, KindSpec] = {
    spec.kind: spec
    for spec in (
        KindSpec(
            ev.CallKey, CallEvent, ingest.store_calls, _call_key, _calls, Simulator.green_call
        ),
        KindSpec(
            ev.DeviceHeartbeat,
            DeviceHeartbeat,
            ingest.store_heartbeats,
            _nothing,
            None,
            Simulator.heartbeat,
        ),
        KindSpec(
            ev.TicketCreated,
            Ticket,
            ingest.store_tickets,
            _ticket_created,
            _ticket_events,
            Simulator.app_ticket,
        ),
        KindSpec(
            ev.TicketDispatched,
            TicketEvent,
            ingest.store_tickets,
            _ticket_stage("dispatched"),
            _ticket_events,
            Simulator.app_ticket,
        ),
        KindSpec(
            ev.TicketArrived,
            TicketEvent,
            ingest.store_tickets,
            _ticket_stage("arrived"),
            _ticket_events,
            Simulator.app_ticket,
        ),
        KindSpec(
            ev.TicketResolved,
            TicketEvent,
            ingest.store_tickets,
            _ticket_stage("resolved"),
            _ticket_events,
            Simulator.app_ticket,
        ),
        KindSpec(
            ev.TicketRated,
            TicketEvent,
            ingest.store_tickets,
            _ticket_rated,
            _ticket_events,
            Simulator.app_ticket,
        ),
        KindSpec(
            ev.TicketClosed,
            TicketEvent,
            ingest.store_tickets,
            _ticket_stage("closed"),
            _ticket_events,
            Simulator.app_ticket,
        ),
        KindSpec(
            ev.TicketEscalated,
            TicketEvent,
            ingest.store_tickets,
            _ticket_stage("escalated"),
            _ticket_events,
            Simulator.app_ticket,
        ),
        KindSpec(
            ev.TicketReopened,
            TicketEvent,
            ingest.store_tickets,
            _ticket_stage("reopened"),
            _ticket_events,
            Simulator.app_ticket,
        ),
        KindSpec(
            ev.CallReturned,
            CallReturn,
            ingest.store_call_returns,
            _feed_only,
            _call_returns,
            Simulator.green_call,
        ),
        KindSpec(
            ev.PetitionFiled,
            Petition,
            ingest.store_petitions,
            _petition,
            _petitions,
            Simulator.petition,
        ),
        KindSpec(
            ev.PointsEarned,
            PointsTransaction,
            ingest.store_points,
            _points("points_earned"),
            _points_transactions,
            Simulator.points_earned,
        ),
        KindSpec(
            ev.PointsRedeemed,
            PointsTransaction,
            ingest.store_points,
            _points("points_redeemed"),
            _points_transactions,
            Simulator.points_redeemed,
        ),
        KindSpec(ev.JobPlaced, JobPlacement, ingest.store_jobs, _job, _placements, Simulator.job),
        KindSpec(
            ev.SupervisionPosted,
            SupervisionItem,
            ingest.store_supervision,
            _supervision_posted,
            _supervision_items,
            Simulator.supervision,
        ),
        KindSpec(
            ev.SupervisionVoted,
            SupervisionVote,
            ingest.store_supervision,
            _supervision_voted,
            _supervision_votes,
            Simulator.supervision,
        ),
        *(
            KindSpec(
                simple.model,
                simple.table,
                ingest.store_simple,
                _simple_projection(simple),
                _simple_history,
                SAMPLED[simple.kind],
            )
            for simple in SIMPLE_KINDS
        ),
    )
}
# A store or history function shared by several kinds runs once (first-appearance order).
_STORES: tuple[Store, ...] = tuple(dict.fromkeys(spec.store for spec in KINDS.values()))
_HISTORIES: tuple[History, ...] = tuple(
    dict.fromkeys(spec.history for spec in KINDS.values() if spec.history is not None)
)


def project(delta: LiveDelta, event: Any, areas: Areas) -> None:
    """Add one stored event's projection (counters and feed entry) to ``delta``."""
    p = KINDS[event.kind].project(event)
    for metric, n in p.counts:
        delta.count(event.ts, areas, metric, n)
    if p.params is not None:
        delta.add_feed(feed_entry(event.id, event.kind, event.ts, areas, p.params, p.key))


def project_history(conn: Connection, delta: LiveDelta, start: dt.datetime) -> None:
    """Add the projections of every event stored since ``start`` to ``delta`` (the rebuild)."""
    for history in _HISTORIES:
        for event, areas in history(conn, start):
            project(delta, event, areas)


def store_batch(
    engine: Engine, events: Sequence[Event], registry: Registry, *, now: dt.datetime
) -> BatchOutcome:
    """Store checked events in one transaction; return the new ids, parked ids and delta."""
    out = BatchOutcome()
    unique: dict[str, Event] = {}
    for event in events:
        unique.setdefault(event.id, event)
    by_kind: dict[str, list[Any]] = defaultdict(list)
    for event in unique.values():
        by_kind[event.kind].append(event)
    delta = LiveDelta(registry.district_code)
    with engine.begin() as conn:
        for store in _STORES:
            store(conn, by_kind, registry, delta, out)
        for event, areas in out.stored:
            project(delta, event, areas)
        out.outbox_id = write_outbox(conn, delta, now)
    out.payload = delta.payload() if out.outbox_id else ""
    return out


def rebuild_live(
    engine: Engine, redis: Redis, district: str, now: dt.datetime | None = None
) -> bool:
    """Recompute the live state from SQL (``live.rebuild_live_state`` with every kind's history)."""
    return rebuild_live_state(engine, redis, district, project_history, now)
