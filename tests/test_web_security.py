"""The web app over real HTTP: every route needs a login, and forged callbacks leak nothing.

A town official of 洪集镇 posts hand-made callback requests naming another town, as an attacker
with a valid session would; the answers must carry none of that town's village names or figures.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from browser import LiveStack, copy_sqlite
from sqlalchemy import select

from datasources.db import make_engine
from datasources.models import Town, Village
from datasources.users import add_user

PASSWORD = "security-test-pw"
# Public by design: the login, health, static files, the ingest API (its own token) and the
# metrics (their own token, or loopback only).
PUBLIC = {
    "/login",
    "/logout",
    "/healthz",
    "/metrics",
    "/_favicon.ico",
    "/api/v1/events",
    "/assets",
    "/_dash-component-suites/x/x",
}
pytestmark = pytest.mark.parametrize("history_url", ["sqlite"], indirect=True)


@pytest.fixture(scope="module")
def site(history_url: str, tmp_path_factory) -> Iterator[dict[str, Any]]:
    """A real web server on a copy of the seeded history, with a town official's login."""
    from dashboard.embedded_redis import EmbeddedRedis

    root = tmp_path_factory.mktemp("site")
    url = copy_sqlite(history_url, root / "wushi.db")
    engine = make_engine(url)
    with engine.connect() as conn:
        towns = dict(conn.execute(select(Town.name, Town.code)).all())
        villages = conn.execute(select(Village.name, Village.town_code)).all()
    add_user(engine, "hongji", PASSWORD, "town", towns["洪集镇"])
    engine.dispose()
    own = towns["洪集镇"]
    other = towns["三元镇"]
    with EmbeddedRedis(root / "redis") as redis_server:
        stack = LiveStack(url, redis_server.url, root)
        stack.start_web()
        try:
            yield {
                "base": stack.base,
                "own": own,
                "other": other,
                "other_villages": [n for n, t in villages if t == other],
                "own_villages": [n for n, t in villages if t == own],
            }
        finally:
            stack.stop()


@contextmanager
def _login(base: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base, timeout=30) as client:
        form = {"username": "hongji", "password": PASSWORD, "next": "/"}
        response = client.post("/login", data=form)
        assert response.status_code == 303, response.text
        yield client


def test_every_route_needs_a_login(site, tmp_path):
    """Anonymous requests get 401 (or a redirect to /login for pages) on every non-public route."""
    from dashboard.settings import Settings
    from dashboard.web import create_web

    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'routes.db'}",
        redis_url="redis://127.0.0.1:1/0",
        var_dir=tmp_path,
    )
    paths = set()
    for route in create_web(settings, warm=False).routes:
        path = getattr(route, "path", None)
        if path:
            paths.add(re.sub(r"\{[^}]+\}", "x", path))
    paths |= {"/", "/wall", "/tickets", "/api/v1/grids.geojson"}
    with httpx.Client(base_url=site["base"], timeout=30) as anonymous:
        for path in sorted(paths - PUBLIC):
            if path == "/_dash-ws-callback":
                continue  # a WebSocket route; tests/test_auth.py checks the handshake
            for method in ("GET", "POST"):
                response = anonymous.request(method, path, headers={"Accept": "text/html"})
                assert response.status_code in (401, 303, 405), (method, path)
                if response.status_code == 303:
                    assert response.headers["location"].startswith("/login")
        assert anonymous.get("/healthz").status_code == 200


def _callbacks(client: httpx.Client) -> list[dict[str, Any]]:
    response = client.get("/_dash-dependencies")
    assert response.status_code == 200
    return response.json()


def _text(response: httpx.Response) -> str:
    """Return a callback answer as readable text (Dash escapes non-ASCII in its JSON)."""
    if response.status_code != 200:
        return ""
    return json.dumps(response.json(), ensure_ascii=False)


def _parse_output(output: str) -> list[dict[str, Any]]:
    parts = output.strip(".").split("...") if output.startswith("..") else [output]
    outs = []
    for part in parts:
        ident, _, prop = part.rpartition(".")
        outs.append({"id": json.loads(ident) if ident.startswith("{") else ident, "property": prop})
    return outs


def _slot(ident: Any) -> Any:
    """The id of a page's one slot of a pattern-matched (ALL) id."""
    return {k: 0 if v == ["ALL"] else v for k, v in ident.items()}


def _forge(callback: dict[str, Any], filters: dict[str, Any]) -> dict[str, Any]:
    """Build a callback request whose filters name an area of the attacker's choosing.

    Pattern-matched (ALL) outputs and states get one slot each, as on a page with one copy of
    each chart and table.
    """
    values = {
        ("filters-store", "data"): filters,
        ("lang-store", "data"): "zh",
        ("url", "pathname"): "/",
        ("url", "search"): "",
        ("filter-metric", "value"): "closure_rate",
    }

    def item(dep: dict[str, Any]) -> Any:
        if isinstance(dep["id"], str) and dep["id"].startswith("{"):
            dep = {**dep, "id": json.loads(dep["id"])}
        if isinstance(dep["id"], dict):
            return [{"id": _slot(dep["id"]), "property": dep["property"], "value": None}]
        return {**dep, "value": values.get((str(dep["id"]), dep["property"]))}

    outputs = [
        [{"id": _slot(o["id"]), "property": o["property"]}] if isinstance(o["id"], dict) else o
        for o in _parse_output(callback["output"])
    ]
    return {
        "output": callback["output"],
        "outputs": outputs if len(outputs) > 1 else outputs[0],
        "inputs": [item(dep) for dep in callback["inputs"]],
        "state": [item(dep) for dep in callback.get("state", [])],
        "changedPropIds": ["filters-store.data"],
    }


def test_forged_callbacks_for_another_town_return_none_of_it(site):
    """Every callback fed by the filters refuses another town's code from a town official.

    Plain and pattern-matched outputs alike (the panels' callback fills the tiles, the charts
    and the tables at once); the same request for the official's own town does answer, so the
    refusals mean it.
    """
    with _login(site["base"]) as client:
        area_callbacks = [
            cb
            for cb in _callbacks(client)
            if any(dep["id"] == "filters-store" for dep in cb["inputs"])
            and not cb.get("clientside_function")  # runs in the browser, never on the server
        ]
        outputs = " ".join(cb["output"] for cb in area_callbacks)
        # The tiles, the map, a chart and a table are among them.
        for part in ("kpi-tiles", "grid-style", "chart-closure", "table-villages"):
            assert part in outputs, (part, outputs[:500])
        forged = [
            {"town": site["other"]},
            {"town": site["own"], "village": site["other"] + "200"},
            {"grid": site["other"] + "200001"},
        ]
        for callback in area_callbacks:
            for filters in forged:
                response = client.post("/_dash-update-component", json=_forge(callback, filters))
                assert response.status_code in (200, 204), (
                    callback["output"][:200],
                    response.text[:300],
                )
                body = _text(response)
                for name in site["other_villages"]:
                    assert name not in body, (callback["output"][:200], filters, name)
                assert "三元镇" not in body, (callback["output"][:200], filters)
        panels_cb = next(cb for cb in area_callbacks if "kpi-tiles" in cb["output"])
        own = client.post("/_dash-update-component", json=_forge(panels_cb, {"town": site["own"]}))
        assert own.status_code == 200 and "洪集镇" in _text(own)
        assert any(name in _text(own) for name in site["own_villages"])


def test_the_map_geometry_is_cut_to_the_officials_town(site):
    """A town official's map holds their town's grids only."""
    with _login(site["base"]) as client:
        grids = client.get("/api/v1/grids.geojson").json()
    codes = {f["properties"]["code"] for f in grids["features"]}
    assert codes and all(c.startswith(site["own"]) for c in codes)
    phones = [f["properties"].get("leader_phone") or "" for f in grids["features"]]
    assert all(re.fullmatch(r"\d{3}\*{4}\d{4}", p) for p in phones if p)


def test_a_request_naming_no_server_callback_is_refused_with_400(site):
    """A forged or stale callback request gets a 400, not Dash's 500 and a stack trace."""
    with _login(site["base"]) as client:
        callbacks = _callbacks(client)
        in_browser = [cb for cb in callbacks if cb.get("clientside_function")]
        on_server = [
            cb
            for cb in callbacks
            if not cb.get("clientside_function")
            and any(dep["id"] == "filters-store" for dep in cb["inputs"])
        ]
        assert in_browser and on_server
        filters = {"town": site["own"]}
        for callback in in_browser:
            response = client.post("/_dash-update-component", json=_forge(callback, filters))
            assert response.status_code == 400, (callback["output"][:120], response.text[:200])
            assert response.json() == {"error": "no such server callback"}
        unknown = {**_forge(on_server[0], filters), "output": "no-such-id.children"}
        assert client.post("/_dash-update-component", json=unknown).status_code == 400
        for body in (b"{not json", b"[]", b'{"output": 7}'):
            response = client.post(
                "/_dash-update-component",
                content=body,
                headers={"Content-Type": "application/json"},
            )
            assert response.status_code == 400, body
        # The same requests for a server callback are answered as before.
        response = client.post("/_dash-update-component", json=_forge(on_server[0], filters))
        assert response.status_code in (200, 204)
    # Without a login the auth wall answers first.
    assert httpx.post(f"{site['base']}/_dash-update-component", json={}).status_code == 401
