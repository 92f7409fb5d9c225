"""Headline figures: they move with the raw rows, cut days in Asia/Shanghai, and never fail."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, select

from dashboard.cli import main
from datasources.db import make_engine, session_scope
from datasources.kpi import UnknownArea, kpi, resolve_area
from datasources.models import Grid, Petition, Ticket, Town
from datasources.periods import SHANGHAI, Period, local_day
from datasources.rollups import rebuild_rollups

NOW = dt.datetime.now(dt.UTC)
Y2022 = Period.year(2022)


@pytest.fixture
def copy_engine(history_copy: str) -> Iterator[Engine]:
    eng = make_engine(history_copy)
    yield eng
    eng.dispose()


def _a_grid(engine: Engine) -> Grid:
    with session_scope(engine) as session:
        return session.scalars(select(Grid).order_by(Grid.code).offset(100).limit(1)).one()


def _add_ticket(engine: Engine, grid: Grid, created: dt.datetime, *, closed: bool) -> None:
    with session_scope(engine) as session:
        session.add(
            Ticket(
                id=f"TEST{created:%Y%m%d%H%M}",
                event_id=f"test-{created.isoformat()}",
                grid_code=grid.code,
                village_code=grid.village_code,
                town_code=grid.town_code,
                source="app",
                category="livelihood",
                priority="normal",
                petition=False,
                title="测试",
                status="closed" if closed else "open",
                created_at=created,
                arrived_at=created + dt.timedelta(minutes=20),
                resolved_at=created + dt.timedelta(hours=1) if closed else None,
                closed_at=created + dt.timedelta(hours=2) if closed else None,
                resolution_level="grid" if closed else None,
                reopened_count=0,
            )
        )
    rebuild_rollups(engine, local_day(created), local_day(created))


def _figures(engine: Engine, period: Period, **area: str) -> dict:
    return kpi(engine, resolve_area(engine, **area), period, NOW)


def test_one_more_closed_ticket_moves_district_town_and_village_by_one(copy_engine):
    grid = _a_grid(copy_engine)
    with session_scope(copy_engine) as session:
        other_town = session.scalar(select(Town.code).where(Town.code != grid.town_code))
    areas = {
        "district": {},
        "town": {"town": grid.town_code},
        "village": {"village": grid.village_code},
        "grid": {"grid": grid.code},
        "other": {"town": other_town},
    }
    before = {k: _figures(copy_engine, Y2022, **a) for k, a in areas.items()}
    _add_ticket(copy_engine, grid, dt.datetime(2022, 7, 14, 10, 0, tzinfo=SHANGHAI), closed=True)
    after = {k: _figures(copy_engine, Y2022, **a) for k, a in areas.items()}
    for k in ("district", "town", "village", "grid"):
        assert after[k]["requests"] == before[k]["requests"] + 1, k
        assert after[k]["closed"] == before[k]["closed"] + 1, k
    assert after["other"] == before["other"]
    assert after["district"]["closure_rate"] == round(
        (before["district"]["closed"] + 1) / (before["district"]["requests"] + 1), 4
    )


def test_a_ticket_at_half_past_eleven_on_new_years_eve_belongs_to_2022(copy_engine):
    grid = _a_grid(copy_engine)
    y2023 = Period.year(2023)
    before = (_figures(copy_engine, Y2022)["requests"], _figures(copy_engine, y2023)["requests"])
    late = dt.datetime.fromisoformat("2022-12-31T23:30:00+08:00")
    assert late.astimezone(dt.UTC).date() == dt.date(2022, 12, 31)
    _add_ticket(copy_engine, grid, late, closed=False)
    after = (_figures(copy_engine, Y2022)["requests"], _figures(copy_engine, y2023)["requests"])
    assert after == (before[0] + 1, before[1])
    # And one 40 minutes later, in UTC still 2022-12-31, belongs to 2023.
    _add_ticket(copy_engine, grid, late + dt.timedelta(minutes=40), closed=False)
    assert _figures(copy_engine, y2023)["requests"] == before[1] + 1


def test_petition_change_follows_the_rows(copy_engine):
    grid = _a_grid(copy_engine)
    base = _figures(copy_engine, Y2022)["petitions"]["city"]
    with session_scope(copy_engine) as session:
        session.add(
            Petition(
                id="test-petition",
                village_code=grid.village_code,
                town_code=grid.town_code,
                level="city",
                persons=3,
                repeat=False,
                filed_at=dt.datetime(2022, 3, 1, 9, tzinfo=SHANGHAI),
            )
        )
    rebuild_rollups(copy_engine, dt.date(2022, 3, 1), dt.date(2022, 3, 1))
    now = _figures(copy_engine, Y2022)["petitions"]["city"]
    assert (now["batches"], now["persons"]) == (base["batches"] + 1, base["persons"] + 3)
    before_batches = round(base["batches"] / (1 + base["batches_change"]))
    assert now["batches_change"] == round((base["batches"] + 1) / before_batches - 1, 4)


def test_an_area_with_no_data_gives_zeros_and_null_changes(history_url):
    engine = make_engine(history_url)
    try:
        with session_scope(engine) as session:
            town = session.scalar(select(Town.code).order_by(Town.code))
        for area in ({}, {"town": town}):
            k = _figures(engine, Period.year(2019), **area)
            assert (k["requests"], k["closed"], k["mediations"]) == (0, 0, 0)
            assert k["closure_rate"] is None and k["satisfaction_rate"] is None
            assert k["response_minutes"] == {"median": None, "p90": None}
            assert k["petitions"]["district"] == {
                "batches": 0,
                "persons": 0,
                "batches_change": None,
                "persons_change": None,
            }
            assert k["points"] == {"earned": 0, "redeemed": 0}
    finally:
        engine.dispose()


def test_rebuilding_rollups_twice_changes_nothing(copy_engine):
    before = _figures(copy_engine, Y2022)
    rebuild_rollups(copy_engine, dt.date(2022, 1, 1), dt.date(2022, 12, 31))
    rebuild_rollups(copy_engine, dt.date(2022, 6, 1), dt.date(2022, 6, 30))
    assert _figures(copy_engine, Y2022) == before


def test_unknown_or_mismatched_areas_are_refused(history_url):
    engine = make_engine(history_url)
    try:
        grid = _a_grid(engine)
        with pytest.raises(UnknownArea):
            resolve_area(engine, town="341504999")
        with pytest.raises(UnknownArea):
            resolve_area(engine, village=grid.village_code, grid=grid.code[:-3] + "999")
        other = "341504001" if not grid.town_code.endswith("001") else "341504002"
        with pytest.raises(UnknownArea):
            resolve_area(engine, town=other, village=grid.village_code)
    finally:
        engine.dispose()
    runner = CliRunner()
    env = {"WUSHI_DATABASE_URL": history_url}
    bad = runner.invoke(main, ["kpi", "--year", "2022", "--town", "999", "--json"], env=env)
    assert bad.exit_code == 2 and "unknown town 999" in bad.output
    both = runner.invoke(main, ["kpi", "--year", "2022", "--from", "2022-01-01"], env=env)
    assert both.exit_code == 2
    ok = runner.invoke(
        main, ["kpi", "--from", "2022-01-01", "--to", "2022-01-31", "--json"], env=env
    )
    assert ok.exit_code == 0 and json.loads(ok.output)["period"]["end"] == "2022-01-31"
