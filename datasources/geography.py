"""The stored geography: write a ``geo.Geography`` into SQL and read it back."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import shapely
from sqlalchemy import Engine, delete, func, or_, select, update
from sqlalchemy.orm import Session

from datasources.db import session_scope
from datasources.models import (
    CallEvent,
    CallReturn,
    Device,
    DeviceHeartbeat,
    Grid,
    GridDailyRollup,
    Household,
    JobPlacement,
    Mediation,
    Petition,
    PointsTransaction,
    PublicWelfareJob,
    Staff,
    SupervisionItem,
    SupervisionVote,
    Ticket,
    TicketEvent,
    Town,
    Village,
    VillageDailyRollup,
)
from geo.model import Area, Geography

# Rows that hang off the geography, children first so deletes respect foreign keys.
DEPENDENT_MODELS: tuple[type, ...] = (
    TicketEvent,
    Ticket,
    CallReturn,
    CallEvent,
    DeviceHeartbeat,
    Device,
    Household,
    Staff,
    SupervisionVote,
    SupervisionItem,
    PublicWelfareJob,
    JobPlacement,
    PointsTransaction,
    Mediation,
    Petition,
    GridDailyRollup,
    VillageDailyRollup,
)


class GeographyInUse(Exception):
    """Replacing the geography would orphan stored rows that refer to removed areas."""

    def __init__(self, counts: dict[str, int]) -> None:
        self.counts = counts
        detail = ", ".join(f"{n} {table}" for table, n in counts.items())
        super().__init__(
            f"the new geography removes areas that stored rows still refer to ({detail}); "
            "import with --replace-all to delete people, devices and history too"
        )


@dataclass(frozen=True)
class GeographySummary:
    """How many areas are stored at each level."""

    towns: int
    villages: int
    grids: int


def _geometry(area: Area) -> dict[str, Any]:
    return shapely.geometry.mapping(area.geometry)


def _centroid(area: Area) -> tuple[float, float]:
    point = area.geometry.representative_point()
    return round(point.x, 6), round(point.y, 6)


def _town_row(area: Area) -> dict[str, Any]:
    lon, lat = _centroid(area)
    return {
        "code": area.code,
        "name": area.name,
        "name_en": area.name_en,
        "kind": area.kind,
        "geometry": _geometry(area),
        "centroid_lon": lon,
        "centroid_lat": lat,
    }


def _village_row(area: Area) -> dict[str, Any]:
    return _town_row(area) | {"town_code": area.town_code}


def _grid_row(area: Area) -> dict[str, Any]:
    row = _town_row(area)
    row.pop("kind")
    return row | {"town_code": area.town_code, "village_code": area.village_code}


def stored_summary(engine: Engine) -> GeographySummary:
    """Count the stored towns, villages and grids."""
    with Session(engine) as session:
        return GeographySummary(
            towns=session.scalar(select(func.count()).select_from(Town)) or 0,
            villages=session.scalar(select(func.count()).select_from(Village)) or 0,
            grids=session.scalar(select(func.count()).select_from(Grid)) or 0,
        )


def _references_to(session: Session, removed: dict[str, set[str]]) -> dict[str, int]:
    """Count dependent rows that refer to any removed town, village or grid."""
    counts: dict[str, int] = {}
    for model in DEPENDENT_MODELS:
        columns = model.__table__.c  # type: ignore[attr-defined]
        clauses = [
            columns[col].in_(codes)
            for col, codes in (
                ("grid_code", removed["grid"]),
                ("village_code", removed["village"]),
                ("town_code", removed["town"]),
            )
            if col in columns and codes
        ]
        if not clauses:
            continue
        n = session.scalar(select(func.count()).select_from(model).where(or_(*clauses))) or 0
        if n:
            counts[model.__tablename__] = n  # type: ignore[attr-defined]
    return counts


def clear_dependents(session: Session) -> None:
    """Delete every row that hangs off the geography (people, devices, history, rollups)."""
    for model in DEPENDENT_MODELS:
        session.execute(delete(model))


def replace_geography(engine: Engine, geography: Geography, *, replace_all: bool = False) -> None:
    """Store ``geography`` in place of the current one, in one transaction.

    Areas kept by code are updated in place; removed areas are deleted. If stored rows refer to a
    removed area, nothing changes and ``GeographyInUse`` is raised, unless ``replace_all`` is
    set, in which case people, devices and history are deleted as well.
    """
    with session_scope(engine) as session:
        store_geography(session, geography, replace_all=replace_all)


def store_geography(session: Session, geography: Geography, *, replace_all: bool = False) -> None:
    """Do the work of ``replace_geography`` inside the caller's transaction."""
    old = {
        "town": set(session.scalars(select(Town.code))),
        "village": set(session.scalars(select(Village.code))),
        "grid": set(session.scalars(select(Grid.code))),
    }
    new = {
        "town": {a.code for a in geography.towns},
        "village": {a.code for a in geography.villages},
        "grid": {a.code for a in geography.grids},
    }
    removed = {level: old[level] - new[level] for level in old}
    if replace_all:
        clear_dependents(session)
    else:
        counts = _references_to(session, removed)
        if counts:
            raise GeographyInUse(counts)
    _upsert(session, Town, [_town_row(a) for a in geography.towns], old["town"])
    _upsert(session, Village, [_village_row(a) for a in geography.villages], old["village"])
    _upsert(session, Grid, [_grid_row(a) for a in geography.grids], old["grid"])
    session.flush()
    if removed["grid"]:
        session.execute(delete(Grid).where(Grid.code.in_(removed["grid"])))
    if removed["village"]:
        session.execute(delete(Village).where(Village.code.in_(removed["village"])))
    if removed["town"]:
        session.execute(delete(Town).where(Town.code.in_(removed["town"])))


def _upsert(
    session: Session, model: type, rows: Iterable[dict[str, Any]], existing: set[str]
) -> None:
    inserts: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    for row in rows:
        (updates if row["code"] in existing else inserts).append(row)
    if inserts:
        session.execute(model.__table__.insert(), inserts)  # type: ignore[attr-defined]
    if updates:
        session.execute(update(model), updates)


def load_geography(engine: Engine, district_code: str = "341504") -> Geography:
    """Read the stored geography back as a ``geo.Geography``."""
    with Session(engine) as session:
        towns = session.scalars(select(Town).order_by(Town.code)).all()
        villages = session.scalars(select(Village).order_by(Village.code)).all()
        grids = session.scalars(select(Grid).order_by(Grid.code)).all()
    if not towns:
        raise LookupError("no geography is stored: run `wushi seed --demo` or `wushi geo import`")
    town_areas = tuple(
        Area(
            level="town",
            code=t.code,
            name=t.name,
            name_en=t.name_en,
            kind=t.kind,
            parent_code=district_code,
            town_code=None,
            village_code=None,
            geometry=shapely.geometry.shape(t.geometry),
        )
        for t in towns
    )
    village_areas = tuple(
        Area(
            level="village",
            code=v.code,
            name=v.name,
            name_en=v.name_en,
            kind=v.kind,
            parent_code=v.town_code,
            town_code=v.town_code,
            village_code=None,
            geometry=shapely.geometry.shape(v.geometry),
        )
        for v in villages
    )
    grid_areas = tuple(
        Area(
            level="grid",
            code=g.code,
            name=g.name,
            name_en=g.name_en,
            kind="grid",
            parent_code=g.village_code,
            town_code=g.town_code,
            village_code=g.village_code,
            geometry=shapely.geometry.shape(g.geometry),
        )
        for g in grids
    )
    district_geometry = shapely.union_all([a.geometry for a in town_areas])
    district = Area(
        level="district",
        code=district_code,
        name="叶集区",
        name_en="Yeji District",
        kind="district",
        parent_code=None,
        town_code=None,
        village_code=None,
        geometry=district_geometry,
    )
    return Geography(district=district, towns=town_areas, villages=village_areas, grids=grid_areas)
