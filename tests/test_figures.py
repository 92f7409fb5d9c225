"""The declared headline figures (``datasources/figures.py``) and what derives from them."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine

from callbacks.map_ import hideout_for
from callbacks.panels import WALL_TILES
from callbacks.router import metric_options
from callbacks.tables import VILLAGE_COLUMNS, column_defs
from dashboard.cli import main
from datasources import panels
from datasources.db import make_engine
from datasources.figures import FIGURES, KPI_FLAT, MAP_METRICS, TABLE, TILES
from datasources.kpi import kpi, resolve_area
from datasources.periods import Period
from layouts.components import kpi_tiles
from layouts.i18n import STRINGS, t

NOW = dt.datetime.now(dt.UTC)
Y2022 = Period.year(2022)

# The keys of ``wushi kpi --json`` (CONTRACT.md section 3): a figure may add one, never drop one.
KPI_KEYS = {
    "area",
    "period",
    "requests",
    "closed",
    "closure_rate",
    "on_time_rate",
    "satisfaction_rate",
    "response_minutes",
    "call_answer_rate",
    "calls",
    "resolution_levels",
    "petitions",
    "mediations",
    "points",
    "employment",
    "supervision",
    "devices",
}


@pytest.fixture
def engine(history_url: str) -> Iterator[Engine]:
    eng = make_engine(history_url)
    yield eng
    eng.dispose()


def test_every_declared_label_and_unit_has_chinese_and_english():
    for figure in FIGURES:
        for key in (figure.label, figure.picker_label, figure.unit):
            zh, en = STRINGS[key]
            assert zh and en, (figure.key, key)
    assert len({f.key for f in FIGURES}) == len(FIGURES)


def test_the_kpi_json_keeps_its_keys_and_has_every_flat_figure(history_url):
    env = {"WUSHI_DATABASE_URL": history_url}
    out = CliRunner().invoke(main, ["kpi", "--year", "2022", "--json"], env=env)
    assert out.exit_code == 0, out.output
    figures = json.loads(out.output)
    assert KPI_KEYS <= set(figures)
    assert {f.kpi_path[0] for f in KPI_FLAT} <= set(figures)
    # The calibrated 2022 figures of the demo history.
    assert (figures["requests"], figures["closed"]) == (4424, 4408)


def test_tiles_map_and_table_follow_the_declarations(engine):
    district = resolve_area(engine)
    k = kpi(engine, district, Y2022, NOW)
    for lang in ("zh", "en"):
        tiles = kpi_tiles(k, lang)
        labels = [t(f.label, lang) for f in TILES]
        for tile_html, label in zip(tiles, labels, strict=False):
            assert f'<div class="label">{label}</div>' in tile_html
        options = {o["value"]: o["label"] for o in metric_options(lang)}
        assert list(options) == list(MAP_METRICS)
        headers = [c["headerName"] for c in column_defs(VILLAGE_COLUMNS, lang)]
        for figure in TABLE:
            assert t(figure.label, lang) in headers
        # The wall's eight tiles: the figures declared for it, then the petitions.
        wall = "".join(kpi_tiles(k, lang, wall=True)[:WALL_TILES])
        for figure in TILES:
            assert (f'<div class="label">{t(figure.label, lang)}</div>' in wall) == figure.wall
        assert t("petitions_district", lang) in wall
    children = panels.children_figures(engine, district, Y2022)
    assert list(children.columns) == panels.CHILDREN_COLUMNS
    for figure in MAP_METRICS.values():
        legend = hideout_for({"x": 1.0}, figure.key, "en")[1]
        assert STRINGS[figure.picker_label][1] in legend
