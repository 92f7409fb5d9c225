"""Panel queries: they add up to the headline figures, follow the deadlines and stay in the area."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import Engine, func, select

from datasources import panels
from datasources.db import make_engine, session_scope
from datasources.figures import MAP_METRICS
from datasources.kpi import AreaRef, devices, kpi, resolve_area, response_minutes
from datasources.models import Grid, Staff, Ticket, Town
from datasources.periods import Period
from layouts import ids
from layouts.i18n import t

NOW = dt.datetime.now(dt.UTC)
Y2022 = Period.year(2022)
# Not aligned with months or years, so partial months at both ends are exercised.
ODD = Period(dt.date(2022, 3, 15), dt.date(2023, 2, 10))


@pytest.fixture
def engine(history_url: str) -> Iterator[Engine]:
    # Per test, so no pooled connection is left open when history_copy clones the database.
    eng = make_engine(history_url)
    yield eng
    eng.dispose()


@pytest.fixture
def town(engine: Engine) -> AreaRef:
    with session_scope(engine) as session:
        code = session.scalar(select(Town.code).order_by(Town.code).offset(2))
    return resolve_area(engine, town=code)


@pytest.fixture
def district(engine: Engine) -> AreaRef:
    return resolve_area(engine)


def _kpi_totals(k: dict) -> dict[str, int]:
    """Return the additive figures of a ``kpi()`` result under the panels' column names."""
    p, e, s = k["petitions"], k["employment"], k["supervision"]
    return {
        "requests": k["requests"],
        "closed": k["closed"],
        "calls": k["calls"],
        "petition_batches": sum(p[level]["batches"] for level in panels.PETITION_LEVELS),
        "petition_persons": sum(p[level]["persons"] for level in panels.PETITION_LEVELS),
        "mediations": k["mediations"],
        "points_earned": k["points"]["earned"],
        "points_redeemed": k["points"]["redeemed"],
        "placements_public_welfare": e["public_welfare"],
        "placements_doorstep": e["doorstep"],
        "placements_urban": e["urban"],
        "welfare_posts": e["public_welfare_posts"],
        "supervision_posted": s["posted"],
        "supervision_approved": s["approved"],
    }


def test_children_add_up_to_their_parent(engine, district, town):
    children = panels.children_figures(engine, district, Y2022)
    assert list(children.columns) == panels.CHILDREN_COLUMNS
    assert len(children) == 6 and list(children["code"]) == sorted(children["code"])
    assert set(children["level"]) == {"town"}
    totals = _kpi_totals(kpi(engine, district, Y2022, NOW))
    assert {name: int(children[name].sum()) for name in totals} == totals
    assert totals["requests"] == 4424  # docs/facts.md, so the sums above are not vacuous

    row = children.set_index("code").loc[town.code]
    k = kpi(engine, town, Y2022, NOW)
    assert row["closure_rate"] == k["closure_rate"]
    assert row["on_time_rate"] == k["on_time_rate"]
    assert row["satisfaction_rate"] == k["satisfaction_rate"]
    assert row["call_answer_rate"] == k["call_answer_rate"]
    assert row["resolved_grid_share"] == k["resolution_levels"]["grid"]

    villages = panels.children_figures(engine, town, Y2022)
    assert set(villages["level"]) == {"village"}
    assert {name: int(villages[name].sum()) for name in totals} == _kpi_totals(k)

    village = resolve_area(engine, village=villages["code"].iloc[0])
    grids = panels.children_figures(engine, village, Y2022)
    kv = kpi(engine, village, Y2022, NOW)
    assert set(grids["level"]) == {"grid"}
    assert int(grids["requests"].sum()) == kv["requests"]
    assert int(grids["points_redeemed"].sum()) == kv["points"]["redeemed"]
    assert grids["mediations"].isna().all() and grids["petition_batches"].isna().all()

    one = panels.children_figures(engine, resolve_area(engine, grid=grids["code"].iloc[0]), Y2022)
    assert list(one["code"]) == [grids["code"].iloc[0]]


def test_children_without_data_show_zeros_and_null_rates(engine, district):
    empty = panels.children_figures(engine, district, Period.year(2019))
    assert len(empty) == 6
    assert (empty["requests"] == 0).all() and (empty["mediations"] == 0).all()
    assert empty["closure_rate"].isna().all() and empty["satisfaction_rate"].isna().all()


@pytest.mark.parametrize("level", ["district", "town", "grid"])
def test_monthly_series_adds_up_to_the_period(engine, district, town, level):
    if level == "grid":
        with session_scope(engine) as session:
            code = session.scalar(select(Grid.code).where(Grid.town_code == town.code))
        area = resolve_area(engine, grid=code)
    else:
        area = {"district": district, "town": town}[level]
    series = panels.monthly_series(engine, area, ODD)
    assert list(series.columns) == panels.MONTHLY_COLUMNS
    assert list(series["month"]) == [
        dt.date(2022 + (m > 12), (m - 1) % 12 + 1, 1) for m in range(3, 15)
    ]
    k = kpi(engine, area, ODD, NOW)
    assert int(series["requests"].sum()) == k["requests"]
    assert int(series["closed"].sum()) == k["closed"]
    assert int(series["calls"].sum()) == k["calls"]
    assert int(series["points_earned"].sum()) == k["points"]["earned"]
    assert int(series["points_redeemed"].sum()) == k["points"]["redeemed"]
    if level == "grid":
        assert series["mediations"].isna().all()
        return
    totals = _kpi_totals(k)
    for name in ("mediations", *(f"placements_{x}" for x in panels.PLACEMENT_KINDS)):
        assert int(series[name].sum()) == totals[name], name
    for lvl in panels.PETITION_LEVELS:
        assert int(series[f"petition_batches_{lvl}"].sum()) == k["petitions"][lvl]["batches"]
        assert int(series[f"petition_persons_{lvl}"].sum()) == k["petitions"][lvl]["persons"]


def test_petition_trend_compares_each_month_with_a_year_before(engine, district, town):
    for area in (district, town):
        trend = panels.petition_trend(engine, area, Period.year(2022))
        now = panels.monthly_series(engine, area, Period.year(2022))
        before = panels.monthly_series(engine, area, Period.year(2021))
        assert len(trend) == 12 and list(trend["month"]) == list(now["month"])
        for lvl in panels.PETITION_LEVELS:
            for what in ("batches", "persons"):
                name = f"petition_{what}_{lvl}"
                assert list(trend[name]) == list(now[name])
                assert list(trend[f"{name}_prev"]) == list(before[name])
        k = kpi(engine, area, Period.year(2022), NOW)["petitions"]["city"]
        if k["batches_change"] is not None:
            prev = int(trend["petition_batches_city_prev"].sum())
            assert k["batches_change"] == round(k["batches"] / prev - 1, 4)
    assert int(trend["petition_batches"].sum()) == sum(
        int(trend[f"petition_batches_{lvl}"].sum()) for lvl in panels.PETITION_LEVELS
    )


def test_response_distribution_counts_every_arrived_ticket(engine, district, town):
    low, high = Y2022.utc_bounds
    for area in (district, town):
        dist = panels.response_distribution(engine, area, Y2022)
        stmt = select(func.count()).where(
            Ticket.created_at >= low, Ticket.created_at < high, Ticket.arrived_at.is_not(None)
        )
        if area.level == "town":
            stmt = stmt.where(Ticket.town_code == area.code)
        with session_scope(engine) as session:
            arrived = session.scalar(stmt)
        assert int(dist.bins["count"].sum()) == dist.arrived == arrived > 0
        assert (dist.median, dist.p90) == tuple(response_minutes(engine, area, Y2022).values())
    assert list(dist.bins["label"])[:2] == ["0–10", "10–20"]
    assert dist.bins["high"].iloc[-1] is None


def test_resolution_counts_match_the_shares(engine, district):
    counts = panels.resolution_levels_counts(engine, district, Y2022)
    shares = kpi(engine, district, Y2022, NOW)["resolution_levels"]
    total = sum(counts.values())
    assert {level: round(n / total, 4) for level, n in counts.items()} == shares


def test_open_tickets_are_the_areas_not_closed_tickets(engine, district, town):
    for area in (district, town):
        frame = panels.open_tickets(engine, area, NOW, limit=100_000)
        stmt = select(Ticket.id).where(Ticket.status != "closed", Ticket.created_at <= NOW)
        if area.level == "town":
            stmt = stmt.where(Ticket.town_code == area.code)
        with session_scope(engine) as session:
            expected = set(session.scalars(stmt))
        assert list(frame.columns) == panels.OPEN_TICKET_COLUMNS
        assert set(frame["id"]) == expected and len(frame) == len(expected)
        created = pd.to_datetime(frame["created_at"])
        assert created.is_monotonic_decreasing
        assert all(s.endswith("+08:00") for s in frame["created_at"])
    newest = panels.open_tickets(engine, district, NOW, limit=3)
    full = panels.open_tickets(engine, district, NOW, limit=100_000)
    assert list(newest["id"]) == list(full["id"][:3])
    assert not any("phone" in c or "resident" in c for c in panels.OPEN_TICKET_COLUMNS)


def test_overdue_flags_follow_the_deadlines(history_copy):
    engine = make_engine(history_copy)
    try:
        with session_scope(engine) as session:
            grid = session.scalars(select(Grid).order_by(Grid.code).limit(1)).one()
            cases = {
                # safety: arrive within 1 h, close within 48 h; nobody there after 3 h
                "TEST-LATE-ARRIVAL": ("safety", "normal", 3, False),
                # livelihood is 72 h to close, but urgent is 24 h: 30 h old and on site
                "TEST-LATE-CLOSURE": ("livelihood", "urgent", 30, True),
                # policy: arrive within 24 h; 2 h old, not overdue at all
                "TEST-IN-TIME": ("policy", "normal", 2, False),
            }
            for tid, (category, priority, hours, arrived) in cases.items():
                created = NOW - dt.timedelta(hours=hours)
                session.add(
                    Ticket(
                        id=tid,
                        event_id=f"event-{tid}",
                        grid_code=grid.code,
                        village_code=grid.village_code,
                        town_code=grid.town_code,
                        source="app",
                        category=category,
                        priority=priority,
                        petition=False,
                        title="测试",
                        status="in_progress" if arrived else "open",
                        created_at=created,
                        arrived_at=created + dt.timedelta(minutes=10) if arrived else None,
                        reopened_count=0,
                    )
                )
        area = resolve_area(engine, grid=grid.code)
        rows = panels.open_tickets(engine, area, NOW).set_index("id")
        flags = {
            tid: (bool(rows.loc[tid, "overdue_arrival"]), bool(rows.loc[tid, "overdue_closure"]))
            for tid in cases
        }
        assert flags == {
            "TEST-LATE-ARRIVAL": (True, False),
            "TEST-LATE-CLOSURE": (False, True),
            "TEST-IN-TIME": (False, False),
        }
        assert rows.loc["TEST-LATE-CLOSURE", "category"] == "livelihood"
        assert rows.loc["TEST-LATE-ARRIVAL", "age_hours"] == pytest.approx(3, abs=0.1)
        overdue = set(panels.overdue_tickets(engine, area, NOW)["id"])
        assert {"TEST-LATE-ARRIVAL", "TEST-LATE-CLOSURE"} <= overdue
        assert "TEST-IN-TIME" not in overdue
        # Two and a half hours earlier the late arrival was 30 minutes old (not late yet) and the
        # in-time ticket did not exist yet: everything is as of ``now``.
        before = panels.open_tickets(engine, area, NOW - dt.timedelta(hours=2, minutes=30))
        assert not before.set_index("id").loc["TEST-LATE-ARRIVAL", "overdue_arrival"]
        assert "TEST-IN-TIME" not in set(before["id"])
    finally:
        engine.dispose()


def test_supervision_items_add_up_to_the_figures(engine, town):
    items = panels.supervision_items(engine, town, Y2022)
    assert list(items.columns) == panels.SUPERVISION_COLUMNS
    figures = kpi(engine, town, Y2022, NOW)["supervision"]
    assert len(items) == figures["posted"] > 0
    assert int(items["approved"].sum()) == figures["approved"]
    assert int(items["on_notice"].sum()) == figures["on_notice"]
    shares = items["approval_share"].dropna()
    assert ((shares >= 0.8) == items.loc[shares.index, "approved"]).all()


def test_device_health_is_kpi_devices_with_a_breakdown(engine, district, town):
    for area in (district, town):
        health = panels.device_health(engine, area, NOW)
        assert {k: health[k] for k in ("installed", "online", "low_battery")} == devices(
            engine, area, NOW
        )
        assert health["offline"] == health["installed"] - health["online"]
        by = health["by_area"]
        assert int(by["installed"].sum()) == health["installed"]
        assert int(by["low_battery"].sum()) == health["low_battery"]


def test_grid_values_cover_the_areas_grids(engine, district, town):
    with session_scope(engine) as session:
        all_grids = set(session.scalars(select(Grid.code)))
        town_grids = set(session.scalars(select(Grid.code).where(Grid.town_code == town.code)))
    assert len(all_grids) == 607
    for metric, info in MAP_METRICS.items():
        label, unit = info.picker_label, info.unit
        assert t(unit, "zh") and t(unit, "en") and t(label, "zh") and t(label, "en")
        values = panels.grid_values(engine, district, Y2022, metric, NOW)
        assert set(values) == all_grids, metric
        assert set(panels.grid_values(engine, town, Y2022, metric, NOW)) == town_grids
    k = kpi(engine, district, Y2022, NOW)
    calls = panels.grid_values(engine, district, Y2022, "calls", NOW)
    assert sum(v for v in calls.values() if v) == k["calls"]
    opened = panels.grid_values(engine, district, Y2022, "open_tickets", NOW)
    assert sum(opened.values()) == len(panels.open_tickets(engine, district, NOW, 100_000))
    rates = panels.grid_values(engine, town, Y2022, "closure_rate", NOW)
    assert all(v is None or 0 <= v <= 1 for v in rates.values())
    with pytest.raises(ValueError):
        panels.grid_values(engine, district, Y2022, "nonsense", NOW)


def test_grid_directory_masks_phones(engine):
    directory = panels.grid_directory(engine)
    assert len(directory) == 607 and list(directory.columns) == panels.GRID_DIRECTORY_COLUMNS
    masked = re.compile(r"\d{3}\*{4}\d{4}")
    for column in ("grid_leader_phone", "grid_worker_phone"):
        phones = [p for cell in directory[column] for p in cell.split("、")]
        assert phones and all(masked.fullmatch(p) for p in phones), column
    assert (directory["grid_leader"] != "").all()
    with session_scope(engine) as session:
        raw = set(session.scalars(select(Staff.phone)))
    text = directory.to_csv()
    assert raw and not any(phone in text for phone in raw), "an unmasked phone number"


def test_a_town_area_never_returns_another_towns_rows(engine, town):
    code = town.code

    def inside(values) -> bool:
        values = list(values)
        return bool(values) and all(str(v).startswith(code) for v in values)

    assert inside(panels.children_figures(engine, town, Y2022)["code"])
    assert inside(panels.device_health(engine, town, NOW)["by_area"]["code"])
    assert inside(panels.supervision_items(engine, town, Y2022)["village_code"])
    tickets = panels.open_tickets(engine, town, NOW)
    if len(tickets):
        assert inside(tickets["grid_code"]) and inside(tickets["town_code"])
    for metric in MAP_METRICS:
        assert inside(panels.grid_values(engine, town, Y2022, metric, NOW))
    assert inside(panels.grid_directory(engine, town)["code"])
    options = panels.area_options(engine, town)
    for key in ("towns", "villages", "grids"):
        assert inside(o["code"] for o in options[key]), key
    everything = panels.area_options(engine, resolve_area(engine))
    assert [len(everything[k]) for k in ("towns", "villages", "grids")] == [6, 77, 607]


def test_months_are_cut_in_shanghai(engine, district):
    # The rollups' days are Asia/Shanghai days; a month must be the sum of exactly its days.
    january = Period(dt.date(2022, 1, 1), dt.date(2022, 1, 31))
    two = Period(dt.date(2022, 1, 1), dt.date(2022, 2, 28))
    series = panels.monthly_series(engine, district, two)
    assert int(series["requests"].iloc[0]) == kpi(engine, district, january, NOW)["requests"]
    assert (
        int(series["points_redeemed"].iloc[0])
        == kpi(engine, district, january, NOW)["points"]["redeemed"]
    )


def test_an_export_counts_ticket_ages_when_its_table_was_counted():
    """The page's "counted at" is taken only when it is a recent past time of that table."""
    from callbacks.tables import AS_OF_MAX_AGE, counted_at

    now = dt.datetime(2026, 12, 2, 12, 0, tzinfo=dt.UTC)

    def states(value: Any, table: str = ids.TABLE_TICKETS) -> list[dict[str, Any]]:
        other = {"id": {"as_of": ids.TABLE_VILLAGES, "n": 0}, "value": now.isoformat()}
        return [other, {"id": {"as_of": table, "n": 0}, "value": value}]

    shown = now - dt.timedelta(seconds=40)
    assert counted_at(states(shown.isoformat()), ids.TABLE_TICKETS, now) == shown
    too_old = now - AS_OF_MAX_AGE - dt.timedelta(seconds=1)
    future = now + dt.timedelta(seconds=1)
    naive = shown.replace(tzinfo=None)
    for forged in (too_old.isoformat(), future.isoformat(), naive.isoformat(), "soon", None, 7):
        assert counted_at(states(forged), ids.TABLE_TICKETS, now) is None, forged
    assert counted_at(states(shown.isoformat(), "other"), ids.TABLE_TICKETS, now) is None
    assert counted_at("not a list", ids.TABLE_TICKETS, now) is None
