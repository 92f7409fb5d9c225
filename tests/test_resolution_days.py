"""平均办结天数 / Average resolution days: computed again from the raw ticket rows, and shown."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator

import pandas as pd
import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, select

from callbacks.map_ import hideout_for
from callbacks.router import metric_options
from callbacks.tables import VILLAGE_COLUMNS, column_defs
from dashboard.cli import main
from datasources import panels
from datasources.db import make_engine, session_scope
from datasources.kpi import AreaRef, kpi, resolve_area
from datasources.models import Ticket
from datasources.periods import Period
from layouts.components import PALETTE, kpi_tiles

NOW = dt.datetime.now(dt.UTC)
Y2022 = Period.year(2022)


@pytest.fixture
def engine(history_url: str) -> Iterator[Engine]:
    eng = make_engine(history_url)
    yield eng
    eng.dispose()


def _raw(engine: Engine, period: Period) -> pd.DataFrame:
    """The period's tickets with their area codes and days from created to resolved (or NaN)."""
    low, high = period.utc_bounds
    stmt = select(
        Ticket.town_code,
        Ticket.village_code,
        Ticket.grid_code,
        Ticket.created_at,
        Ticket.resolved_at,
    ).where(Ticket.created_at >= low, Ticket.created_at < high)
    with session_scope(engine) as session:
        rows = session.execute(stmt).all()
    frame = pd.DataFrame(
        [
            (town, village, grid, None if res is None else (res - created).total_seconds())
            for town, village, grid, created, res in rows
        ],
        columns=["town", "village", "grid", "seconds"],
    )
    frame["days"] = frame["seconds"].astype(float) / 86_400
    return frame


def _mean(days: pd.Series) -> float | None:
    days = days.dropna()
    return None if days.empty else round(float(days.mean()), 1)


def test_resolution_days_is_the_mean_days_to_resolve_of_the_raw_tickets(engine):
    raw = _raw(engine, Y2022)
    assert raw["days"].notna().sum() > 1000 and raw["days"].isna().any()
    town_code = sorted(raw["town"].unique())[2]
    village_code = sorted(raw.loc[raw["town"] == town_code, "village"].unique())[0]
    district = resolve_area(engine)
    town = resolve_area(engine, town=town_code)
    village = resolve_area(engine, village=village_code)
    expected = {
        district.code: _mean(raw["days"]),
        town.code: _mean(raw.loc[raw["town"] == town_code, "days"]),
        village.code: _mean(raw.loc[raw["village"] == village_code, "days"]),
    }
    assert all(v is not None and 0 < v < 30 for v in expected.values()), expected
    for area in (district, town, village):
        assert kpi(engine, area, Y2022, NOW)["resolution_days"] == expected[area.code]

    def children(area: AreaRef) -> dict[str, float | None]:
        frame = panels.children_figures(engine, area, Y2022)
        return {
            code: None if pd.isna(v) else float(v)
            for code, v in zip(frame["code"], frame["resolution_days"], strict=True)
        }

    for area, column in ((district, "town"), (town, "village"), (village, "grid")):
        inside = raw if area is district else raw[raw[area.level] == area.code]
        by_child = {code: _mean(group["days"]) for code, group in inside.groupby(column)}
        shown = children(area)
        assert {c: v for c, v in shown.items() if v is not None} == {
            c: v for c, v in by_child.items() if v is not None
        }, area.level
    grids = panels.grid_values(engine, village, Y2022, "resolution_days", NOW)
    in_village = raw[raw["village"] == village_code]
    per_grid = {code: _mean(group["days"]) for code, group in in_village.groupby("grid")}
    assert grids == {code: per_grid.get(code) for code in grids}
    district_grids = panels.grid_values(engine, district, Y2022, "resolution_days", NOW)
    assert len(district_grids) == 607
    assert district_grids[next(iter(per_grid))] == next(iter(per_grid.values()))


def test_an_area_with_no_resolved_ticket_has_no_resolution_days(engine):
    empty = Period(dt.date(2001, 1, 1), dt.date(2001, 12, 31))
    assert kpi(engine, resolve_area(engine), empty, NOW)["resolution_days"] is None
    values = panels.grid_values(engine, resolve_area(engine), empty, "resolution_days", NOW)
    assert set(values.values()) == {None}


def test_wushi_kpi_json_has_resolution_days(history_url):
    env = {"WUSHI_DATABASE_URL": history_url}
    out = CliRunner().invoke(main, ["kpi", "--year", "2022", "--json"], env=env)
    assert out.exit_code == 0, out.output
    figures = json.loads(out.output)
    assert isinstance(figures["resolution_days"], float) and figures["resolution_days"] > 0


@pytest.mark.parametrize(
    ("lang", "label", "unit"),
    [("zh", "平均办结天数", "天"), ("en", "Average resolution days", "days")],
)
def test_resolution_days_shows_as_a_tile_a_map_metric_and_a_table_column(lang, label, unit):
    k = {
        "period": {"start": "2022-01-01", "end": "2022-12-31"},
        "requests": 10,
        "closed": 9,
        "resolution_days": 2.4,
    }
    tiles = kpi_tiles(k, lang)
    tile = next(html for html in tiles if f'<div class="label">{label}</div>' in html)
    assert '<div class="value"><span>2.4</span>' in tile
    assert f'<span class="unit">{unit}</span>' in tile
    options = {o["value"]: o["label"] for o in metric_options(lang)}
    assert options["resolution_days"] == f"{label}（{unit}）"
    hideout, legend = hideout_for(
        {"a": 1.0, "b": 2.5, "c": 4.0, "d": None}, "resolution_days", lang
    )
    assert hideout["values"] == {"a": 1.0, "b": 2.5, "c": 4.0}
    assert hideout["label"] == label and hideout["format"] == "{} " + unit
    # Lower is better: the shortest times take the pale end of the yellow-to-red palette.
    assert hideout["colors"][0] == PALETTE[0] and hideout["colors"][-1] == PALETTE[-1]
    assert f"{label}（{unit}）" in legend
    headers = {c["field"]: c["headerName"] for c in column_defs(VILLAGE_COLUMNS, lang)}
    assert headers["resolution_days"] == label
