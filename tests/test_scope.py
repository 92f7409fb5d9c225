"""Area scope: the pure rules of datasources/scope.py and clamp_area on the demo geography."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from dashboard.auth import SessionUser, allowed, clamp_area, user_area
from datasources.kpi import AreaRef
from datasources.models import Grid, Village
from datasources.scope import OutOfScope, Scope, own_filter, require
from datasources.scope import allowed as scope_allows

DISTRICT = AreaRef("district", "341504", "叶集区")
TOWN_A = AreaRef("town", "341504100", "A", "341504100")
TOWN_B = AreaRef("town", "341504101", "B", "341504101")
VILLAGE_A1 = AreaRef("village", "341504100201", "A1", "341504100", "341504100201")
VILLAGE_A2 = AreaRef("village", "341504100202", "A2", "341504100", "341504100202")
VILLAGE_B1 = AreaRef("village", "341504101201", "B1", "341504101", "341504101201")
GRID_A1 = AreaRef("grid", "341504100201001", "g", "341504100", "341504100201")
GRID_A2 = AreaRef("grid", "341504100202001", "g", "341504100", "341504100202")
GRID_B1 = AreaRef("grid", "341504101201001", "g", "341504101", "341504101201")
ALL = [DISTRICT, TOWN_A, TOWN_B, VILLAGE_A1, VILLAGE_A2, VILLAGE_B1, GRID_A1, GRID_A2, GRID_B1]


@pytest.mark.parametrize(
    ("scope", "visible"),
    [
        (Scope("district"), set(ALL)),
        (Scope("town", "341504100"), {TOWN_A, VILLAGE_A1, VILLAGE_A2, GRID_A1, GRID_A2}),
        (Scope("village", "341504100201"), {VILLAGE_A1, GRID_A1}),
    ],
    ids=["district", "town", "village"],
)
def test_each_role_sees_its_area_and_everything_in_it_and_nothing_else(scope, visible):
    for area in ALL:
        assert scope_allows(scope, area) is (area in visible), area
        if area in visible:
            require(scope, area)
        else:
            with pytest.raises(PermissionError):
                require(scope, area)


def test_a_scope_needs_a_known_role_and_a_matching_area_code():
    with pytest.raises(ValueError, match="unknown role"):
        Scope("kiosk")
    with pytest.raises(ValueError, match="takes no area"):
        Scope("district", "341504100")
    with pytest.raises(ValueError, match="needs an area"):
        Scope("town")
    with pytest.raises(ValueError, match="needs an area"):
        Scope("village", "")


def test_own_filter_selects_the_scopes_own_area():
    assert own_filter(Scope("district")) == {}
    assert own_filter(Scope("town", "T")) == {"town": "T"}
    assert own_filter(Scope("village", "V")) == {"village": "V"}


def _user(role: str, area_code: str | None) -> SessionUser:
    return SessionUser("u", "U", role, area_code, role, "sid")


@pytest.fixture
def geo(seeded_engine):
    """Two towns of the seeded geography, a village and a grid of each."""
    with Session(seeded_engine) as session:
        villages = session.scalars(select(Village).order_by(Village.code)).all()
        v_a = villages[0]
        v_b = next(v for v in villages if v.town_code != v_a.town_code)
        sibling = next(v for v in villages if v.town_code == v_a.town_code and v is not v_a)
        g_a = session.scalars(select(Grid).where(Grid.village_code == v_a.code)).first()
        g_b = session.scalars(select(Grid).where(Grid.village_code == v_b.code)).first()
        all_villages = [(v.code, v.town_code) for v in villages]
        return {
            "town_a": v_a.town_code,
            "town_b": v_b.town_code,
            "village_a": v_a.code,
            "sibling": sibling.code,
            "village_b": v_b.code,
            "grid_a": g_a.code,
            "grid_b": g_b.code,
            "villages": all_villages,
        }


def test_clamp_area_gives_a_town_user_their_town_and_its_villages_only(seeded_engine, geo):
    user = _user("town", geo["town_a"])
    own = clamp_area(user, seeded_engine)
    assert (own.level, own.code) == ("town", geo["town_a"])
    assert user_area(user, seeded_engine) == own
    assert clamp_area(user, seeded_engine, village=geo["village_a"]).code == geo["village_a"]
    assert clamp_area(user, seeded_engine, grid=geo["grid_a"]).code == geo["grid_a"]
    for forged in (
        {"town": geo["town_b"]},
        {"village": geo["village_b"]},
        {"grid": geo["grid_b"]},
        {"town": geo["town_a"], "village": geo["village_b"]},  # codes that do not nest
        {"village": "999999999999"},  # unknown looks like forbidden
    ):
        with pytest.raises(PermissionError):
            clamp_area(user, seeded_engine, **forged)
    for code, town_code in geo["villages"]:
        area = AreaRef("village", code, "", town_code, code)
        assert allowed(user, area) is (town_code == geo["town_a"])


def test_clamp_area_gives_a_village_user_its_village_and_a_district_user_all(seeded_engine, geo):
    user = _user("village", geo["village_a"])
    own = clamp_area(user, seeded_engine)
    assert (own.level, own.code, own.town_code) == ("village", geo["village_a"], geo["town_a"])
    assert clamp_area(user, seeded_engine, grid=geo["grid_a"]).code == geo["grid_a"]
    for forged in (
        {"town": geo["town_a"]},
        {"village": geo["sibling"]},
        {"grid": geo["grid_b"]},
    ):
        with pytest.raises(OutOfScope):
            clamp_area(user, seeded_engine, **forged)

    boss = _user("district", None)
    district = clamp_area(boss, seeded_engine, district_code="341504")
    assert (district.level, district.code) == ("district", "341504")
    assert clamp_area(boss, seeded_engine, town=geo["town_b"]).code == geo["town_b"]
    assert clamp_area(boss, seeded_engine, grid=geo["grid_b"]).code == geo["grid_b"]
    assert allowed(None, DISTRICT) is False
    with pytest.raises(PermissionError):
        clamp_area(None, seeded_engine)
