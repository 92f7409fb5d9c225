"""The event schema: every kind validates, errors name the field and the reason."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from datasources.events import EVENT_KINDS, DeviceInfo, InvalidEvent, Registry, parse_event

NOW = dt.datetime(2026, 11, 24, 2, 0, tzinfo=dt.UTC)
TS = "2026-11-24T09:30:05+08:00"
GRID, VILLAGE = "341504102201003", "341504102201"

EXAMPLES = {
    "call.key": {"grid": GRID, "device": "D1", "key": "call"},
    "call.returned": {"grid": GRID, "device": "D1", "call": "c1", "staff": "S1"},
    "device.heartbeat": {"grid": GRID, "device": "D1", "battery": 80},
    "ticket.created": {
        "grid": GRID,
        "ticket": "T1",
        "category": "safety",
        "source": "caller",
        "priority": "urgent",
        "petition": False,
        "title": "电线老化",
    },
    "ticket.dispatched": {"grid": GRID, "ticket": "T1", "assignee": "S1"},
    "ticket.arrived": {"grid": GRID, "ticket": "T1", "assignee": "S1"},
    "ticket.resolved": {"grid": GRID, "ticket": "T1", "level": "grid"},
    "ticket.rated": {"grid": GRID, "ticket": "T1", "rating": "satisfied"},
    "ticket.closed": {"grid": GRID, "ticket": "T1"},
    "ticket.escalated": {"grid": GRID, "ticket": "T1", "to": "town", "reason": "overdue"},
    "ticket.reopened": {"grid": GRID, "ticket": "T1", "reason": "not fixed"},
    "petition.filed": {"village": VILLAGE, "level": "city", "persons": 2, "repeat": False},
    "mediation.closed": {"village": VILLAGE, "team": "五老调解队", "outcome": "settled"},
    "points.earned": {"village": VILLAGE, "household": "H1", "points": 5, "activity": "志愿"},
    "points.redeemed": {"village": VILLAGE, "household": "H1", "points": 5, "item": "大米"},
    "job.placed": {
        "village": VILLAGE,
        "person": "P1",
        "job_kind": "doorstep",
        "employer": "车间",
        "hourly_wage": 18,
    },
    "supervision.posted": {
        "village": VILLAGE,
        "item": "I1",
        "title": "公示",
        "vote_closes": "2026-12-01",
    },
    "supervision.voted": {"village": VILLAGE, "item": "I1", "approve": 9, "reject": 1},
    "notice.posted": {"village": VILLAGE, "notice": "N1", "title": "秋季防火安全提示"},
}


def event(kind: str, **over) -> str:
    return json.dumps({"v": 1, "id": "e1", "kind": kind, "ts": TS, **EXAMPLES[kind], **over})


def reasons(raw: str | bytes) -> list[str]:
    with pytest.raises(InvalidEvent) as info:
        parse_event(raw, NOW)
    return info.value.errors


@pytest.mark.parametrize("kind", EVENT_KINDS)
def test_every_kind_has_a_valid_example(kind):
    assert set(EXAMPLES) == set(EVENT_KINDS)
    parsed = parse_event(event(kind), NOW)
    assert parsed.kind == kind and parsed.ts == dt.datetime(2026, 11, 24, 1, 30, 5, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (event("petition.filed", persons=0), "persons: must be >= 1"),
        (event("points.earned", points=0), "points: must be > 0"),
        (event("device.heartbeat", battery=101), "battery: must be <= 100"),
        (event("ticket.created", title="长" * 201), "title: must be at most 200 characters"),
        (event("notice.posted", title="长" * 201), "title: must be at most 200 characters"),
        (event("notice.posted", title=""), "title: must not be empty"),
        (event("petition.filed", v=2), "v: must be 1"),
        (
            event("petition.filed", ts="2026-11-24T09:30:05"),
            "ts: must be ISO 8601 with a UTC offset",
        ),
        (event("petition.filed", ts="2020-12-31T23:00:00+00:00"), "ts: before 2021-01-01"),
        (
            event("petition.filed", ts="2026-11-24T10:11:00+08:00"),
            "ts: more than 10 minutes in the future",
        ),
        (event("petition.filed", persons="3"), "persons: must be an integer"),
        (event("petition.filed", repeat=1), "repeat: must be true or false"),
        (
            event("call.key", key="blue"),
            "key: must be 'call', 'hangup', 'satisfied' or 'unsatisfied'",
        ),
        (
            event("no.such")
            if False
            else json.dumps({"v": 1, "id": "x", "kind": "no.such", "ts": TS}),
            "kind: unknown kind 'no.such'",
        ),
        (json.dumps({"v": 1, "id": "x", "ts": TS}), "kind: required"),
        ("[1,2]", "event: must be a JSON object"),
        (b"\xff\xfe", "event: invalid JSON"),
    ],
)
def test_errors_name_the_field_and_the_reason(raw, expected):
    assert expected in reasons(raw)


def test_missing_fields_are_named():
    raw = json.loads(event("ticket.dispatched"))
    del raw["assignee"]
    assert reasons(json.dumps(raw)) == ["assignee: required"]


def test_the_registry_refuses_unknown_references():
    registry = Registry(
        district_code="341504",
        grids={GRID: (VILLAGE, "341504102")},
        villages={VILLAGE: "341504102"},
        devices={"D1": DeviceInfo(GRID, VILLAGE, "341504102", "H1")},
        households={"H1": (VILLAGE, GRID)},
        staff={"S1"},
    )
    for kind in EVENT_KINDS:
        assert registry.check(parse_event(event(kind), NOW)) == [], kind
    assert registry.check(parse_event(event("call.key", device="D2"), NOW)) == [
        "device: unknown device D2"
    ]
    assert registry.check(parse_event(event("ticket.dispatched", assignee="S9"), NOW)) == [
        "assignee: unknown staff S9"
    ]
    other = parse_event(event("petition.filed", village="341502102201"), NOW)
    assert registry.check(other) == ["village: unknown village 341502102201 in district 341504"]
