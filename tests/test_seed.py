"""Demo people and callers: the "1+1+N" staff rule, the census population, masked phones."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import func, select

from datasources.demo.people import ELDERLY_60_PLUS, POPULATION, make_people
from datasources.demo.seed import AlreadySeeded, seed_demo
from datasources.models import Device, Grid, Household, Staff, Village
from datasources.privacy import mask_name, mask_phone
from geo.partition import build_demo_geography

NOW = dt.datetime(2026, 11, 25, 2, 0, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def people():
    return make_people(build_demo_geography(2022), now=NOW)


def test_staff_follow_the_one_plus_one_plus_n_rule(people):
    roles: dict[str, int] = {}
    per_grid: dict[str, set[str]] = {}
    for s in people.staff:
        roles[s["role"]] = roles.get(s["role"], 0) + 1
        if s["grid_code"]:
            per_grid.setdefault(s["grid_code"], set()).add(s["role"])
    assert roles["grid_leader"] == 607 and roles["grid_worker"] == 607
    assert roles["assistant"] >= 1000
    assert roles["grid_worker"] + roles["assistant"] >= 1600
    assert roles["secretary"] == 77
    assert len(per_grid) == 607
    assert all(r >= {"grid_leader", "grid_worker", "assistant"} for r in per_grid.values())


def test_households_add_up_to_the_census(people):
    assert sum(h["residents"] for h in people.households) == POPULATION == 216_229
    assert sum(h["elderly"] for h in people.households) == ELDERLY_60_PLUS == 39_255
    assert all(0 <= h["elderly"] <= h["residents"] <= 6 for h in people.households)
    mean = POPULATION / len(people.households)
    assert 2.5 < mean < 3.5


def test_callers_go_to_elderly_households(people):
    households = {h["id"]: h for h in people.households}
    assert len(people.devices) > 5000
    for d in people.devices:
        h = households[d["household_id"]]
        assert h["elderly"] == h["residents"] > 0
        assert d["grid_code"] == h["grid_code"]
        assert d["installed_at"] <= d["last_heartbeat_at"] <= NOW


def test_names_and_phones_are_plausible_unique_and_deterministic(people):
    again = make_people(build_demo_geography(2022), now=NOW)
    assert [s["name"] for s in again.staff] == [s["name"] for s in people.staff]
    phones = [s["phone"] for s in people.staff] + [h["phone"] for h in people.households]
    assert len(set(phones)) == len(phones)
    assert all(re.fullmatch(r"1[3-9]\d{9}", p) for p in phones)
    assert all(re.fullmatch(r"[\u4e00-\u9fff]{2,3}", s["name"]) for s in people.staff)
    other = make_people(build_demo_geography(2022), now=NOW, seed=7)
    assert [s["name"] for s in other.staff] != [s["name"] for s in people.staff]


def test_phones_and_names_are_masked_for_display():
    assert mask_phone("13812345678") == "138****5678"
    assert mask_phone("") == "" and mask_phone(None) == ""
    assert mask_name("张建国") == "张**"


def test_seed_writes_everything_and_refuses_to_seed_twice(engine):
    geography = build_demo_geography(2022)
    summary = seed_demo(engine, geography, now=NOW)
    assert (summary.towns, summary.villages, summary.grids) == (6, 77, 607)
    with engine.connect() as conn:
        assert conn.scalar(select(func.sum(Grid.residents))) == 216_229
        assert conn.scalar(select(func.sum(Household.residents))) == 216_229
        assert conn.scalar(select(func.count()).select_from(Staff)) == summary.staff
        assert conn.scalar(select(func.count()).select_from(Device)) == summary.devices
        huiguan = conn.scalar(select(Village.code).where(Village.name == "会馆回民村"))
        assert huiguan in summary.pilot_villages
    with pytest.raises(AlreadySeeded):
        seed_demo(engine, geography, now=NOW)
    again = seed_demo(engine, geography, now=NOW, replace=True)
    assert again == summary
