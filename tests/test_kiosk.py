"""Kiosk tokens for wall screens: the CLI, the real web over HTTP and WebSocket, and Chromium.

A district admin issues a token with ``wushi kiosk issue`` (run through click's CliRunner, the
same code as the installed command); ``/wall?kiosk=TOKEN`` swaps it for an HttpOnly cookie.
With that cookie a screen gets the wall and what the wall needs, and nothing else: every other
page, export and callback answers 403. Revoking the token refuses HTTP within the 10 s cache,
and closes the open live socket (4001, so Dash does not reconnect) within a minute.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from browser import (
    ARTIFACTS,
    LiveStack,
    browser_context,
    copy_sqlite,
    require_chromium,
    wait_for,
    watch_errors,
)
from click.testing import CliRunner
from redis import Redis
from sqlalchemy import select
from sqlalchemy.orm import Session
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from dashboard.cli import main
from datasources import kiosk
from datasources.audit import entries
from datasources.db import make_engine
from datasources.models import Device, KioskToken, Town
from datasources.periods import SHANGHAI
from datasources.users import add_user, disable_user

PASSWORD = "kiosk-test-pw"
HTML = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
on_history = pytest.mark.parametrize("history_url", ["sqlite"], indirect=True)
WALL_SLOTS = [{"chart": "chart-petitions", "n": 0}]  # the wall's only pattern-matched component


def wushi(database_url: str, *args: str) -> Any:
    """Run ``wushi ARGS`` against ``database_url``."""
    return CliRunner().invoke(main, list(args), env={"WUSHI_DATABASE_URL": database_url})


def issued_token(output: str) -> str:
    """Return the token from the wall address ``wushi kiosk issue`` prints."""
    found = re.search(r"/wall\?kiosk=(\S+)", output)
    assert found, output
    return found.group(1)


# --- The command line (SQLite and PostgreSQL) ------------------------------------------------


def test_kiosk_commands_issue_list_revoke_and_refuse_mistakes(database_url, engine):
    with Session(engine) as session, session.begin():
        session.add(
            Town(
                code="341504100",
                name="孙岗乡",
                name_en="Sungang",
                kind="town",
                geometry={},
                centroid_lon=115.9,
                centroid_lat=31.8,
            )
        )
    add_user(engine, "boss", PASSWORD, "district", None)
    add_user(engine, "sun.town", PASSWORD, "town", "341504100")
    add_user(engine, "old.boss", PASSWORD, "district", None)
    disable_user(engine, "old.boss")

    def fails(*args: str, says: str) -> None:
        result = wushi(database_url, "kiosk", *args)
        assert result.exit_code != 0, result.output
        assert says in result.output, result.output

    fails("issue", "hall", "--by", "nobody", says="no user nobody")
    fails("issue", "hall", "--by", "sun.town", says="only a district admin")
    fails("issue", "hall", "--by", "old.boss", says="is disabled")
    fails("issue", "hall", "--town", "341504999", "--by", "boss", says="no town with code")
    fails("issue", "hall", "--village", "341504100200", "--by", "boss", says="no village")
    fails("issue", "hall", "--town", "341504100", "--village", "x", "--by", "boss", says="not both")
    fails("issue", "a hall", "--by", "boss", says="the name must be")
    fails("issue", "hall", says="Missing option '--by'")

    result = wushi(database_url, "kiosk", "issue", "hall", "--by", "boss")
    assert result.exit_code == 0, result.output
    token = issued_token(result.output)
    assert "http://127.0.0.1:8050/wall?kiosk=" in result.output
    result = wushi(
        database_url,
        "kiosk",
        "issue",
        "孙岗大屏",
        "--town",
        "341504100",
        "--by",
        "boss",
        "--base-url",
        "https://wushi.example/",
    )
    assert result.exit_code == 0, result.output
    assert "https://wushi.example/wall?kiosk=" in result.output
    town_token = issued_token(result.output)
    fails("issue", "hall", "--by", "boss", says="exists already")

    # Only the hash is stored; the token opens the wall as the right area.
    with Session(engine) as session:
        stored = {row.name: row.token_hash for row in session.scalars(select(KioskToken))}
    assert stored["hall"] == kiosk.hash_token(token) and token not in stored.values()
    hall = kiosk.verify(engine, token)
    town = kiosk.verify(engine, town_token)
    assert hall is not None and hall.level == "district" and hall.area_code is None
    assert town is not None and (town.level, town.area_code) == ("town", "341504100")
    assert hall.last_seen_at is not None
    assert kiosk.verify(engine, token + "x") is None and kiosk.verify(engine, "") is None

    listed = wushi(database_url, "kiosk", "list")
    assert listed.exit_code == 0
    assert "hall" in listed.output and "孙岗乡" in listed.output and token not in listed.output

    fails("revoke", "nothing", says="no kiosk token named nothing")
    fails("revoke", "hall", "--by", "sun.town", says="only a district admin")
    result = wushi(database_url, "kiosk", "revoke", "hall")
    assert result.exit_code == 0, result.output
    fails("revoke", "hall", says="revoked already")
    assert kiosk.verify(engine, token) is None
    assert "revoked" in wushi(database_url, "kiosk", "list").output
    fails("issue", "hall", "--by", "boss", says="exists already (revoked)")

    log = entries(engine, action="kiosk")
    assert [(e.action, e.detail["kiosk"]) for e in log] == [
        ("kiosk.revoke", "hall"),
        ("kiosk.issue", "孙岗大屏"),
        ("kiosk.issue", "hall"),
    ]
    assert log[1].username == "boss" and log[1].area_code == "341504100"
    assert log[0].username.startswith("cli")


# --- The web, over real HTTP -----------------------------------------------------------------


@pytest.fixture(scope="module")
def stack(history_url: str, tmp_path_factory) -> Iterator[dict[str, Any]]:
    """The real web server and worker on a copy of the seeded history, with an embedded Redis."""
    from dashboard.embedded_redis import EmbeddedRedis

    root = tmp_path_factory.mktemp("kiosk")
    url = copy_sqlite(history_url, root / "wushi.db")
    engine = make_engine(url)
    with engine.connect() as conn:
        towns = dict(conn.execute(select(Town.name, Town.code)).all())
    add_user(engine, "admin", PASSWORD, "district", None)
    engine.dispose()
    with EmbeddedRedis(root / "redis") as redis_server:
        live = LiveStack(url, redis_server.url, root)
        live.start_worker()
        live.start_web()
        try:
            yield {"stack": live, "url": url, "own": towns["洪集镇"], "other": towns["三元镇"]}
        finally:
            live.stop()


def issue(site: dict[str, Any], name: str, *area: str) -> str:
    result = wushi(site["url"], "kiosk", "issue", name, *area, "--by", "admin")
    assert result.exit_code == 0, result.output
    return issued_token(result.output)


def revoke(site: dict[str, Any], name: str) -> None:
    result = wushi(site["url"], "kiosk", "revoke", name, "--by", "admin")
    assert result.exit_code == 0, result.output


@contextmanager
def open_wall(base: str, token: str) -> Iterator[httpx.Client]:
    """Yield a client holding the kiosk cookie, got through ``/wall?kiosk=``."""
    with httpx.Client(base_url=base, timeout=30) as client:
        response = client.get(f"/wall?kiosk={token}&lang=en", headers=HTML)
        assert response.status_code == 303, response.text
        assert response.headers["location"] == "/wall?lang=en"
        yield client


def dash_request(client: httpx.Client, output: str, values: dict[tuple[str, str], Any]) -> dict:
    """Build a callback request for the callback whose output contains ``output``."""
    callbacks = client.get("/_dash-dependencies").json()
    callback = next(cb for cb in callbacks if output in cb["output"])
    parts = (
        callback["output"][2:-2].split("...")
        if callback["output"].startswith("..")
        else [callback["output"]]
    )
    outputs: list[Any] = []
    for part in parts:
        ident, _, prop = part.rpartition(".")
        if ident[0] != "{":
            outputs.append({"id": ident, "property": prop})
            continue
        # A wildcard output: the slots the wall has (as Dash's renderer sends them).
        pattern = json.loads(ident)
        slot = {k: 0 if v == ["ALL"] else v for k, v in pattern.items()}
        outputs.append([{"id": slot, "property": prop}] if slot in WALL_SLOTS else [])

    def item(dep: dict[str, Any]) -> Any:
        if str(dep["id"]).startswith("{"):  # a wildcard: the wall's slots, as a list
            slot = {k: 0 if v == ["ALL"] else v for k, v in json.loads(dep["id"]).items()}
            return [{**dep, "id": slot, "value": None}] if slot in WALL_SLOTS else []
        return {**dep, "value": values.get((str(dep["id"]), dep["property"]))}

    return {
        "output": callback["output"],
        "outputs": outputs if len(outputs) > 1 else outputs[0],
        "inputs": [item(dep) for dep in callback["inputs"]],
        "state": [item(dep) for dep in callback.get("state", [])],
        "changedPropIds": [],
    }


def answer(response: httpx.Response) -> str:
    return json.dumps(response.json(), ensure_ascii=False) if response.status_code == 200 else ""


@on_history
def test_a_kiosk_link_sets_a_cookie_and_opens_the_wall_only(stack):
    base, own, other = stack["stack"].base, stack["own"], stack["other"]
    token = issue(stack, "hongji-hall", "--town", own)
    with open_wall(base, token) as wall:
        cookie = wall.cookies.get("wushi_kiosk")
        assert cookie == token
        set_cookie = wall.get(f"/wall?kiosk={token}", headers=HTML).headers["set-cookie"]
        assert "HttpOnly" in set_cookie and "SameSite=lax" in set_cookie
        assert "Max-Age=34560000" in set_cookie
        page = wall.get("/wall?lang=en", headers=HTML)
        assert page.status_code == 200 and "_dash-config" in page.text
        # Only the libraries the wall renders: its map's, not the tables' (dashboard/app.py).
        assert "/_dash-component-suites/dash_leaflet/" in page.text
        assert "/_dash-component-suites/dash_ag_grid/" not in page.text
        assert "wushi_kiosk=" in page.headers.get("set-cookie", "")  # renewed on each load
        assert wall.get("/_dash-layout").status_code == 200

        # The map: the token's town only.
        grids = wall.get("/api/v1/grids.geojson").json()["features"]
        assert grids and all(f["properties"]["code"].startswith(own) for f in grids)

        # The wall's own callbacks answer, for the token's town; another town's get nothing.
        values = {("url", "pathname"): "/wall", ("lang-store", "data"): "zh", ("url", "search"): ""}
        routed = wall.post(
            "/_dash-update-component", json=dash_request(wall, "page-content", values)
        )
        assert routed.status_code == 200 and "wall" in answer(routed)
        tiles = dash_request(wall, "kpi-tiles", values | {("filters-store", "data"): {}})
        assert "洪集镇" in answer(wall.post("/_dash-update-component", json=tiles))
        forged = dash_request(
            wall, "kpi-tiles", values | {("filters-store", "data"): {"town": other}}
        )
        response = wall.post("/_dash-update-component", json=forged)
        assert response.status_code == 204 and "三元镇" not in response.text

        # Every other page, the exports, the tables, other pages' callbacks: 403.
        for path in ("/", "/tickets", "/petitions", "/audit", "/devices", "/?town=" + own):
            response = wall.get(path, headers=HTML)
            assert response.status_code == 403, path
            assert "/wall" in response.text
        for output in ("download.data", "audit-table.rowData", "filter-town.value"):
            request = dash_request(wall, output, values | {("filters-store", "data"): {}})
            response = wall.post("/_dash-update-component", json=request)
            assert response.status_code == 403, output
        # The wall's own panel callback, asking for a table slot the wall does not have.
        table = dash_request(wall, "kpi-tiles", values | {("filters-store", "data"): {}})
        parts = table["output"][2:-2].split("...")
        slot = parts.index('{"n":["ALL"],"table":"table-tickets"}.rowData')
        table["outputs"][slot] = [{"id": {"n": 0, "table": "table-tickets"}, "property": "rowData"}]
        assert wall.post("/_dash-update-component", json=table).status_code == 403
        elsewhere = dash_request(wall, "page-content", values | {("url", "pathname"): "/tickets"})
        assert wall.post("/_dash-update-component", json=elsewhere).status_code == 403
        assert wall.post("/api/v1/events", json={}).status_code == 401  # its own token

    engine = make_engine(stack["url"])
    opened = entries(engine, action="kiosk.open", limit=1)[0]
    engine.dispose()
    assert opened.username == "kiosk:hongji-hall" and opened.address == "127.0.0.1"
    assert opened.area_code == own


@on_history
def test_an_unknown_token_is_refused_and_sets_no_cookie(stack):
    with httpx.Client(base_url=stack["stack"].base, timeout=30) as client:
        response = client.get("/wall?kiosk=wk_" + "x" * 43, headers=HTML)
        assert response.status_code == 403 and "revoked" in response.text
        assert "set-cookie" not in response.headers
        client.cookies.set("wushi_kiosk", "wk_" + "y" * 43)
        assert client.get("/wall", headers=HTML).status_code == 303  # to /login
        assert client.get("/_dash-layout").status_code == 401


# --- Revocation: HTTP within the cache, the live socket within a minute, in Chromium ---------

OBSERVE_FEED = """
(() => {
    window.__seen = {};
    new MutationObserver((records) => records.forEach((r) => r.addedNodes.forEach((node) => {
        if (node.nodeType !== 1) return;  // an entry, or a new list holding entries
        [node, ...node.querySelectorAll('[data-event-id]')].forEach((el) => {
            const id = el.getAttribute('data-event-id');
            if (id) window.__seen[id] = true;
        });
    }))).observe(document.body, {childList: true, subtree: true});
    return true;
})()
"""


def _call_event(database_url: str) -> dict[str, Any]:
    engine = make_engine(database_url)
    with engine.connect() as conn:
        device, grid = conn.execute(select(Device.id, Device.grid_code).limit(1)).one()
    engine.dispose()
    return {
        "v": 1,
        "id": uuid.uuid4().hex,
        "kind": "call.key",
        "ts": dt.datetime.now(SHANGHAI).isoformat(timespec="seconds"),
        "grid": grid,
        "device": device,
        "key": "call",
    }


@on_history
@pytest.mark.slow  # waits up to a minute for the socket re-check; about 30 s
def test_revoking_a_token_refuses_http_and_closes_the_open_wall(stack):
    """The wall opens with a token and shows live events; after `wushi kiosk revoke` HTTP is
    refused within 10 s, a socket that sends nothing is closed (4001) and the page shows
    "disconnected" within a minute, and later events no longer reach it."""
    require_chromium()
    live: LiveStack = stack["stack"]
    token = issue(stack, "district-hall")
    redis = Redis.from_url(live.redis_url)
    host = live.base.removeprefix("http://")
    with browser_context(1920, 1080) as context, open_wall(live.base, token) as client:
        page = context.new_page()
        errors = watch_errors(page)
        page.goto(f"{live.base}/wall?kiosk={token}")
        assert page.url == f"{live.base}/wall"  # the token is not left in the address bar
        wait_for(page, "document.querySelectorAll('#grid-map path.grid-cell').length >= 607")
        wait_for(page, "document.getElementById('ws-status').dataset.state === 'connected'")
        page.evaluate(OBSERVE_FEED)
        event = _call_event(live.database_url)
        redis.xadd("wushi:{341504}:events", {"event": json.dumps(event)})
        wait_for(page, f"window.__seen[{json.dumps(event['id'])}]", timeout_s=15)
        time.sleep(1.0)
        assert [e for e in errors if "favicon" not in e] == []  # the wall lacks nothing

        # A raw Dash socket that never sends anything (so Dash's per-message check never runs).
        headers = {"Cookie": f"wushi_kiosk={token}", "Origin": live.base}
        silent_socket = connect(f"ws://{host}/_dash-ws-callback", additional_headers=headers)
        with silent_socket as silent:
            assert client.get("/_dash-layout").status_code == 200
            revoke(stack, "district-hall")
            revoked_at = time.monotonic()
            while client.get("/_dash-layout").status_code == 200:
                assert time.monotonic() - revoked_at < 12, "HTTP still served after the cache TTL"
                time.sleep(0.5)
            assert client.get("/_dash-layout").status_code == 401
            assert client.get(f"/wall?kiosk={token}", headers=HTML).status_code == 403
            with pytest.raises(ConnectionClosed) as closed:
                silent.recv(timeout=60)

        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4001
        assert closed.value.rcvd.reason == "kiosk revoked"
        wait_for(
            page,
            "document.getElementById('ws-status').dataset.state === 'disconnected'",
            timeout_s=60 - (time.monotonic() - revoked_at),
        )
        assert page.evaluate("document.getElementById('ws-status').textContent") == "已断开"
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "wall-kiosk-revoked.png"))
        with (
            pytest.raises(InvalidStatus) as refused,
            connect(f"ws://{host}/_dash-ws-callback", additional_headers=headers),
        ):
            pass
        assert refused.value.response.status_code == 403

        later = _call_event(live.database_url)
        redis.xadd("wushi:{341504}:events", {"event": json.dumps(later)})
        time.sleep(4.0)  # the worker stores and publishes within a second
        assert not page.evaluate(f"window.__seen[{json.dumps(later['id'])}]")
        assert page.evaluate("document.getElementById('ws-status').dataset.state") == (
            "disconnected"
        )
    redis.close()
