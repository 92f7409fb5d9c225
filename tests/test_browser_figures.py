"""A declared figure on the overview in a real Chromium: its tile, and the map coloured by it.

Screenshots go to ``$WUSHI_TEST_ARTIFACTS`` (default ``/tmp/wushi-shots``) to be looked at.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from browser import (
    ARTIFACTS,
    LiveStack,
    browser_context,
    copy_sqlite,
    login,
    require_chromium,
    wait_for,
    watch_errors,
)

from dashboard.embedded_redis import EmbeddedRedis
from datasources.db import make_engine
from datasources.users import add_user

PASSWORD = "browser-test-pw"
pytestmark = pytest.mark.parametrize("history_url", ["sqlite"], indirect=True)


@pytest.fixture(scope="module")
def stack(history_url: str, tmp_path_factory) -> Iterator[LiveStack]:
    """A web server on a copy of the seeded history and an embedded Redis."""
    require_chromium()
    root = tmp_path_factory.mktemp("stack")
    url = copy_sqlite(history_url, root / "wushi.db")
    engine = make_engine(url)
    add_user(engine, "wall-admin", PASSWORD, "district", None, display_name="指挥中心")
    engine.dispose()
    with EmbeddedRedis(root / "redis") as redis_server:
        live = LiveStack(url, redis_server.url, root)
        live.start_web()
        try:
            yield live
        finally:
            live.stop()


@pytest.mark.parametrize(
    ("lang", "label", "unit"),
    [("zh", "平均办结天数", "天"), ("en", "Average resolution days", "days")],
)
def test_resolution_days_tile_and_map_metric_on_the_overview(stack, lang, label, unit):
    with browser_context(1366, 1024) as context:
        page = context.new_page()
        errors = watch_errors(page)
        login(page, stack.base, "wall-admin", PASSWORD)
        page.goto(f"{stack.base}/?lang={lang}&metric=resolution_days")
        labels = "[...document.querySelectorAll('#kpi-tiles .tile .label')].map(e => e.textContent)"
        wait_for(page, f"{labels}.includes({label!r})", 30)
        tile = page.evaluate(
            "[...document.querySelectorAll('#kpi-tiles .tile')]"
            f".find(e => e.querySelector('.label').textContent === {label!r}).textContent"
        )
        assert unit in tile and any(ch.isdigit() for ch in tile), tile
        legend = "(document.getElementById('map-legend')||{}).textContent || ''"
        wait_for(page, f"{legend}.includes({f'{label}（{unit}）'!r})", 30)
        wait_for(page, "document.querySelectorAll('#grid-map path.grid-cell').length >= 607", 30)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"overview-resolution-days-{lang}.png"))
        assert not errors, errors
