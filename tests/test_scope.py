"""Area scope: the pure rules of datasources/scope.py and clamp_area on the demo geography."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest
from dash.exceptions import PreventUpdate
from sqlalchemy import create_engine, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from callbacks import common
from callbacks.router import initial_filters
from dashboard.settings import Settings
from dashboard.sources import Sources
from datasources.identity import CURRENT_USER, SessionUser, allowed, clamp_area, user_area
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


# --- One pinning function for every server path ----------------------------------------------


@contextlib.contextmanager
def _as(user: SessionUser | None) -> Iterator[None]:
    """Run as the logged-in ``user``, as the middleware does for a request."""
    token = CURRENT_USER.set(user)
    try:
        yield
    finally:
        CURRENT_USER.reset(token)


def _sources(engine, tmp_path) -> Sources:
    settings = Settings(database_url="sqlite://", district_code="341504", var_dir=tmp_path)
    return Sources(settings, engine, None, "")  # type: ignore[arg-type]


def _codes(filters: dict) -> tuple:
    return filters["town"], filters["village"], filters["grid"]


@pytest.mark.parametrize("role", ["district", "town", "village"])
def test_forged_filters_are_pinned_to_the_users_area_on_every_path(
    role, seeded_engine, geo, tmp_path
):
    """The callbacks' area, the pinned filters and a shared link's filters all come from
    clamp_area: a forged town, village or grid of another area never gets through."""
    area_code = {"district": None, "town": geo["town_a"], "village": geo["village_a"]}[role]
    user = _user(role, area_code)
    sources = _sources(seeded_engine, tmp_path)
    own = {
        "district": (None, None, None),
        "town": (geo["town_a"], None, None),
        "village": (geo["town_a"], geo["village_a"], None),
    }[role]
    inside = {"grid": geo["grid_a"]}  # every role may see this grid
    forged = [
        {"town": geo["town_b"]},
        {"village": geo["village_b"]},
        {"grid": geo["grid_b"]},
        {"town": geo["town_a"], "village": geo["village_b"]},  # codes that do not nest
        {"town": geo["town_a"], "grid": geo["grid_b"]},
        {"village": "999999999999"},
        {"town": ["not", "a", "code"]},
    ]
    with _as(user):
        # Nothing asked: the user's own area, with its parents filled in.
        assert _codes(common.pinned_filters(sources, {})) == own
        assert common.area(sources, {}).code == (area_code or "341504")
        # Inside the user's area: kept, with the grid's village and town.
        got = common.pinned_filters(sources, {**inside, "start": "2026-01-01"})
        assert _codes(got) == (geo["town_a"], geo["village_a"], geo["grid_a"])
        assert got["start"] == "2026-01-01"
        assert common.area(sources, inside).code == geo["grid_a"]
        shared = initial_filters(sources, {"grid": geo["grid_a"]})
        assert _codes(shared) == (geo["town_a"], geo["village_a"], geo["grid_a"])
        for filters in forged:
            visible = role == "district" and all(
                isinstance(v, str) and v != "999999999999" for v in filters.values()
            )
            nests = not ("town" in filters and len(filters) == 2)
            if visible and nests:
                # The district sees every area: what it names is what it gets.
                area = common.area(sources, filters)
                assert area.code in filters.values()
                continue
            if not isinstance(filters.get("town"), list):
                with pytest.raises(PermissionError):
                    clamp_area(user, seeded_engine, **filters)
                with pytest.raises(PreventUpdate):
                    common.area(sources, filters)
            assert _codes(common.pinned_filters(sources, filters)) == own, filters
            query = {"from" if k == "start" else k: v for k, v in filters.items()}
            if all(isinstance(v, str) for v in query.values()):
                assert _codes(initial_filters(sources, query)) == own, filters


def test_a_shared_link_during_a_database_outage_is_an_outage_not_the_users_own_area(tmp_path):
    """A database that does not answer raises in initial_filters like in every other callback
    (the page's stale mechanism takes it), instead of quietly resetting the link's town."""
    broken = create_engine(f"sqlite:///{tmp_path}/no/such/dir/wushi.db")
    sources = _sources(broken, tmp_path)
    with _as(_user("district", None)), pytest.raises(OperationalError):
        initial_filters(sources, {"town": "341504102"})
    assert sources.stale_since() is not None
    broken.dispose()
