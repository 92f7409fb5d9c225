"""The audit page over real HTTP and in Chromium: district admins only, checked on the server.

The log holds real entries: logins through the form, a kiosk token issued with the real CLI and
a screen opening the wall with it. A district admin sees them (filtered by user, action and
days); a town official gets 403 for the page and nothing from a forged callback; a kiosk gets
403 for both.
"""

from __future__ import annotations

import datetime as dt
import json
import re
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
    login,
    wait_for,
    watch_errors,
)
from click.testing import CliRunner
from sqlalchemy import select

from dashboard.cli import main
from datasources.db import make_engine
from datasources.models import Town
from datasources.periods import SHANGHAI
from datasources.users import add_user

PASSWORD = "audit-page-pw"
HTML = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
pytestmark = pytest.mark.parametrize("history_url", ["sqlite"], indirect=True)


@pytest.fixture(scope="module")
def site(history_url: str, tmp_path_factory) -> Iterator[dict[str, Any]]:
    """The real web server on a copy of the seeded history; an admin, a town official, a kiosk."""
    from dashboard.embedded_redis import EmbeddedRedis

    root = tmp_path_factory.mktemp("audit")
    url = copy_sqlite(history_url, root / "wushi.db")
    engine = make_engine(url)
    with engine.connect() as conn:
        town = conn.scalar(select(Town.code).where(Town.name == "洪集镇"))
    add_user(engine, "admin", PASSWORD, "district", None, display_name="指挥中心")
    add_user(engine, "hongji", PASSWORD, "town", town, display_name="洪集镇干部")
    engine.dispose()
    result = CliRunner().invoke(
        main,
        ["kiosk", "issue", "lobby-wall", "--town", town, "--by", "admin"],
        env={"WUSHI_DATABASE_URL": url},
    )
    assert result.exit_code == 0, result.output
    token = re.search(r"/wall\?kiosk=(\S+)", result.output).group(1)  # type: ignore[union-attr]
    with EmbeddedRedis(root / "redis") as redis_server:
        stack = LiveStack(url, redis_server.url, root)
        stack.start_web()
        try:
            yield {"base": stack.base, "town": town, "token": token}
        finally:
            stack.stop()


@contextmanager
def logged_in(base: str, username: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base, timeout=30) as client:
        response = client.post(
            "/login", data={"username": username, "password": PASSWORD, "next": "/"}
        )
        assert response.status_code == 303, response.text
        yield client


def audit_request(client: httpx.Client, **inputs: Any) -> dict[str, Any]:
    """Build the audit table's callback request, as the page sends it."""
    callbacks = client.get("/_dash-dependencies").json()
    callback = next(cb for cb in callbacks if "audit-table.rowData" in cb["output"])
    parts = callback["output"][2:-2].split("...")
    values = {
        "audit-user.value": inputs.get("user"),
        "audit-action.value": inputs.get("action"),
        "audit-period.start_date": inputs.get("start"),
        "audit-period.end_date": inputs.get("end"),
        "audit-refresh.n_clicks": 0,
        "lang-store.data": inputs.get("lang", "zh"),
    }
    return {
        "output": callback["output"],
        "outputs": [{"id": p.rpartition(".")[0], "property": p.rpartition(".")[2]} for p in parts],
        "inputs": [
            {**dep, "value": values[f"{dep['id']}.{dep['property']}"]} for dep in callback["inputs"]
        ],
        "state": [],
        "changedPropIds": [],
    }


def table(response: httpx.Response) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text[:300]
    return response.json()["response"]["audit-table"]["rowData"]  # type: ignore[no-any-return]


def test_a_district_admin_sees_logins_and_kiosk_changes_and_can_filter(site):
    with httpx.Client(base_url=site["base"], timeout=30) as wall:  # a screen opens the wall
        assert wall.get(f"/wall?kiosk={site['token']}", headers=HTML).status_code == 303
    with logged_in(site["base"], "admin") as admin:
        page = admin.get("/audit", headers=HTML)
        assert page.status_code == 200 and "_dash-config" in page.text
        rows = table(admin.post("/_dash-update-component", json=audit_request(admin)))
        by_action = {row["action"]: row for row in rows}
        issued = by_action["签发大屏令牌"]
        assert issued["user"] == "admin" and "lobby-wall" in issued["detail"]
        assert issued["area"] == f"洪集镇 {site['town']}"
        opened = by_action["大屏接入"]
        assert opened["user"] == "kiosk:lobby-wall" and opened["address"] == "127.0.0.1"
        assert by_action["登录"]["address"] == "127.0.0.1"
        assert rows == sorted(rows, key=lambda r: r["time"], reverse=True)

        english = audit_request(admin, action="kiosk", lang="en")
        rows = table(admin.post("/_dash-update-component", json=english))
        assert {r["action"] for r in rows} == {"Wall token issued", "Wall screen opened"}
        mine = audit_request(admin, user="admin")
        assert {r["user"] for r in table(admin.post("/_dash-update-component", json=mine))} == {
            "admin"
        }
        today = dt.datetime.now(SHANGHAI).date().isoformat()
        rows = table(
            admin.post("/_dash-update-component", json=audit_request(admin, start=today, end=today))
        )
        assert any(r["action"] == "签发大屏令牌" for r in rows)
        past = audit_request(admin, start="2021-01-01", end="2021-12-31")
        assert table(admin.post("/_dash-update-component", json=past)) == []

        # The nav links to the audit page for the admin only.
        routed = admin.post("/_dash-update-component", json=_route(admin, "/"))
        assert "/audit" in nav_links(routed)


def nav_links(response: httpx.Response) -> set[str]:
    """Return the paths of the links in a rendered page (without their query strings)."""
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            href = node.get("href")
            if isinstance(href, str):
                found.add(href.split("?")[0])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    assert response.status_code == 200, response.text[:300]
    walk(response.json())
    return found


def _route(client: httpx.Client, path: str) -> dict[str, Any]:
    callbacks = client.get("/_dash-dependencies").json()
    callback = next(cb for cb in callbacks if cb["output"] == "page-content.children")
    values = {"url.pathname": path, "lang-store.data": "zh", "url.search": ""}
    return {
        "output": callback["output"],
        "outputs": {"id": "page-content", "property": "children"},
        "inputs": [
            {**d, "value": values[f"{d['id']}.{d['property']}"]} for d in callback["inputs"]
        ],
        "state": [
            {**d, "value": values[f"{d['id']}.{d['property']}"]} for d in callback.get("state", [])
        ],
        "changedPropIds": [],
    }


def test_town_officials_kiosks_and_strangers_get_nothing(site):
    with logged_in(site["base"], "hongji") as town:
        response = town.get("/audit", headers=HTML)
        assert response.status_code == 403 and "district" in response.text
        assert town.get("/audit/", headers=HTML).status_code == 403
        forged = town.post("/_dash-update-component", json=audit_request(town))
        assert forged.status_code == 204 and forged.text == ""
        english = town.post("/_dash-update-component", json=audit_request(town, lang="en"))
        assert english.status_code == 204
        # Rendered anyway (client-side navigation): the page says no, and the nav has no link.
        routed = town.post("/_dash-update-component", json=_route(town, "/audit"))
        assert "仅区级管理员" in json.dumps(routed.json(), ensure_ascii=False)
        home = town.post("/_dash-update-component", json=_route(town, "/"))
        assert "/audit" not in nav_links(home) and "/tickets" in nav_links(home)
    with httpx.Client(base_url=site["base"], timeout=30) as wall:
        assert wall.get(f"/wall?kiosk={site['token']}", headers=HTML).status_code == 303
        assert wall.get("/audit", headers=HTML).status_code == 403
        forged = wall.post("/_dash-update-component", json=audit_request(wall))
        assert forged.status_code == 403
    with httpx.Client(base_url=site["base"], timeout=30) as stranger:
        response = stranger.get("/audit", headers=HTML)
        assert response.status_code == 303 and response.headers["location"].startswith("/login")


def test_the_audit_page_in_chromium(site):
    """The admin opens the log from the nav: a large table, Chinese first, with the kiosk issue."""
    with browser_context(1366, 900) as context:
        page = context.new_page()
        errors = watch_errors(page)
        login(page, site["base"], "admin", PASSWORD)
        page.goto(f"{site['base']}/")
        page.click("#nav a[href^='/audit']")
        wait_for(page, "location.pathname === '/audit'")
        cell = "[...document.querySelectorAll('#audit-table .ag-cell')].map(c => c.textContent)"
        wait_for(page, f"{cell}.includes('签发大屏令牌')")
        assert "lobby-wall" in " ".join(page.evaluate(cell))
        size = page.evaluate(
            "parseFloat(getComputedStyle(document.querySelector('#audit-table .ag-cell')).fontSize)"
        )
        assert size >= 16
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "audit-1366x900.png"))
        page.click("#lang-switch")
        wait_for(page, f"{cell}.includes('Wall token issued')")
        assert [e for e in errors if "favicon" not in e] == []
