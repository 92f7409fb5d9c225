"""Write the demo geography, people and devices into an empty (or purged) database."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, func, select, update

from datasources.db import session_scope
from datasources.demo.people import make_people
from datasources.geography import store_geography
from datasources.models import Device, Grid, Household, Staff, Village
from geo.model import Geography

Progress = Callable[[str, int], None]
BATCH = 5_000


@dataclass(frozen=True)
class SeedSummary:
    """What a demo seed wrote."""

    towns: int
    villages: int
    grids: int
    staff: int
    households: int
    residents: int
    devices: int
    pilot_villages: tuple[str, ...]


class AlreadySeeded(Exception):
    """The database already holds people; seeding again needs an explicit replace."""


def has_people(engine: Engine) -> bool:
    """Return True if the database already holds staff or households."""
    with session_scope(engine) as session:
        return bool(session.scalar(select(func.count()).select_from(Household)))


def seed_demo(
    engine: Engine,
    geography: Geography,
    *,
    now: dt.datetime,
    seed: int = 2022,
    replace: bool = False,
    progress: Progress | None = None,
) -> SeedSummary:
    """Store ``geography`` with its demo staff, households and callers.

    Refuses (``AlreadySeeded``) when people are already stored, unless ``replace`` is set, in
    which case people, devices and history are deleted first, all in one transaction.
    """
    step = progress or (lambda _label, _n: None)
    if has_people(engine) and not replace:
        raise AlreadySeeded(
            "the database already holds demo people; use --replace to delete them, their "
            "devices and the history and seed again"
        )
    people = make_people(geography, now=now, seed=seed)
    step("geography", len(geography.grids))
    with session_scope(engine) as session:
        store_geography(session, geography, replace_all=True)
        for model, rows in ((Staff, people.staff), (Household, people.households)):
            _insert(session, model, rows, step)
        _insert(session, Device, people.devices, step)
        session.execute(
            update(Grid),
            [
                {"code": code, "households": n_households, "residents": n_residents}
                for code, (n_households, n_residents) in people.grid_totals.items()
            ],
        )
        session.execute(
            update(Village),
            [
                {"code": code, "elderly_share": share}
                for code, share in people.village_elderly_share.items()
            ],
        )
    return SeedSummary(
        towns=len(geography.towns),
        villages=len(geography.villages),
        grids=len(geography.grids),
        staff=len(people.staff),
        households=len(people.households),
        residents=sum(r for _, r in people.grid_totals.values()),
        devices=len(people.devices),
        pilot_villages=people.pilot_villages,
    )


def _insert(session: Any, model: type, rows: list[dict[str, Any]], step: Progress) -> None:
    table = model.__table__  # type: ignore[attr-defined]
    for start in range(0, len(rows), BATCH):
        chunk = rows[start : start + BATCH]
        session.execute(table.insert(), chunk)
        step(table.name, len(chunk))
