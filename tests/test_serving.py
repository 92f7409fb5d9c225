"""``wushi web --workers 2`` over real HTTP: the processes work as one site.

Two web processes share one port (the kernel hands each new connection to either); a login,
a lockout and the live socket must work whichever process answers, and the log's ``pid`` field
shows that both did. Also: /healthz as in docs/contract.md, the cache headers of versioned static
files and of the map's geometry.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
import uvicorn
from eventfactory import Factory
from servestack import (
    PASSWORD,
    USERNAME,
    LiveSocket,
    ServeStack,
    fresh_client,
    redis_for,
    render_page_request,
    seeded_database,
)
from sqlalchemy import select

from datasources.db import make_engine
from datasources.models import Town
from datasources.users import add_user

if TYPE_CHECKING:
    from dashboard.sources import Sources

IMMUTABLE = "public, max-age=31536000, immutable"


@pytest.fixture(scope="module")
def stack(seeded_templates, test_district, tmp_path_factory) -> Iterator[ServeStack]:
    root = tmp_path_factory.mktemp("serving")
    with (
        seeded_database(seeded_templates, root) as (_, db_url),
        redis_for(test_district, root) as redis_url,
    ):
        engine = make_engine(db_url)
        with engine.connect() as conn:
            town = conn.execute(select(Town.code).order_by(Town.code)).scalars().first()
        add_user(engine, "towner", PASSWORD, "town", town)
        add_user(engine, "lockme", PASSWORD, "district", None)
        engine.dispose()
        stack = ServeStack(db_url, redis_url, root, district=test_district, workers=2)
        try:
            stack.start_web()
            stack.start_worker()
            yield stack
        finally:
            stack.stop()


def test_healthz_matches_the_contract(stack):
    response = httpx.get(f"{stack.base}/healthz", timeout=30)
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "district": stack.district,
        "database": "ok",
        "redis": "ok",
    }


def test_healthz_names_the_failing_part_with_503(tmp_path):
    """A web process whose Redis is down answers 503 and says which part failed."""
    from dashboard.settings import Settings
    from dashboard.web import create_web

    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'health.db'}",
        redis_url="redis://127.0.0.1:1/0",
        var_dir=tmp_path,
    )
    config = uvicorn.Config(
        create_web(settings, warm=False),
        host="127.0.0.1",
        port=0,
        log_level="error",
        lifespan="off",
        ws="websockets-sansio",
    )
    sock = config.bind_socket()
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        response = httpx.get(f"http://127.0.0.1:{sock.getsockname()[1]}/healthz", timeout=30)
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["failing"] == ["redis"]
    assert body["database"] == "ok"


def test_a_login_made_on_one_process_is_valid_on_the_other(stack):
    with fresh_client(stack.base) as client:
        assert stack.login(client).status_code == 303
        login = stack.wait_requests(path="/login", method="POST", status=303, user=None)[-1]
        statuses: list[int] = []

        def one(i: int) -> int:
            if i % 2:
                return client.post(
                    "/_dash-update-component", json=render_page_request()
                ).status_code
            return client.get("/", headers={"Accept": "text/html"}).status_code

        with ThreadPoolExecutor(4) as pool:
            for _round in range(15):
                statuses += pool.map(one, range(8))
                if len(stack.wait_pids(2, timeout=1, user=USERNAME)) == 2:
                    break
    assert set(statuses) == {200}
    assert len(stack.wait_pids(2, user=USERNAME)) == 2, "every request went to one process"
    served = stack.requests(user=USERNAME)
    assert any(line["pid"] != login["pid"] for line in served)


def test_a_lockout_made_on_one_process_holds_on_the_other(stack):
    with fresh_client(stack.base) as client:
        for _ in range(5):
            assert stack.login(client, "lockme", "wrong-password").status_code == 401
        answers: list[int] = []
        with ThreadPoolExecutor(4) as pool:
            for _round in range(15):
                answers += pool.map(lambda _: stack.login(client, "lockme").status_code, range(6))
                if len(stack.wait_pids(2, timeout=1, path="/login", status=429)) == 2:
                    break
    # Even the right password is refused, by both processes: the counts live in Redis.
    assert set(answers) == {429}
    assert len(stack.wait_pids(2, path="/login", status=429)) == 2


def test_the_live_socket_works_on_either_process(stack):
    engine = make_engine(stack.database_url)
    factory = Factory.from_engine(engine, stack.district)
    engine.dispose()
    with fresh_client(stack.base) as client:
        assert stack.login(client).status_code == 303
        cookie = client.cookies["wushi_session"]
    for _round in range(8):
        with ExitStack() as sockets:
            opened = [sockets.enter_context(LiveSocket(stack.base, cookie)) for _ in range(3)]
            event = factory.call()
            assert stack.ingest([event]).status_code == 202
            for socket in opened:
                socket.wait_for(event["id"])
        # The server logs a socket when it closes.
        if len(stack.wait_pids(2, timeout=2, method="WS", user=USERNAME, status=101)) == 2:
            break
    assert len(stack.wait_pids(2, method="WS", user=USERNAME, status=101)) == 2


def test_versioned_static_files_are_kept_for_a_year(stack):
    with fresh_client(stack.base) as client:
        assert stack.login(client).status_code == 303
        index = client.get("/", headers={"Accept": "text/html"}).text
        suites = re.findall(r'src="(/_dash-component-suites/[^"]+)"', index)
        assert suites
        for url in suites[:4]:
            response = client.get(url, headers={"Accept-Encoding": "gzip"})
            assert response.status_code == 200, url
            assert response.headers["cache-control"] == IMMUTABLE, url
        big = client.get(suites[-1], headers={"Accept-Encoding": "gzip"})
        assert big.headers.get("content-encoding") == "gzip"
        assets = re.findall(r'"(/assets/[^"?]+\?m=[^"]+)"', index)
        assert assets
        for url in assets:
            response = client.get(url)
            assert response.status_code == 200, url
            assert response.headers["cache-control"] == IMMUTABLE, url
        unversioned = client.get(assets[0].split("?")[0])
        assert unversioned.headers["cache-control"] == "no-cache"


def _map_version(client: httpx.Client) -> str:
    page = client.post("/_dash-update-component", json=render_page_request())
    assert page.status_code == 200
    found = set(re.findall(r"\.geojson\?v=([0-9a-f]+)", page.text))
    assert len(found) == 1, found
    return found.pop()


def test_map_geometry_urls_are_versioned_per_area_and_kept_for_a_year(stack):
    with fresh_client(stack.base) as chief, fresh_client(stack.base) as towner:
        assert stack.login(chief).status_code == 303
        assert stack.login(towner, "towner").status_code == 303
        version = _map_version(chief)
        # Every process computes the same version (no per-process state in it).
        assert {_map_version(chief) for _ in range(6)} == {version}
        town_version = _map_version(towner)
        assert town_version != version  # the area is part of the version
        for level in ("grids", "villages", "towns"):
            url = f"/api/v1/{level}.geojson?v={version}"
            response = chief.get(url, headers={"Accept-Encoding": "gzip"})
            assert response.status_code == 200
            assert response.headers["cache-control"] == "private, max-age=31536000, immutable"
            assert response.headers["etag"] == f'"{version}"'
            assert response.headers["vary"] == "Cookie"
            assert response.headers["content-encoding"] == "gzip"
            assert response.json()["features"]
        grids = chief.get(f"/api/v1/grids.geojson?v={version}").json()["features"]
        town = towner.get(f"/api/v1/grids.geojson?v={town_version}").json()["features"]
        assert 0 < len(town) < len(grids) == 607
        # Another URL (an old version, or none) gets the current answer but must revalidate.
        for url in ("/api/v1/grids.geojson", "/api/v1/grids.geojson?v=0ld"):
            response = chief.get(url)
            assert response.headers["cache-control"] == "private, no-cache"
            assert response.headers["etag"] == f'"{version}"'
        again = chief.get(
            f"/api/v1/grids.geojson?v={version}", headers={"If-None-Match": f'"{version}"'}
        )
        assert again.status_code == 304
    assert httpx.get(f"{stack.base}/api/v1/grids.geojson?v={version}").status_code == 401


def _seeded_sources(database_url: str, redis_url: str, district: str, var_dir: Path) -> Sources:
    """The web's data sources on the session's seeded database (dispose of the engine)."""
    from dashboard.settings import Settings
    from dashboard.sources import build_sources

    settings = Settings(
        database_url=database_url, redis_url=redis_url, district_code=district, var_dir=var_dir
    )
    return build_sources(settings)


def test_the_district_map_layers_are_built_before_anyone_asks(
    seeded_url, embedded_redis_url, test_district, tmp_path, monkeypatch
):
    """The warmer's first step builds the district's three layers, so the first walls after a
    restart get them from memory: here a request after it never builds one."""
    from fastapi import FastAPI, Request

    from dashboard import web
    from datasources.identity import CURRENT_USER, SessionUser

    sources = _seeded_sources(seeded_url, embedded_redis_url, test_district, tmp_path)
    server = FastAPI()
    prepare = web.add_routes(server, sources)
    prepare()

    def built_at_request_time(*_args, **_kwargs):
        raise AssertionError("a district layer was built at request time")

    monkeypatch.setattr(web, "geojson_bytes", built_at_request_time)
    chief = SessionUser("chief", "chief", "district", None, "district", "s")

    @server.middleware("http")
    async def as_chief(request: Request, call_next):  # what AuthMiddleware does
        CURRENT_USER.set(chief)
        return await call_next(request)

    async def fetch() -> dict[str, int]:
        transport = httpx.ASGITransport(app=server)
        async with httpx.AsyncClient(transport=transport, base_url="http://wushi") as client:
            return {
                level: len((await client.get(f"/api/v1/{level}.geojson")).json()["features"])
                for level in ("grids", "villages", "towns")
            }

    counts = asyncio.run(fetch())
    sources.engine.dispose()
    assert counts["grids"] == 607 and 0 < counts["towns"] < counts["villages"] < 607


def test_the_warmer_works_in_slices_and_leaves_every_view_ready(
    seeded_url, embedded_redis_url, test_district, tmp_path
):
    """``warm_figures`` rests after each figure (``pace``), not after a whole pass: the web's
    requests run between the slices. What it prepared is then served without a query."""
    from callbacks import common
    from callbacks.panels import _chart_callbacks, warm_figures
    from dashboard import web
    from datasources.periods import local_day

    sources = _seeded_sources(seeded_url, embedded_redis_url, test_district, tmp_path)
    slices: list[float] = []
    try:
        charts_done = warm_figures(sources, pace=slices.append)
        towns = [code for code in sources.names().zh if len(code) == 9]
        areas = 1 + len(towns)
        assert charts_done == areas * len(_chart_callbacks())
        # One slice per value: the map's values, then per area its tiles, its children, charts.
        assert len(slices) == 1 + areas * (2 + len(_chart_callbacks()))
        assert all(0 <= s < 5 for s in slices)
        period = common.default_period(local_day(sources.now()))
        for code in [None, *towns]:
            area = sources.area(code, None, None)
            for chart_id in _chart_callbacks():
                key = (chart_id, area.code, period, "zh", False)

                def not_prepared(key: tuple = key) -> None:
                    raise AssertionError(f"{key} was not prepared")

                assert sources.figure(key, not_prepared)["data"] is not None
    finally:
        sources.engine.dispose()
    # The web's pace: three times the slice's time, at most half a second.
    started = time.perf_counter()
    web.warm_pace(0.01)
    assert 0.03 <= time.perf_counter() - started < 0.3
