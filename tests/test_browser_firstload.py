"""The first load of a page in a real headless Chromium: the wall's page loads only the
component libraries the wall renders; the other pages keep theirs and switch in the browser;
the charts draw with the basic Plotly bundle of ``dashboard/assets/``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import plotly
import pytest
from browser import (
    LiveStack,
    browser_context,
    copy_sqlite,
    login,
    require_chromium,
    wait_for,
    watch_errors,
)

from dashboard.app import ASSETS, NOT_ON_WALL, shows_wall, without_scripts
from datasources.db import make_engine
from datasources.users import add_user

PASSWORD = "browser-test-pw"
SUITES = "/_dash-component-suites/"
HTML = {"Accept": "text/html"}
ROWS = "document.querySelectorAll('div[id*={table}] .ag-row').length"
CELLS = "document.querySelectorAll('#grid-map path.grid-cell').length"


def test_the_wall_is_the_page_of_wall_and_of_any_path_for_a_kiosk():
    assert shows_wall("/wall", kiosk=False)
    assert shows_wall("/wall/", kiosk=False)
    assert shows_wall("/", kiosk=True)
    assert not shows_wall("/", kiosk=False)
    assert not shows_wall("/tickets", kiosk=False)
    assert not shows_wall("/wallpaper", kiosk=False)


def test_only_the_named_libraries_scripts_leave_the_page():
    page = (
        '<script src="/_dash-component-suites/dash_ag_grid/dash_ag_grid.v1m2.min.js"></script>\n'
        '<script src="/_dash-component-suites/dash/dash_table/bundle.v7m1.js"></script>\n'
        '<script src="/_dash-component-suites/dash_leaflet/dash_leaflet.v1m2.js"></script>\n'
        '<script src="/assets/dash_ag_grid_helpers.js?m=1"></script>\n'
    )
    assert without_scripts(page, "/", NOT_ON_WALL) == (
        '<script src="/_dash-component-suites/dash_leaflet/dash_leaflet.v1m2.js"></script>\n'
        '<script src="/assets/dash_ag_grid_helpers.js?m=1"></script>\n'
    )


def test_the_basic_plotly_bundle_is_the_version_of_the_full_one():
    """dcc.Graph uses ``window.Plotly`` when a page defines it: the bundle in the assets
    must be the plotly.js release the installed ``plotly`` package ships."""
    full = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    basic = ASSETS / "plotly-basic.min.js"
    version = re.compile(r"plotly\.js.{0,40}? v(\d+\.\d+\.\d+)")
    wanted = version.search(full.read_text()[:300])
    assert wanted is not None
    found = version.search(basic.read_text()[:300])
    assert found is not None and found.group(1) == wanted.group(1)
    assert "(basic - minified)" in basic.read_text()[:300]


@pytest.fixture(scope="module")
def stack(history_url: str, tmp_path_factory) -> Iterator[LiveStack]:
    """A web server and a worker on a copy of the seeded history and an embedded Redis."""
    from dashboard.embedded_redis import EmbeddedRedis

    require_chromium()
    root = tmp_path_factory.mktemp("firstload")
    url = copy_sqlite(history_url, root / "wushi.db")
    engine = make_engine(url)
    add_user(engine, "wall-admin", PASSWORD, "district", None, display_name="指挥中心")
    engine.dispose()
    with EmbeddedRedis(root / "redis") as redis_server:
        live = LiveStack(url, redis_server.url, root)
        live.start_worker()
        live.start_web()
        try:
            yield live
        finally:
            live.stop()


@pytest.mark.parametrize("history_url", ["sqlite"], indirect=True)
def test_the_wall_loads_no_table_library_and_draws_its_grids(stack):
    """/wall's page has no AG Grid (nor DataTable) script and never requests one; it still
    draws its 607 grids without errors. / keeps AG Grid's script."""
    with browser_context(1920, 1080) as context:
        page = context.new_page()
        login(page, stack.base, "wall-admin", PASSWORD)
        home = page.request.get(f"{stack.base}/", headers=HTML).text()
        assert f"{SUITES}dash_ag_grid/" in home
        wall = page.request.get(f"{stack.base}/wall", headers=HTML).text()
        assert "_dash-config" in wall and f"{SUITES}dash_leaflet/" in wall
        assert f"{SUITES}dash_ag_grid/" not in wall and f"{SUITES}dash/dash_table/" not in wall

        fresh = context.new_page()
        errors = watch_errors(fresh)
        cdp = context.new_cdp_session(fresh)
        cdp.send("Network.enable")
        cdp.send("Network.clearBrowserCache")  # the login's page filled the cache
        requested: list[str] = []
        fresh.on("request", lambda r: requested.append(r.url))
        fresh.goto(f"{stack.base}/wall")
        assert wait_for(fresh, f"{CELLS} >= 607 && {CELLS}", 30) == 607
        wait_for(fresh, "document.getElementById('ws-status').dataset.state === 'connected'")
        wait_for(fresh, "document.querySelector('#kpi-tiles .tile .value span')")
        assert any(f"{SUITES}dash_leaflet/" in url for url in requested)
        assert not [url for url in requested if "dash_ag_grid" in url or "dash_table" in url]
        # Its chart draws with the basic Plotly bundle; the full one is never fetched.
        chart = "document.querySelectorAll('[id*=\"chart-petitions\"] .js-plotly-plot .trace')"
        wait_for(fresh, f"{chart}.length", 20)
        assert any("/assets/plotly-basic.min.js" in url for url in requested)
        assert not [url for url in requested if "plotly/package_data/plotly.min.js" in url]
        assert [e for e in errors if "favicon" not in e] == []


@pytest.mark.parametrize("history_url", ["sqlite"], indirect=True)
def test_the_pages_with_tables_still_show_them_and_switch_in_the_browser(stack):
    """/ shows both AG Grid tables; its nav switches to /tickets and back without a page
    load, and each page's tables fill."""
    with browser_context(1366, 1024) as context:
        page = context.new_page()
        errors = watch_errors(page)
        login(page, stack.base, "wall-admin", PASSWORD)
        page.goto(f"{stack.base}/")
        for table in ("table-tickets", "table-villages"):
            wait_for(page, ROWS.format(table=table), 30)
        page.evaluate("window.__samePage = true")
        page.click("#nav a[href^='/tickets']")
        wait_for(page, "location.pathname === '/tickets'")
        wait_for(page, "!document.querySelector('div[id*=table-villages]')", 20)
        wait_for(page, ROWS.format(table="table-tickets"), 30)
        page.click("#nav a[href^='/petitions']")
        wait_for(page, "location.pathname === '/petitions'")
        wait_for(page, ROWS.format(table="table-villages"), 30)
        assert page.evaluate("window.__samePage") is True  # no full page load in between
        assert [e for e in errors if "favicon" not in e] == []
