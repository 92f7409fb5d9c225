"""The district admin drills down on the map and exports the tables, in a real Chromium (#5).

A click (and a touch tap) on a grid's shape goes one level down: district -> town -> village ->
grid; at each step the filters, the shareable URL and the headline tiles follow, and the tiles
agree with ``datasources.kpi.kpi`` for that area. The open-ticket and per-village tables export
to CSV and Excel with the grid's columns and rows, each export in the audit log, and sort when a
header is clicked. Screenshots go to ``$WUSHI_TEST_ARTIFACTS`` (default ``/tmp/wushi-shots``).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from browser import ARTIFACTS, LiveStack, browser_context, copy_sqlite, login, wait_for
from sqlalchemy import select

from callbacks.filters import drill_down
from datasources.audit import entries
from datasources.db import make_engine
from datasources.kpi import kpi, resolve_area
from datasources.models import Grid, Town, Village
from datasources.periods import Period, local_day
from datasources.users import add_user
from layouts.components import fmt_number, fmt_rate

PASSWORD = "drill-test-pw"
TOWN_NAME = "三元镇"
SQLITE = pytest.mark.parametrize("history_url", ["sqlite"], indirect=True)

CELLS = "#grid-map path.grid-cell"
TILES = (
    "[...document.querySelectorAll('#kpi-tiles .tile .value span:first-child')]"
    ".slice(0, 4).map((s) => s.textContent)"
)
# The centre of the largest grid of a town that is on screen and on top at its centre (a thumb
# lands there), as [x, y, code].
PICK = """(town) => {
    document.getElementById('grid-map').scrollIntoView({block: 'center'});
    let best = null;
    for (const p of document.querySelectorAll('#grid-map path.grid-cell')) {
        const code = p.getAttribute('data-code') || '';
        if (!code.startsWith(town)) continue;
        const r = p.getBoundingClientRect();
        const x = r.x + r.width / 2, y = r.y + r.height / 2;
        if (y < 0 || y > innerHeight || x < 0 || x > innerWidth) continue;
        const hit = document.elementFromPoint(x, y);
        if (!hit || hit.getAttribute('data-code') !== code) continue;
        if (!best || r.width * r.height > best[3]) best = [x, y, code, r.width * r.height];
    }
    return best;
}"""
# Dash names a component with a dict id by its JSON with sorted keys.
API = 'dash_ag_grid.getApi(\'{{"n":0,"table":"{table}"}}\')'


@dataclass
class Site:
    stack: LiveStack
    district: str
    town: str
    names: dict[str, str]  # code -> name, of towns, villages and grids


@pytest.fixture(scope="module")
def site(history_url: str, tmp_path_factory) -> Iterator[Site]:
    """A web server on a copy of the seeded history and an embedded Redis (no events here)."""
    from dashboard.embedded_redis import EmbeddedRedis

    root = tmp_path_factory.mktemp("drill")
    url = copy_sqlite(history_url, root / "wushi.db")
    engine = make_engine(url)
    with engine.connect() as conn:
        names = {
            code: name
            for model in (Town, Village, Grid)
            for code, name in conn.execute(select(model.code, model.name))
        }
    add_user(engine, "admin", PASSWORD, "district", None, display_name="指挥中心")
    engine.dispose()
    town = next(code for code, name in names.items() if name == TOWN_NAME)
    with EmbeddedRedis(root / "redis") as redis_server:
        stack = LiveStack(url, redis_server.url, root)
        stack.start_web()
        try:
            yield Site(stack, town[:6], town, names)
        finally:
            stack.stop()


@pytest.fixture(scope="module")
def page(site: Site) -> Iterator[Any]:
    """One touch-capable Chromium context for the module, logged in as the district admin."""
    with browser_context(1366, 1024, has_touch=True, accept_downloads=True) as context:
        page = context.new_page()
        login(page, site.stack.base, "admin", PASSWORD)
        yield page


def _shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name))


def _expected_tiles(site: Site, **codes: str) -> list[str]:
    """Requests, closure, on-time and satisfaction rates as the tiles print them."""
    engine = make_engine(site.stack.database_url)
    now = dt.datetime.now(dt.UTC)
    today = local_day(now)
    area = resolve_area(engine, district_code=site.district, **codes)
    k = kpi(engine, area, Period(dt.date(today.year, 1, 1), today), now)
    engine.dispose()
    return [
        fmt_number(k["requests"]),
        fmt_rate(k["closure_rate"], 2),
        fmt_rate(k["on_time_rate"]),
        fmt_rate(k["satisfaction_rate"]),
    ]


def _wait_tiles(page: Any, expected: list[str], timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    shown = None
    while time.monotonic() < deadline:
        shown = page.evaluate(TILES)
        if shown == expected:
            return
        time.sleep(0.1)
    raise AssertionError(f"the tiles show {shown}, `kpi` says {expected}")


@SQLITE
def test_clicking_the_map_drills_down_town_village_grid(site, page):
    """Click a town's shape, tap it again, click again: town, village, grid; then one level up."""
    page.goto(f"{site.stack.base}/")
    wait_for(page, f"document.querySelectorAll('{CELLS}[data-code]').length === 607")
    _wait_tiles(page, _expected_tiles(site))
    x, y, grid, _size = page.evaluate(PICK, site.town)
    village = grid[:12]
    steps = [
        ("town", site.town, {"town": site.town}, page.mouse.click),
        ("village", village, {"village": village}, page.touchscreen.tap),
        ("grid", grid, {"grid": grid}, page.mouse.click),
    ]
    for level, code, codes, press in steps:
        again = page.evaluate(PICK, site.town)
        assert again[2] == grid  # the map keeps its view: the same shape under the finger
        press(again[0], again[1])
        wait_for(page, f"new URLSearchParams(location.search).get('{level}') === '{code}'")
        wait_for(
            page,
            f"document.getElementById('filter-{level}').innerText.trim() === '{site.names[code]}'",
        )
        wait_for(
            page,
            f"document.getElementById('area-title').textContent.includes('{site.names[code]}')",
        )
        _wait_tiles(page, _expected_tiles(site, **codes))
        _shot(page, f"drill-{level}.png")
    # The chosen grid is outlined, the rest of the district dimmed.
    assert "selected" in page.get_attribute(f"{CELLS}[data-code='{grid}']", "class")
    outside = page.evaluate(
        f"[...document.querySelectorAll('{CELLS}')].find((p) => "
        f"!p.getAttribute('data-code').startsWith('{site.town}')).getAttribute('fill-opacity')"
    )
    assert float(outside) < 0.5
    page.click("#filter-up")
    wait_for(page, "!new URLSearchParams(location.search).has('grid')")
    assert f"village={village}" in page.evaluate("location.search")
    _wait_tiles(page, _expected_tiles(site, village=village))


def _grid_data(page: Any, table: str) -> dict[str, Any]:
    """The grid's visible column headers, fields and rows, in display order."""
    api = API.format(table=table)
    return page.evaluate(
        f"""(() => {{
            const api = {api};
            const cols = api.getAllDisplayedColumns().map((c) => c.getColDef());
            const rows = [];
            api.forEachNodeAfterFilterAndSort((n) => rows.push(n.data));
            return {{headers: cols.map((c) => c.headerName), fields: cols.map((c) => c.field),
                     rows, count: api.getDisplayedRowCount()}};
        }})()"""
    )


def _download(page: Any, table: str, kind: str) -> tuple[str, bytes]:
    with page.expect_download() as download:
        page.click(f'button[id*=\'"table":"{table}"\'][id*="export-{kind}"]')
    return download.value.suggested_filename, Path(download.value.path()).read_bytes()


def _rows(kind: str, body: bytes) -> list[list[str]]:
    if kind == "csv":
        return list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    book = openpyxl.load_workbook(io.BytesIO(body), read_only=True)
    rows = [
        ["" if v is None else str(v) for v in r] for r in book.active.iter_rows(values_only=True)
    ]
    book.close()
    return rows


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _same(grid_value: Any, file_value: str) -> bool:
    """Whether a grid cell and an exported cell agree (12 in the grid is 12.0 in a file)."""
    if isinstance(grid_value, int | float) and not isinstance(grid_value, bool):
        return file_value != "" and float(file_value) == float(grid_value)
    return _text(grid_value) == file_value


@SQLITE
def test_exports_match_the_tables_and_the_tables_sort(site, page):
    """CSV and Excel of both tables: the grid's columns, its rows; each export audited."""
    page.goto(f"{site.stack.base}/")
    counts = {}
    for table, key in (("table-tickets", "id"), ("table-villages", "name")):
        wait_for(page, f"{API.format(table=table)}?.getDisplayedRowCount() > 0")
        grid = _grid_data(page, table)
        counts[table] = grid["count"]
        assert grid["headers"] and len(grid["rows"]) == grid["count"]
        by_key = {_text(r[key]): r for r in grid["rows"]}
        for kind in ("csv", "xlsx"):
            name, body = _download(page, table, kind)
            assert name == f"wushi-{table}-{site.district}.{kind}"
            header, *rows = _rows(kind, body)
            assert header == grid["headers"]
            assert len(rows) == grid["count"]
            first = grid["fields"].index(key)
            assert {r[first] for r in rows} == set(by_key)
            for row in rows[:20]:  # the same values as the grid, column by column
                data = by_key[row[first]]
                same = [_same(data[f], v) for f, v in zip(grid["fields"], row, strict=True)]
                assert all(same), (table, kind, data, row)
    # Created times read as local time to the minute, not ISO with an offset.
    created = [r["created_at"] for r in _grid_data(page, "table-tickets")["rows"]]
    assert created and all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d", c) for c in created)
    # Sorting: a click on a header orders the rows by that column (twice: the other way).
    for table, field in (("table-villages", "requests"), ("table-tickets", "created_at")):
        before = [r[field] for r in _grid_data(page, table)["rows"]]
        header = f"div[id*='{table}'] .ag-header-cell[col-id='{field}'] .ag-header-cell-label"
        page.click(header)
        wait_for(
            page,
            f"{API.format(table=table)}.getColumnState()"
            f".some((c) => c.colId === '{field}' && c.sort === 'asc')",
        )
        after = [r[field] for r in _grid_data(page, table)["rows"]]
        assert after == sorted(before)
        page.click(header)
        wait_for(
            page,
            f"{API.format(table=table)}.getColumnState()"
            f".some((c) => c.colId === '{field}' && c.sort === 'desc')",
        )
        assert [r[field] for r in _grid_data(page, table)["rows"]] == sorted(before, reverse=True)
        assert sorted(before) != sorted(before, reverse=True)  # the order did change
    page.locator("div[id*='table-villages']").scroll_into_view_if_needed()
    _shot(page, "export-tables-sorted.png")
    engine = make_engine(site.stack.database_url)
    log = entries(engine, username="admin", action="export", limit=10)
    engine.dispose()
    assert len(log) == 4 and {e.area_code for e in log} == {site.district}
    assert {e.address for e in log} == {"127.0.0.1"}  # who exported, from where
    assert sorted((e.detail["table"], e.detail["format"], e.detail["rows"]) for e in log) == sorted(
        (t, k, counts[t]) for t in counts for k in ("csv", "xlsx")
    )


def test_drill_down_goes_one_level_down_or_to_the_clicked_area():
    """A click inside the selection goes one level down; outside it, to the clicked area."""
    grid, other = "341504102201003", "341504100215003"
    assert drill_down({}, grid) == {"town": grid[:9], "village": None, "grid": None}
    town = {"town": grid[:9], "village": None, "grid": None, "start": "2026-01-01"}
    assert drill_down(town, grid) == town | {"village": grid[:12]}
    village = town | {"village": grid[:12]}
    assert drill_down(village, grid) == village | {"grid": grid}
    assert drill_down(village | {"grid": grid}, grid[:-1] + "4")["grid"] == grid[:-1] + "4"
    # A dimmed grid of another village or town is one click away, not a reset.
    neighbour = grid[:9] + "202" + grid[12:]  # a grid of another village of the same town
    assert drill_down(village, neighbour) == village | {"village": neighbour[:12]}
    assert drill_down(village, other) == village | {"town": other[:9], "village": None}
    assert drill_down(village, None) == village
