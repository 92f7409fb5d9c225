"""The headline figures, declared once each: what they are computed from and where they show.

A ``Figure`` says how its value is computed for an area and period (``source``), how it is
written (``kind``, ``digits``, ``unit``), which UI string names it (``label``, a key of
the UI-string catalogues read by ``layouts/i18n.py``; no text here) and where it appears: the
headline tiles (``tile``), the
map's metric picker (``map``, with ``higher_is_better`` choosing the palette), the figures per
child area behind the per-village table and the closure chart (``per_area``; ``table`` puts it
in the table) and ``wushi kpi --json`` (``kpi_path``, the keys leading to its value there).
``datasources.kpi``, ``datasources.panels``, the tiles, the map, the table and the CLI read
these declarations; docs/architecture.md, "Adding a headline figure", lists the files.

Sources:

- ``Rollup``: a function of the sums of grid-rollup columns over the period (additive, so the
  same sums serve the district, a town, a village and each grid);
- ``TicketSpan``: a statistic (median, mean) of the time between two timestamps of the tickets
  created in the period whose end timestamp is set, from the raw ticket rows (these do not add
  up);
- ``Special``: a figure with a query of its own in ``datasources.panels`` (open tickets now,
  points by household grid, placements per village), named by ``Special.name``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

Sums = Mapping[str, int]


def rate(num: int, den: int) -> float | None:
    """Return ``num / den`` rounded to four places, ``None`` where there is nothing to divide by."""
    return round(num / den, 4) if den else None


@dataclass(frozen=True)
class Rollup:
    """A figure computed from the sums of grid-rollup ``columns`` by ``of``."""

    columns: tuple[str, ...]
    of: Callable[[Sums], float | int | None]


@dataclass(frozen=True)
class TicketSpan:
    """The ``stat`` of (``end`` − ``start``) in units of ``seconds`` seconds over the tickets
    created in the period with ``end`` set, rounded to ``digits`` places."""

    start: str
    end: str
    stat: Literal["median", "mean"]
    seconds: float
    digits: int = 1


@dataclass(frozen=True)
class Special:
    """A figure computed by a query of its own in ``datasources.panels`` (see ``grid_values``)."""

    name: str


@dataclass(frozen=True)
class Figure:
    """One headline figure: its definition, format, label key and where it shows."""

    key: str
    label: str
    unit: str
    kind: Literal["count", "rate", "minutes", "days"]
    source: Rollup | TicketSpan | Special
    digits: int = 0
    kpi_path: tuple[str, ...] = ()
    map: bool = False
    map_label: str | None = None
    higher_is_better: bool = True
    tile: bool = False
    wall: bool = True  # a tile also among the wall screen's eight (WALL_TILES)
    per_area: bool = False
    table: bool = False

    @property
    def is_rate(self) -> bool:
        """Whether the value is a fraction in [0, 1] shown as a percentage."""
        return self.kind == "rate"

    @property
    def picker_label(self) -> str:
        """The UI-string key naming the figure in the map's picker and legend."""
        return self.map_label or self.label


# Minutes from created to arrived on site: the response-time figures and distribution.
RESPONSE = TicketSpan("created_at", "arrived_at", "median", 60)


def _resolution_share(s: Sums, level: str) -> float | None:
    levels = ("grid", "village", "town", "district")
    return rate(s[f"resolved_{level}"], sum(s[f"resolved_{lvl}"] for lvl in levels))


FIGURES: tuple[Figure, ...] = (
    Figure(
        "requests",
        "requests",
        "u_tickets",
        "count",
        Rollup(("requests",), lambda s: s["requests"]),
        kpi_path=("requests",),
        tile=True,
        per_area=True,
        table=True,
    ),
    Figure(
        "closed",
        "closed",
        "u_tickets",
        "count",
        Rollup(("closed",), lambda s: s["closed"]),
        kpi_path=("closed",),
        per_area=True,
    ),
    Figure(
        "closure_rate",
        "closure_rate",
        "percent",
        "rate",
        Rollup(("requests", "closed"), lambda s: rate(s["closed"], s["requests"])),
        digits=2,
        kpi_path=("closure_rate",),
        map=True,
        tile=True,
        per_area=True,
        table=True,
    ),
    Figure(
        "on_time_rate",
        "on_time_rate",
        "percent",
        "rate",
        Rollup(("closed", "closed_on_time"), lambda s: rate(s["closed_on_time"], s["closed"])),
        digits=1,
        kpi_path=("on_time_rate",),
        tile=True,
        per_area=True,
    ),
    Figure(
        "satisfaction_rate",
        "satisfaction_rate",
        "percent",
        "rate",
        Rollup(
            ("rated", "satisfied", "thumbs_up", "thumbs_down"),
            lambda s: rate(
                s["satisfied"] + s["thumbs_up"], s["rated"] + s["thumbs_up"] + s["thumbs_down"]
            ),
        ),
        digits=1,
        kpi_path=("satisfaction_rate",),
        map=True,
        tile=True,
        per_area=True,
        table=True,
    ),
    Figure(
        "response_median",
        "response_median",
        "u_minutes",
        "minutes",
        RESPONSE,
        digits=1,
        kpi_path=("response_minutes", "median"),
        map=True,
        map_label="figure.response_median",
        higher_is_better=False,
        tile=True,
    ),
    Figure(
        "resolution_days",
        "resolution_days",
        "u_days",
        "days",
        TicketSpan("created_at", "resolved_at", "mean", 86_400),
        digits=1,
        kpi_path=("resolution_days",),
        map=True,
        higher_is_better=False,
        tile=True,
        wall=False,
        per_area=True,
        table=True,
    ),
    Figure(
        "calls",
        "figure.calls",
        "u_calls",
        "count",
        Rollup(("calls",), lambda s: s["calls"]),
        kpi_path=("calls",),
        map=True,
        higher_is_better=False,
        per_area=True,
    ),
    Figure(
        "call_answer_rate",
        "call_answer_rate",
        "percent",
        "rate",
        Rollup(("calls", "calls_answered"), lambda s: rate(s["calls_answered"], s["calls"])),
        digits=1,
        kpi_path=("call_answer_rate",),
        tile=True,
        per_area=True,
        table=True,
    ),
    Figure(
        "resolved_grid_share",
        "grid_share",
        "percent",
        "rate",
        Rollup(
            tuple(f"resolved_{lvl}" for lvl in ("grid", "village", "town", "district")),
            lambda s: _resolution_share(s, "grid"),
        ),
        digits=1,
        kpi_path=("resolution_levels", "grid"),
        tile=True,
        per_area=True,
    ),
    Figure(
        "open_tickets",
        "figure.open_tickets",
        "u_tickets",
        "count",
        Special("open_tickets"),
        map=True,
        higher_is_better=False,
    ),
    Figure(
        "points_redeemed",
        "points_redeemed",
        "u_points",
        "count",
        Special("points_redeemed"),
        kpi_path=("points", "redeemed"),
        map=True,
    ),
    Figure(
        "placements",
        "placements",
        "u_people",
        "count",
        Special("placements"),
        map=True,
        map_label="figure.placements_village",
    ),
)

BY_KEY: dict[str, Figure] = {f.key: f for f in FIGURES}
TILES: tuple[Figure, ...] = tuple(f for f in FIGURES if f.tile)
PER_AREA: tuple[Figure, ...] = tuple(f for f in FIGURES if f.per_area)
TABLE: tuple[Figure, ...] = tuple(f for f in FIGURES if f.table)
# The map's metric picker lists these in this order (the first are the wall's rotation's).
MAP_ORDER = (
    "open_tickets",
    "calls",
    "closure_rate",
    "satisfaction_rate",
    "response_median",
    "points_redeemed",
    "placements",
)
MAP_METRICS: dict[str, Figure] = {
    **{k: BY_KEY[k] for k in MAP_ORDER},
    **{f.key: f for f in FIGURES if f.map and f.key not in MAP_ORDER},
}
# The figures that ``wushi kpi --json`` has under a key of their own at the top level.
KPI_FLAT: tuple[Figure, ...] = tuple(f for f in FIGURES if len(f.kpi_path) == 1)


def rollup_columns(figures: tuple[Figure, ...]) -> list[str]:
    """Return the grid-rollup columns the ``Rollup`` figures among ``figures`` need, once each."""
    out: list[str] = []
    for f in figures:
        if isinstance(f.source, Rollup):
            out.extend(c for c in f.source.columns if c not in out)
    return out
