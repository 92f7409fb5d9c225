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
# Public by design: the login, health, static files, and the ingest API (its own token).
PUBLIC = {
    "/login",
    "/logout",
    "/healthz",
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


def _forge(callback: dict[str, Any], filters: dict[str, Any]) -> dict[str, Any]:
    """Build a callback request whose filters name an area of the attacker's choosing."""
    values = {
        ("filters-store", "data"): filters,
        ("lang-store", "data"): "zh",
        ("url", "pathname"): "/",
        ("url", "search"): "",
        ("filter-metric", "value"): "closure_rate",
    }

    def item(dep: dict[str, Any]) -> dict[str, Any]:
        return {**dep, "value": values.get((str(dep["id"]), dep["property"]))}

    outputs = _parse_output(callback["output"])
    return {
        "output": callback["output"],
        "outputs": outputs if len(outputs) > 1 else outputs[0],
        "inputs": [item(dep) for dep in callback["inputs"]],
        "state": [item(dep) for dep in callback.get("state", [])],
        "changedPropIds": ["filters-store.data"],
    }


def test_forged_callbacks_for_another_town_return_none_of_it(site):
    """Every callback fed by the filters refuses another town's code from a town official."""
    with _login(site["base"]) as client:
        _check_plain_callbacks(client, site)


def _check_plain_callbacks(client: httpx.Client, site: dict[str, Any]) -> None:
    area_callbacks = [
        cb
        for cb in _callbacks(client)
        if any(dep["id"] == "filters-store" for dep in cb["inputs"])
        and "{" not in cb["output"]  # pattern-matched outputs are checked below
    ]
    assert len(area_callbacks) >= 2  # the tiles and the map
    forged = [
        {"town": site["other"]},
        {"town": site["own"], "village": site["other"] + "200"},
        {"grid": site["other"] + "200001"},
    ]
    for callback in area_callbacks:
        for filters in forged:
            response = client.post("/_dash-update-component", json=_forge(callback, filters))
            assert response.status_code in (200, 204), (callback["output"], response.text[:300])
            body = _text(response)
            for name in site["other_villages"]:
                assert name not in body, (callback["output"], filters, name)
            assert "三元镇" not in body, (callback["output"], filters)
    # The same requests for the official's own town do answer, so the refusals above mean it.
    tiles = next(cb for cb in area_callbacks if "kpi-tiles" in cb["output"])
    own = client.post("/_dash-update-component", json=_forge(tiles, {"town": site["own"]}))
    assert own.status_code == 200 and "洪集镇" in _text(own)


def test_forged_chart_and_table_callbacks_refuse_another_town(site):
    """Charts and tables (pattern-matched ids) refuse too; the own town's chart answers."""
    with _login(site["base"]) as client:
        _check_pattern_callbacks(client, site)


def _pattern_request(callback: dict[str, Any], filters: dict[str, Any]) -> dict[str, Any]:
    request = _forge(callback, filters)
    # Pretend the page has one slot of this chart or table.
    outputs = request["outputs"] if isinstance(request["outputs"], list) else [request["outputs"]]
    request["outputs"] = [
        [{"id": {k: 0 if k == "n" else v for k, v in o["id"].items()}, "property": o["property"]}]
        for o in outputs
    ]
    if len(request["outputs"]) == 1:
        request["outputs"] = request["outputs"][0]
    return request


def _check_pattern_callbacks(client: httpx.Client, site: dict[str, Any]) -> None:
    for callback in _callbacks(client):
        if "{" not in callback["output"] or not any(
            dep["id"] == "filters-store" for dep in callback["inputs"]
        ):
            continue
        request = _pattern_request(callback, {"town": site["other"]})
        response = client.post("/_dash-update-component", json=request)
        assert response.status_code in (200, 204), (callback["output"], response.text[:300])
        body = _text(response)
        for name in site["other_villages"]:
            assert name not in body, (callback["output"], name)
    closure = next(cb for cb in _callbacks(client) if "chart-closure" in cb["output"])
    own = client.post(
        "/_dash-update-component", json=_pattern_request(closure, {"town": site["own"]})
    )
    assert any(name in _text(own) for name in site["own_villages"])


def test_the_map_geometry_is_cut_to_the_officials_town(site):
    """A town official's map holds their town's grids only."""
    with _login(site["base"]) as client:
        grids = client.get("/api/v1/grids.geojson").json()
    codes = {f["properties"]["code"] for f in grids["features"]}
    assert codes and all(c.startswith(site["own"]) for c in codes)
    phones = [f["properties"].get("leader_phone") or "" for f in grids["features"]]
    assert all(re.fullmatch(r"\d{3}\*{4}\d{4}", p) for p in phones if p)
