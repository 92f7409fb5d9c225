"""The demo history: seeded through the CLI, it reproduces the 2022 figures of docs/facts.md."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, func, select

from dashboard.cli import main
from datasources.db import make_engine
from datasources.models import Petition, Ticket, TicketEvent, Village
from datasources.periods import SHANGHAI, day_start


def run_kpi(url: str, *args: str) -> dict:
    result = CliRunner().invoke(
        main, ["kpi", *args, "--json"], env={"WUSHI_DATABASE_URL": url}, catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


@pytest.fixture
def history_engine(history_url: str) -> Iterator[Engine]:
    eng = make_engine(history_url)
    yield eng
    eng.dispose()


def test_2022_figures_are_the_published_ones(history_url):
    k = run_kpi(history_url, "--year", "2022")
    assert k["area"] == {"level": "district", "code": "341504", "name": "叶集区"}
    assert k["period"] == {"start": "2022-01-01", "end": "2022-12-31"}
    assert (k["requests"], k["closed"]) == (4424, 4408)
    assert k["closure_rate"] == pytest.approx(0.9964, abs=1e-4)
    assert abs(k["satisfaction_rate"] - 0.98) <= 0.005
    assert k["mediations"] == 1800
    district, city = k["petitions"]["district"], k["petitions"]["city"]
    assert round(district["batches_change"] * 100, 1) == -19.6
    assert round(district["persons_change"] * 100, 1) == -14.5
    assert round(city["batches_change"] * 100, 1) == -31.0
    assert round(city["persons_change"] * 100, 1) == -62.5
    assert k["petitions"]["national"]["batches"] == 0
    assert k["employment"]["public_welfare_posts"] == 1330
    assert k["employment"]["urban"] == 4262
    levels = k["resolution_levels"]
    assert sum(levels.values()) == pytest.approx(1.0, abs=1e-3)
    assert levels["grid"] > levels["village"] > levels["town"] > levels["district"] > 0
    assert 0.95 < k["call_answer_rate"] <= 1
    assert 10 < k["response_minutes"]["median"] < k["response_minutes"]["p90"] < 240


def test_points_and_doorstep_jobs_over_the_published_window(history_url):
    k = run_kpi(history_url, "--from", "2022-01-01", "--to", "2023-02-28")
    assert k["points"]["redeemed"] == 1_260_000
    assert k["points"]["earned"] > k["points"]["redeemed"]
    assert k["employment"]["doorstep"] >= 8000


def test_no_repeat_province_petitions_in_2022(history_engine):
    low, high = day_start(dt.date(2022, 1, 1)), day_start(dt.date(2023, 1, 1))
    with history_engine.connect() as conn:
        repeats = conn.scalar(
            select(func.count()).where(
                Petition.level == "province",
                Petition.repeat.is_(True),
                Petition.filed_at >= low,
                Petition.filed_at < high,
            )
        )
        earlier = conn.scalar(
            select(func.count()).where(Petition.level == "province", Petition.repeat.is_(True))
        )
    assert repeats == 0
    assert earlier > 0, "2021 had repeat province petitions, so the check above can fail"


def test_later_years_continue_plausibly(history_url):
    y22, y23, y24 = (run_kpi(history_url, "--year", str(y)) for y in (2022, 2023, 2024))
    for before, after in ((y22, y23), (y23, y24)):
        assert (
            after["petitions"]["district"]["batches"] < before["petitions"]["district"]["batches"]
        )
        assert after["points"]["redeemed"] > before["points"]["redeemed"] * 0.9
    assert y24["points"]["redeemed"] > y22["points"]["redeemed"]
    assert y23["requests"] > y22["requests"]  # 2023 is the first full year district-wide


def test_pilot_then_rollout(history_engine):
    """Before May 2022 only the three pilot villages, 会馆回民村 among them, had requests."""
    with history_engine.connect() as conn:
        first = conn.scalar(select(func.min(Ticket.created_at)))
        early = conn.execute(
            select(Village.name)
            .join(Ticket, Ticket.village_code == Village.code)
            .where(Ticket.created_at < day_start(dt.date(2022, 5, 1)))
            .distinct()
        ).scalars()
        early_names = set(early)
        later = conn.scalar(
            select(func.count(func.distinct(Ticket.village_code))).where(
                Ticket.created_at >= day_start(dt.date(2022, 5, 1)),
                Ticket.created_at < day_start(dt.date(2023, 1, 1)),
            )
        )
    assert first.astimezone(SHANGHAI).date() >= dt.date(2021, 9, 1)
    assert len(early_names) == 3 and "会馆回民村" in early_names
    assert later == 77


def test_ticket_stages_are_in_order_and_logged(history_engine):
    stages = ("created_at", "dispatched_at", "arrived_at", "resolved_at", "closed_at")
    with history_engine.connect() as conn:
        tickets = conn.execute(select(Ticket).where(Ticket.reopened_count == 0).limit(2000)).all()
        logged = dict(
            conn.execute(
                select(TicketEvent.ticket_id, func.count()).group_by(TicketEvent.ticket_id)
            ).all()
        )
    assert tickets
    for t in tickets:
        times = [getattr(t, s) for s in stages if getattr(t, s) is not None]
        assert times == sorted(times), t.id
        if t.closed_at is not None:
            assert t.status == "closed" and t.resolution_level is not None
        assert logged[t.id] >= 1 + len(times) - 1


def test_requests_follow_the_hours_of_the_day(history_engine):
    with history_engine.connect() as conn:
        created = conn.scalars(select(Ticket.created_at)).all()
    hours = [c.astimezone(SHANGHAI).hour for c in created]
    day = sum(8 <= h < 18 for h in hours)
    night = sum(h < 6 for h in hours)
    assert day > 10 * night


@pytest.mark.parametrize("field", ["requests", "closed", "mediations", "calls"])
def test_towns_and_villages_add_up_to_the_district(history_url, history_engine, field):
    from datasources.kpi import kpi, resolve_area
    from datasources.models import Town
    from datasources.periods import Period

    period, now = Period.year(2022), dt.datetime.now(dt.UTC)
    with history_engine.connect() as conn:
        towns = conn.scalars(select(Town.code)).all()
        villages = conn.scalars(select(Village.code)).all()
    district = kpi(history_engine, resolve_area(history_engine), period, now)[field]
    by_town = sum(
        kpi(history_engine, resolve_area(history_engine, town=t), period, now)[field] for t in towns
    )
    by_village = sum(
        kpi(history_engine, resolve_area(history_engine, village=v), period, now)[field]
        for v in villages
    )
    assert district > 0
    assert by_town == district == by_village
