"""The event-kind declarations: each kind is complete, and docs/events.md lists the same kinds."""

from __future__ import annotations

import datetime as dt
import heapq
import inspect
import json
import re
from pathlib import Path

import pytest

from datasources import ingest
from datasources.events import EVENT_KINDS, EVENT_MODELS, parse_event
from datasources.kinds import KINDS, Projection
from datasources.live import METRICS
from datasources.models import Base
from datasources.simple_kinds import SIMPLE_KINDS
from datasources.simulator import _STARTS, SAMPLED, Simulator, _World
from layouts.i18n import STRINGS, feed_text

DOCS = Path(__file__).resolve().parent.parent / "docs" / "events.md"
NOW = dt.datetime(2026, 11, 24, 2, 0, tzinfo=dt.UTC)
ROW = re.compile(r"^\| `(?P<kind>[a-z_.]+)`[^|]*\|[^|]*\| `(?P<example>\{.*\})` \|$")


def documented() -> dict[str, dict]:
    """Return the kinds of docs/events.md's table with their examples."""
    rows = {}
    for line in DOCS.read_text(encoding="utf-8").splitlines():
        if m := ROW.match(line):
            rows[m["kind"]] = json.loads(m["example"])
    return rows


def example(kind: str):
    """Return the documented example of ``kind`` as a validated event."""
    raw = {"v": 1, "id": "e1", "ts": "2026-11-24T09:30:05+08:00", **documented()[kind]}
    return parse_event(json.dumps(raw, ensure_ascii=False), NOW)


def test_the_declarations_and_the_schema_name_the_same_kinds():
    assert list(EVENT_MODELS) == list(EVENT_KINDS)
    assert set(KINDS) == set(EVENT_KINDS)
    for kind, spec in KINDS.items():
        assert spec.kind == kind and spec.model is EVENT_MODELS[kind]


def test_docs_events_md_lists_every_declared_kind_with_a_valid_example():
    rows = documented()
    assert set(rows) == set(KINDS)
    for kind in KINDS:
        assert example(kind).kind == kind


@pytest.mark.parametrize("kind", list(KINDS))
def test_every_kind_has_a_complete_declaration(kind):
    spec = KINDS[kind]
    # Storage: a mapped table and a store function of datasources.ingest.
    assert issubclass(spec.table, Base) and spec.table.__tablename__
    assert inspect.isfunction(spec.store) and spec.store.__module__ == ingest.__name__
    # Projection: counters the live state knows, and a feed entry unless the kind has none.
    event = example(kind)
    projection = spec.project(event)
    assert isinstance(projection, Projection)
    assert {metric for metric, _ in projection.counts} <= set(METRICS)
    assert (projection.params is None) == (spec.history is None)
    # Labels in both languages, and the feed line rendered from the code and its parameters.
    zh, en = STRINGS[spec.label]
    assert zh and en and zh != en
    if projection.params:
        assert f"feed.{spec.code}" in STRINGS
    if projection.params is not None:
        entry = {"id": event.id, "kind": kind, "code": spec.code, "params": projection.params}
        for lang, label in (("zh", zh), ("en", en)):
            line = feed_text(entry, lang)
            assert line.startswith(label) and "{" not in line, (lang, line)
    # The simulator: its story for the kind starts stories and produces the kind.
    assert spec.simulate.__qualname__.startswith("Simulator.")
    assert spec.simulate in {story for story, _ in _STARTS}
    assert produces(spec.simulate, kind)


@pytest.mark.parametrize("simple", SIMPLE_KINDS, ids=lambda simple: simple.kind)
def test_a_simple_kind_is_complete_with_its_declaration(simple):
    spec = KINDS[simple.kind]
    # The schema, the storage and the story of its row come from the declaration.
    assert EVENT_MODELS[simple.kind] is simple.model is spec.model
    assert spec.table is simple.table and spec.store is ingest.store_simple
    assert dict(_STARTS)[spec.simulate] == simple.share > 0
    assert spec.simulate is SAMPLED[simple.kind]
    # Every column of its table is filled from the event: id, area, time and mapped fields.
    columns = {c.name for c in simple.table.__table__.columns}
    filled = {"id", "village_code", "town_code", simple.time_column, *simple.columns.values()}
    assert columns == filled
    fields = set(simple.model.model_fields)
    assert set(simple.columns) <= fields and set(simple.feed) <= fields
    assert {n for _, n in simple.counts if isinstance(n, str)} <= fields
    # Its sample draws a valid event of the kind, with every field of the model.
    raw = Simulator(WORLD, seed=3).sample(simple)
    event = parse_event(json.dumps(raw, ensure_ascii=False))
    assert event.kind == simple.kind and set(raw) == fields


WORLD = _World(
    devices=[("D1", "341504102201003", "341504102201")],
    weights=[1.0],
    staff_by_grid={"341504102201003": ["S1"]},
    secretary={"341504102201": "S2"},
    villages=["341504102201"],
    households={"341504102201": ["H1"]},
)


def produces(story, kind: str, tries: int = 3000) -> bool:
    """Tell whether ``story`` (run with every follow-up it schedules) produces ``kind``."""
    sim = Simulator(WORLD, seed=7)
    for _ in range(tries):
        kinds = {story(sim)["kind"]}
        while sim.queue:
            event = heapq.heappop(sim.queue).action()
            if event is not None:
                kinds.add(event["kind"])
        if kind in kinds:
            return True
    return False
