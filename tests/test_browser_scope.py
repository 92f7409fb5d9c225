"""A town official in a real Chromium sees only their own town (issue #6).

洪集镇's official logs in through the real form of a real web server (uvicorn) with a real worker
and Redis, and sees only 洪集镇 on the map, in the filters, in the live feed and alerts, and in
the CSV and Excel exports, also after forging the page's filters to another town. Every answer
the server sends the page (callbacks, layout, geometry) is kept and searched for the other
towns' names and codes; the feed and the alerts panel are watched for every entry they ever show.
Screenshots go to ``$WUSHI_TEST_ARTIFACTS`` (default ``/tmp/wushi-shots``).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from browser import ARTIFACTS, LiveStack, browser_context, copy_sqlite, login, wait_for
from redis import Redis
from sqlalchemy import select

from datasources.audit import entries
from datasources.db import make_engine
from datasources.kpi import kpi, resolve_area
from datasources.live import LiveKeys
from datasources.models import Device, Grid, Ticket, Town, Village
from datasources.periods import SHANGHAI, Period, local_day
from datasources.users import add_user
from layouts.components import fmt_number

PASSWORD = "scope-test-pw"
OWN_NAME = "洪集镇"
UNANSWERED = "绿键呼叫5分钟未响应"  # the scheduler's alert text
pytestmark = pytest.mark.parametrize("history_url", ["sqlite"], indirect=True)

# Runs in every document before the app: notes every feed entry and every text the live feed
# and the alerts panel ever show, so an entry shown for a moment and replaced is caught too.
OBSERVER = """
window.__seen = {};
window.__texts = [];
new MutationObserver((records) => records.forEach((r) => r.addedNodes.forEach((n) => {
    const el = n.nodeType === 1 ? n : n.parentElement;
    if (!el) return;
    const inside = el.closest('#live-feed, #alerts');
    const boxes = inside ? [inside] : [...el.querySelectorAll('#live-feed, #alerts')];
    boxes.forEach((b) => window.__texts.push(b.textContent));
    [el, ...el.querySelectorAll('[data-event-id]')].forEach((x) => {
        const id = x.getAttribute('data-event-id');
        if (id && !(id in window.__seen)) window.__seen[id] = Date.now();
    });
}))).observe(document, {childList: true, subtree: true});
"""
CELLS = "[...document.querySelectorAll('#grid-map path.grid-cell')]"
FIRST_TILE = "(document.querySelector('#kpi-tiles .tile .value span')||{}).textContent"


@dataclass
class Site:
    """The running stack and the geography the assertions need."""

    stack: LiveStack
    district: str
    own: str  # 洪集镇's code
    own_villages: dict[str, str]  # code -> name
    own_grids: set[str]
    other: str  # 三元镇's code, the town forged into the filters
    other_towns: dict[str, str]  # code -> name, every town but 洪集镇
    other_villages: dict[str, str]  # code -> name, of every other town


@pytest.fixture(scope="module")
def site(history_url: str, tmp_path_factory) -> Iterator[Site]:
    """A web server and a worker on a copy of the seeded history, an embedded Redis server."""
    from dashboard.embedded_redis import EmbeddedRedis

    root = tmp_path_factory.mktemp("scope")
    url = copy_sqlite(history_url, root / "wushi.db")
    engine = make_engine(url)
    with engine.connect() as conn:
        towns = dict(conn.execute(select(Town.code, Town.name)).all())
        villages = conn.execute(select(Village.code, Village.name, Village.town_code)).all()
        own = next(code for code, name in towns.items() if name == OWN_NAME)
        grids = set(conn.scalars(select(Grid.code).where(Grid.code.startswith(own))))
    add_user(engine, "hongji", PASSWORD, "town", own, display_name="洪集镇干部")
    engine.dispose()
    with EmbeddedRedis(root / "redis") as redis_server:
        stack = LiveStack(url, redis_server.url, root)
        stack.start_worker()
        stack.start_web()
        try:
            yield Site(
                stack=stack,
                district=own[:6],
                own=own,
                own_villages={c: n for c, n, t in villages if t == own},
                own_grids=grids,
                other=next(code for code, name in towns.items() if name == "三元镇"),
                other_towns={c: n for c, n in towns.items() if c != own},
                other_villages={c: n for c, n, t in villages if t != own},
            )
        finally:
            stack.stop()


@dataclass
class Browser:
    """One logged-in page of the official, and every answer the server sent it."""

    page: Any
    answers: list[tuple[str, str]]


@pytest.fixture(scope="module")
def official(site: Site) -> Iterator[Browser]:
    """One Chromium context for the module, logged in as 洪集镇's official."""
    with browser_context(1366, 1024, accept_downloads=True) as context:
        context.add_init_script(OBSERVER)
        answers: list[tuple[str, str]] = []

        def keep(response: Any) -> None:
            path = response.url.removeprefix(site.stack.base).split("?")[0]
            if not path.startswith(("/_dash-update-component", "/_dash-layout", "/api/")):
                return
            try:
                body = response.text()
            except Exception:  # a 204 (no update) or a body the browser already dropped
                return
            try:  # Dash escapes non-ASCII in its JSON: decode to search for names
                body = json.dumps(json.loads(body), ensure_ascii=False)
            except ValueError:
                pass
            answers.append((path, body))

        context.on("response", keep)
        page = context.new_page()
        login(page, site.stack.base, "hongji", PASSWORD)
        yield Browser(page, answers)


def _open(browser: Browser, site: Site, path: str = "/") -> Any:
    page = browser.page
    page.goto(f"{site.stack.base}{path}")
    wait_for(page, f"{CELLS}.length === {len(site.own_grids)}")
    wait_for(page, "document.getElementById('ws-status').dataset.state === 'connected'")
    wait_for(page, FIRST_TILE)
    return page


def _shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name))


def _own_kpi(site: Site) -> dict[str, Any]:
    engine = make_engine(site.stack.database_url)
    now = dt.datetime.now(dt.UTC)
    today = local_day(now)
    area = resolve_area(engine, town=site.own, district_code=site.district)
    figures = kpi(engine, area, Period(dt.date(today.year, 1, 1), today), now)
    engine.dispose()
    return figures


def _leak_terms(site: Site) -> list[str]:
    """The other towns' names and codes, and their villages' names (none part of an own name)."""
    own_names = [OWN_NAME, *site.own_villages.values()]
    villages = [n for n in site.other_villages.values() if not any(n in own for own in own_names)]
    return [*site.other_towns.values(), *site.other_towns, *villages]


def _assert_no_leak(texts: list[str], site: Site, where: str) -> None:
    terms = _leak_terms(site)
    for text in texts:
        found = [term for term in terms if term in text]
        assert not found, f"{where} showed another town's {found[:5]}: {text[:300]}"


def _call(site: Site, town: str, minutes_ago: float = 0) -> dict[str, Any]:
    """Return a green-key call from a device in ``town`` (an older one turns into an alert)."""
    engine = make_engine(site.stack.database_url)
    with engine.connect() as conn:
        device, grid = conn.execute(
            select(Device.id, Device.grid_code)
            .where(Device.grid_code.startswith(town))
            .order_by(Device.id)
            .limit(1)
        ).one()
    engine.dispose()
    ts = dt.datetime.now(SHANGHAI) - dt.timedelta(minutes=minutes_ago)
    return {
        "v": 1,
        "id": uuid.uuid4().hex,
        "kind": "call.key",
        "ts": ts.isoformat(timespec="seconds"),
        "grid": grid,
        "device": device,
        "key": "call",
    }


def _push(site: Site, *events: dict[str, Any]) -> None:
    """Add events to the stream together, the way producers do; the worker takes them."""
    with Redis.from_url(site.stack.redis_url) as redis:
        pipe = redis.pipeline()
        for event in events:
            pipe.xadd(LiveKeys(site.district).events, {"event": json.dumps(event)})
        pipe.execute()


def _stored(site: Site, event_id: str, timeout_s: float = 10) -> None:
    """Wait until the worker put ``event_id`` in the live feed (so it was sent to every page)."""
    deadline = time.monotonic() + timeout_s
    with Redis.from_url(site.stack.redis_url) as redis:
        while time.monotonic() < deadline:
            if any(
                event_id in raw.decode()
                for raw in redis.lrange(LiveKeys(site.district).feed, 0, 199)
            ):
                return
            time.sleep(0.1)
    raise TimeoutError(f"the worker did not store {event_id}")


def _village_of(site: Site, event: dict[str, Any]) -> str:
    return site.own_villages.get(event["grid"][:12]) or site.other_villages[event["grid"][:12]]


def test_the_map_shows_only_the_officials_town(site, official):
    """Exactly 洪集镇's 109 grids are drawn, coloured, and the geometry sent holds nothing else.

    The grid geometry is held back until the page has its colours (``hideout``), as on a cold
    server or a slow network: dash-leaflet ignores a hideout that arrives while it loads, and
    the map stayed grey (``dashboard/assets/wushi_map.js`` now draws with the newest one).
    """
    page = official.page
    held: list[Any] = []
    page.route("**/api/v1/grids.geojson*", lambda route: held.append(route))
    try:  # a failure here must not leave the module's page with its geometry held back
        page.goto(f"{site.stack.base}/")
        wait_for(page, "Object.keys((window.wushiHideout || {}).values || {}).length")
        wait_for(page, "document.getElementById('ws-status').dataset.state === 'connected'")
        # The live socket's first map update has come too. wait_for_timeout, not time.sleep: the
        # sync API runs the route handler (which fills `held`) only while Playwright is called.
        page.wait_for_timeout(1000)
        assert len(held) == 1 and page.evaluate(f"{CELLS}.length") == 0
        held[0].fulfill(response=held[0].fetch())
    finally:
        page.unroute("**/api/v1/grids.geojson*")
        for route in held[1:]:
            route.continue_()
    wait_for(page, f"{CELLS}.length === {len(site.own_grids)}")
    codes = page.evaluate(f"{CELLS}.map((p) => p.getAttribute('data-code'))")
    assert len(codes) == len(site.own_grids) and set(codes) == site.own_grids
    # Coloured by the hideout (two or more classes), not the grey of "no data".
    wait_for(page, f"new Set({CELLS}.map((p) => p.getAttribute('fill'))).size > 1", 5)
    layers = {
        path: {f["properties"]["code"] for f in json.loads(body)["features"]}
        for path, body in official.answers
        if path.endswith(".geojson")
    }
    assert layers["/api/v1/grids.geojson"] == site.own_grids
    assert layers["/api/v1/villages.geojson"] == set(site.own_villages)
    assert layers["/api/v1/towns.geojson"] == {site.own}
    _shot(page, "town-official-map.png")


def test_the_filters_offer_only_the_officials_town_and_its_villages(site, official):
    """The town filter holds 洪集镇 only (even when unlocked in the page), the village filter
    its 16 villages."""
    page = _open(official, site)
    town = page.locator("#filter-town")
    assert town.is_disabled() and town.inner_text().strip() == OWN_NAME
    options = "[...document.querySelectorAll('[role=listbox] input')].map((i) => i.value)"
    # Unlock the town filter as a curious official could in the browser's console: the
    # options the server sent are still only their own town.
    page.evaluate("dash_clientside.set_props('filter-town', {disabled: false})")
    page.click("#filter-town")
    assert wait_for(page, f"{options}.length && {options}") == [site.own]
    page.keyboard.press("Escape")
    page.click("#filter-village")
    villages = wait_for(page, f"{options}.length && {options}")
    assert sorted(villages) == sorted(site.own_villages)
    labels = page.evaluate("document.querySelector('[role=listbox]').innerText")
    assert all(name in labels for name in site.own_villages.values())
    _shot(page, "town-official-villages.png")
    page.keyboard.press("Escape")


def test_the_live_feed_and_alerts_show_only_the_officials_town(site, official):
    """Calls in 洪集镇 and in 三元镇 pushed at the same moment: only 洪集镇's reach the feed and,
    five minutes unanswered, the alerts."""
    page = _open(official, site)
    own_now, other_now = _call(site, site.own), _call(site, site.other)
    own_old, other_old = _call(site, site.own, 6), _call(site, site.other, 6)
    _push(site, other_now, own_now, other_old, own_old)
    wait_for(page, f"window.__seen[{json.dumps(own_now['id'])}]", timeout_s=10)
    own_alert = f"{_village_of(site, own_old)} {UNANSWERED}"
    wait_for(page, f"document.getElementById('alerts').textContent.includes('{own_alert}')", 20)
    # The other town's events were stored and alerted too, for every page to be offered.
    _stored(site, other_now["id"])
    with Redis.from_url(site.stack.redis_url) as redis:
        alerts = [json.loads(a) for a in redis.hvals(LiveKeys(site.district).alerts)]
    assert any(a.get("town") == site.other and a["kind"] == "unanswered_call" for a in alerts)
    assert any(not str(a.get("town")).startswith(site.own) for a in alerts)  # seeded ones too
    time.sleep(1.0)  # a later batch would still have time to show
    seen = page.evaluate("window.__seen")
    assert other_now["id"] not in seen and other_old["id"] not in seen
    _assert_no_leak(page.evaluate("window.__texts"), site, "the feed or the alerts")
    assert f"{_village_of(site, other_old)} {UNANSWERED}" not in "".join(
        page.evaluate("window.__texts")
    )
    _shot(page, "town-official-live.png")


def _download(page: Any, table: str, kind: str) -> Path:
    button = f'button[id*=\'"table":"{table}"\'][id*="export-{kind}"]'
    with page.expect_download() as download:
        page.click(button)
    assert download.value.suggested_filename.endswith(f".{kind}")
    return Path(download.value.path())


def _csv_rows(path: Path) -> list[list[str]]:
    return list(csv.reader(io.StringIO(path.read_text(encoding="utf-8-sig"))))


def _xlsx_rows(path: Path) -> list[list[Any]]:
    book = openpyxl.load_workbook(io.BytesIO(path.read_bytes()), read_only=True)
    rows = [list(r) for r in book.active.iter_rows(values_only=True)]
    book.close()
    return rows


def test_exports_hold_only_the_officials_town_and_are_audited(site, official):
    """CSV and Excel of both tables hold 洪集镇's rows only; each export is in the audit log."""
    page = _open(official, site)
    wait_for(page, "document.querySelector('div[id*=table-tickets] .ag-row')")
    wait_for(page, "document.querySelector('div[id*=table-villages] .ag-row')")
    engine = make_engine(site.stack.database_url)
    tickets: dict[str, list[list[Any]]] = {}
    for kind, read in (("csv", _csv_rows), ("xlsx", _xlsx_rows)):
        tickets[kind] = read(_download(page, "table-tickets", kind))
        villages = read(_download(page, "table-villages", kind))
        assert villages[0][0] == "名称"
        assert sorted(str(r[0]) for r in villages[1:]) == sorted(site.own_villages.values())
    header, *rows = tickets["csv"]
    assert header[:4] == ["编号", "受理时间", "村（社区）", "网格"]
    assert rows and {r[2] for r in rows} <= set(site.own_villages.values())
    assert [[str(v) for v in r[:4]] for r in tickets["xlsx"][1:]] == [r[:4] for r in rows]
    with engine.connect() as conn:
        towns = set(
            conn.scalars(select(Ticket.town_code).where(Ticket.id.in_([r[0] for r in rows])))
        )
    assert towns == {site.own}
    log = entries(engine, username="hongji", action="export", limit=10)
    engine.dispose()
    assert len(log) == 4 and {e.area_code for e in log} == {site.own}
    assert {(e.detail["table"], e.detail["format"]) for e in log} == {
        (t, k) for t in ("table-tickets", "table-villages") for k in ("csv", "xlsx")
    }
    assert {e.detail["rows"] for e in log if e.detail["table"] == "table-tickets"} == {len(rows)}


def _choices_answer(response: Any) -> bool:
    """Whether ``response`` answers the callback that follows the filters' store (the village
    and grid choices and the URL): its request carries the filters the page now holds."""
    return "_dash-update-component" in response.url and "filter-village.options" in (
        response.request.post_data or ""
    )


def test_a_forged_filter_shows_nothing_of_another_town(site, official):
    """Another town in the link, in the filters' store or in the village filter: the page stays
    on 洪集镇, and an event of that town pushed meanwhile never shows."""
    own_requests = fmt_number(_own_kpi(site)["requests"])
    other_village = next(c for c in site.other_villages if c.startswith(site.other))
    # 1. A shared link naming 三元镇 opens 洪集镇.
    page = _open(official, site, f"/?town={site.other}&village={other_village}")
    wait_for(page, f"window.location.search.includes('town={site.own}')")
    assert site.other not in page.evaluate("window.location.search")
    wait_for(page, f"{FIRST_TILE} === '{own_requests}'")
    assert OWN_NAME in page.inner_text("#area-title")
    # 2. The village filter set to a 三元镇 village in the page: the filters pin 洪集镇 again
    # (in the browser; the server would refuse the village anyway, as step 3 shows).
    with page.expect_response(_choices_answer) as answer:
        page.evaluate(f"dash_clientside.set_props('filter-village', {{value: '{other_village}'}})")
    pinned = json.loads(answer.value.request.post_data)["inputs"][0]["value"]
    assert (pinned["town"], pinned["village"], pinned["grid"]) == (site.own, None, None)
    assert site.other not in json.dumps(answer.value.json()["response"])
    assert site.other not in page.evaluate("window.location.search")
    # 3. The filters' store (what every panel and the live socket read) forged to 三元镇.
    page.evaluate(
        "dash_clientside.set_props('filters-store', "
        f"{{data: {{town: '{site.other}', village: '{other_village}'}}}})"
    )
    time.sleep(1.5)  # the live callback reads the page's filters every second
    other_now, own_now = _call(site, site.other), _call(site, site.own)
    _push(site, other_now, own_now)
    _stored(site, other_now["id"])
    time.sleep(1.0)  # the feed is flushed every 150 ms
    seen = page.evaluate("window.__seen")
    assert other_now["id"] not in seen
    _assert_no_leak(page.evaluate("window.__texts"), site, "the feed or the alerts")
    # The panels kept 洪集镇's figures, rows and shapes.
    assert page.evaluate(FIRST_TILE) == own_requests
    assert OWN_NAME in page.inner_text("#area-title")
    rows = page.evaluate(
        "[...document.querySelectorAll('div[id*=table-villages] .ag-row [col-id=name]')]"
        ".map((c) => c.textContent)"
    )
    assert rows and set(rows) <= set(site.own_villages.values())
    assert set(page.evaluate(f"{CELLS}.map((p) => p.getAttribute('data-code'))")) == site.own_grids
    _shot(page, "town-official-forged.png")
    # Nothing the server sent this page during the whole module named another town.
    _assert_no_leak([body for _path, body in official.answers], site, "a server answer")


def test_own_events_keep_arriving_after_a_forged_filter(site, official):
    """After a forged filter, the page's own town's events still reach its feed."""
    page = _open(official, site)
    page.evaluate(f"dash_clientside.set_props('filters-store', {{data: {{town: '{site.other}'}}}})")
    time.sleep(1.5)  # the live callback reads the page's filters every second
    own_now = _call(site, site.own)
    _push(site, own_now)
    _stored(site, own_now["id"])
    wait_for(page, f"window.__seen[{json.dumps(own_now['id'])}]", timeout_s=3)
