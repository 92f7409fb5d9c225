"""Demo people and devices for a geography: staff by the "1+1+N" rule, households, callers.

Everything is deterministic for a given seed and geography. Residents sum to the 7th-census
population (216,229) and residents aged 60+ to 39,255 (docs/facts.md); the urban communities are
denser and younger than the villages, where the elderly stay behind.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from datasources.demo.names import NameMaker
from geo.model import Area, Geography

POPULATION = 216_229
ELDERLY_60_PLUS = 39_255
ASSISTANTS_TOTAL = 1_012  # with the 607 grid workers: 1,619 workers and assistants ("1,600+")
PILOT_VILLAGES = ("会馆回民村",)  # one of the three pilot villages named by the source
PILOT_START = dt.datetime(2021, 9, 1, 1, 0, tzinfo=dt.UTC)
ROLLOUT_START = dt.datetime(2022, 3, 1, 1, 0, tzinfo=dt.UTC)
ROLLOUT_END = dt.datetime(2022, 5, 31, 1, 0, tzinfo=dt.UTC)


@dataclass
class DemoPeople:
    """Rows ready for bulk insert, plus the per-grid totals they imply."""

    staff: list[dict[str, Any]] = field(default_factory=list)
    households: list[dict[str, Any]] = field(default_factory=list)
    devices: list[dict[str, Any]] = field(default_factory=list)
    grid_totals: dict[str, tuple[int, int]] = field(default_factory=dict)  # households, residents
    village_elderly_share: dict[str, float] = field(default_factory=dict)
    pilot_villages: tuple[str, ...] = ()


def _apportion(total: int, weights: np.ndarray) -> np.ndarray:
    """Split ``total`` into integers proportional to ``weights`` (largest remainder)."""
    raw = weights / weights.sum() * total
    base = np.floor(raw).astype(np.int64)
    short = total - int(base.sum())
    order = np.argsort(-(raw - base), kind="stable")
    base[order[:short]] += 1
    return base


def pilot_village_codes(geography: Geography) -> tuple[str, ...]:
    """Return the three pilot villages: 会馆回民村 and the two villages nearest to it."""
    by_name = {v.name: v for v in geography.villages}
    first = by_name.get(PILOT_VILLAGES[0]) or next(
        v for v in geography.villages if v.kind == "village"
    )
    centre = first.geometry.representative_point()
    others = sorted(
        (v for v in geography.villages if v.kind == "village" and v.code != first.code),
        key=lambda v: (v.geometry.representative_point().distance(centre), v.code),
    )
    return (first.code, *(v.code for v in others[:2]))


def make_people(geography: Geography, now: dt.datetime, seed: int = 2022) -> DemoPeople:
    """Generate staff, households and one-key callers for every grid of ``geography``.

    ``now`` places the callers' last heartbeats: most within the hour, a few days old.
    """
    rng = np.random.default_rng(seed)
    names = NameMaker(seed + 1)
    people = DemoPeople(pilot_villages=pilot_village_codes(geography))
    villages = {v.code: v for v in geography.villages}
    grids = sorted(geography.grids, key=lambda g: g.code)
    grid_village = [str(g.village_code) for g in grids]

    # Urban communities: denser and younger; villages: thinner and older.
    urban = np.array([villages[v].kind == "community" for v in grid_village])
    density = np.where(urban, rng.uniform(1.6, 2.4, len(grids)), rng.uniform(0.7, 1.3, len(grids)))
    residents = _apportion(POPULATION, density)
    village_share = {
        code: float(rng.uniform(0.10, 0.14) if v.kind == "community" else rng.uniform(0.19, 0.27))
        for code, v in sorted(villages.items())
    }
    elderly_weights = residents * np.array([village_share[v] for v in grid_village])
    elderly = _apportion(ELDERLY_60_PLUS, elderly_weights)
    # Rescale the per-village shares to the apportioned counts so they describe the rows.
    for code in village_share:
        mask = np.array([v == code for v in grid_village])
        people.village_elderly_share[code] = round(
            float(elderly[mask].sum()) / max(1, int(residents[mask].sum())), 4
        )

    assistants = _apportion(ASSISTANTS_TOTAL, rng.uniform(0.5, 1.5, len(grids)))
    for i, grid in enumerate(grids):
        _add_staff(people, names, grid, int(assistants[i]))
        _add_households(people, names, rng, grid, int(residents[i]), int(elderly[i]))
    for village in sorted(geography.villages, key=lambda v: v.code):
        people.staff.append(
            {
                "id": f"S{village.code}SEC",
                "name": names.name(),
                "role": "secretary",
                "phone": names.phone(),
                "grid_code": None,
                "village_code": village.code,
                "town_code": village.town_code,
                "active": True,
            }
        )
    _add_devices(people, rng, now)
    return people


def _add_staff(people: DemoPeople, names: NameMaker, grid: Area, n_assistants: int) -> None:
    roles = [("L", "grid_leader"), ("W", "grid_worker")]
    roles += [(f"A{k + 1}", "assistant") for k in range(n_assistants)]
    for suffix, role in roles:
        people.staff.append(
            {
                "id": f"S{grid.code}{suffix}",
                "name": names.name(),
                "role": role,
                "phone": names.phone(),
                "grid_code": grid.code,
                "village_code": grid.village_code,
                "town_code": grid.town_code,
                "active": True,
            }
        )


def _household_sizes(rng: np.random.Generator, residents: int) -> list[int]:
    """Draw household sizes (1-6, mean about 2.9) that add up to ``residents``."""
    sizes: list[int] = []
    left = residents
    while left > 0:
        size = int(rng.choice(6, p=(0.17, 0.27, 0.22, 0.18, 0.11, 0.05))) + 1
        size = min(size, left)
        sizes.append(size)
        left -= size
    return sizes


def _add_households(
    people: DemoPeople,
    names: NameMaker,
    rng: np.random.Generator,
    grid: Area,
    residents: int,
    elderly: int,
) -> None:
    sizes = _household_sizes(rng, residents)
    olds = [0] * len(sizes)
    # Elderly live mostly in the small households the young have left ("空巢").
    order = sorted(range(len(sizes)), key=lambda k: (sizes[k] > 2, rng.random()))
    left = elderly
    while left > 0:
        for k in order:
            if left == 0:
                break
            room = sizes[k] - olds[k]
            if room <= 0:
                continue
            add = min(room, left, 1 if sizes[k] > 2 else 2)
            olds[k] += add
            left -= add
    for k, size in enumerate(sizes):
        people.households.append(
            {
                "id": f"H{grid.code}{k + 1:04d}",
                "grid_code": grid.code,
                "village_code": grid.village_code,
                "town_code": grid.town_code,
                "head_name": names.name(),
                "phone": names.phone(),
                "residents": size,
                "elderly": olds[k],
            }
        )
    people.grid_totals[grid.code] = (len(sizes), residents)


def _add_devices(people: DemoPeople, rng: np.random.Generator, now: dt.datetime) -> None:
    """Give a one-key caller to households where everyone is 60 or over."""
    pilots = set(people.pilot_villages)
    span = (ROLLOUT_END - ROLLOUT_START).total_seconds()
    for household in people.households:
        if household["elderly"] == 0 or household["elderly"] < household["residents"]:
            continue
        if household["village_code"] in pilots:
            installed = PILOT_START + dt.timedelta(days=float(rng.uniform(0, 20)))
        else:
            installed = ROLLOUT_START + dt.timedelta(seconds=float(rng.uniform(0, span)))
        online = bool(rng.random() > 0.025)
        silent = rng.uniform(0, 3600) if online else rng.uniform(1.2 * 86400, 10 * 86400)
        last_seen = max(installed, now - dt.timedelta(seconds=float(silent)))
        battery = int(rng.integers(5, 20)) if rng.random() < 0.04 else int(rng.integers(35, 101))
        people.devices.append(
            {
                "id": "D" + household["id"][1:],
                "household_id": household["id"],
                "grid_code": household["grid_code"],
                "village_code": household["village_code"],
                "town_code": household["town_code"],
                "installed_at": installed.replace(microsecond=0),
                "last_heartbeat_at": last_seen.replace(microsecond=0),
                "battery": battery,
                "online": online,
            }
        )
