"""``/metrics`` over real HTTP: who may read it, and the counters move with real work.

One stack for the module: ``wushi web --workers 2`` (so the web's figures are the sum of two
processes, through prometheus_client's multiprocess directory) and ``wushi worker`` with its
metrics port, on a seeded database and a real Redis.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from eventfactory import Factory
from redis import Redis
from servestack import (
    METRICS_TOKEN,
    USERNAME,
    LiveSocket,
    ServeStack,
    fresh_client,
    redis_for,
    render_page_request,
    seeded_database,
    value,
)

from datasources.db import make_engine


@pytest.fixture(scope="module")
def stack(seeded_templates, test_district, tmp_path_factory) -> Iterator[ServeStack]:
    root = tmp_path_factory.mktemp("metrics")
    # SQLite here (test_serving.py runs the same processes on PostgreSQL).
    with (
        seeded_database(seeded_templates, root, postgres=False) as (_, db_url),
        redis_for(test_district, root) as redis_url,
    ):
        stack = ServeStack(db_url, redis_url, root, district=test_district, workers=2)
        try:
            stack.start_web()
            stack.start_worker()
            yield stack
        finally:
            stack.stop()


@pytest.fixture(scope="module")
def factory(stack: ServeStack) -> Factory:
    engine = make_engine(stack.database_url)
    try:
        return Factory.from_engine(engine, stack.district)
    finally:
        engine.dispose()


def _wait(condition: Any, timeout: float = 30.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.3)
    raise AssertionError(f"{what} not met within {timeout} s")


def test_metrics_need_the_token_on_the_web_and_the_worker(stack):
    for url in (f"{stack.base}/metrics", f"http://127.0.0.1:{stack.worker_metrics_port}/metrics"):
        anonymous = httpx.get(url, timeout=30)
        assert anonymous.status_code == 401, url
        assert anonymous.headers["www-authenticate"] == "Bearer"
        wrong = httpx.get(url, headers={"Authorization": "Bearer nope"}, timeout=30)
        assert wrong.status_code == 401
        # A session cookie is no substitute for the token.
        good = httpx.get(url, headers={"Authorization": f"Bearer {METRICS_TOKEN}"}, timeout=30)
        assert good.status_code == 200
        assert good.headers["content-type"].startswith("text/plain; version=0.0.4")
        assert good.headers["cache-control"] == "no-store"
        body = good.text
        # Nothing personal: no user names, no phone numbers.
        assert USERNAME not in body
        assert not re.search(r"(?<!\d)1[3-9]\d{9}(?!\d)", body)


def test_both_web_processes_are_listed(stack):
    assert len(stack.web_pids()) == 2


def test_ingested_and_dead_lettered_events_move_the_worker_counters(stack, factory):
    before = stack.worker_metrics()
    events = [factory.call(), factory.call(), factory.heartbeat()]
    assert stack.ingest(events).status_code == 202
    # Two entries the ingest API would refuse, put straight into the stream as a buggy
    # producer would: an unknown grid (a call.key) and an entry that is not JSON at all.
    unknown_grid = factory.call() | {"grid": stack.district + "999999999"}
    with Redis.from_url(stack.redis_url) as redis:
        key = f"wushi:{{{stack.district}}}:events"
        redis.xadd(key, {"event": json.dumps(unknown_grid)})
        redis.xadd(key, {"event": "{not json"})

    def moved() -> Any:
        now = stack.worker_metrics()
        delta = {
            kind: value(now, "wushi_events_ingested_total", kind=kind)
            - value(before, "wushi_events_ingested_total", kind=kind)
            for kind in ("call.key", "device.heartbeat")
        }
        dead = {
            kind: value(now, "wushi_events_dead_lettered_total", kind=kind)
            - value(before, "wushi_events_dead_lettered_total", kind=kind)
            for kind in ("call.key", "invalid")
        }
        done = delta == {"call.key": 2, "device.heartbeat": 1} and dead == {
            "call.key": 1,
            "invalid": 1,
        }
        return now if done else None

    after = _wait(moved, what="the worker's counters")
    assert value(after, "wushi_worker_batch_duration_seconds_count") > value(
        before, "wushi_worker_batch_duration_seconds_count"
    )
    assert (
        value(after, "wushi_worker_entries_total") - value(before, "wushi_worker_entries_total")
        >= len(events) + 2
    )
    # The scheduler runs its 5-second jobs in the worker.
    _wait(
        lambda: value(stack.worker_metrics(), "wushi_scheduler_job_runs_total", job="calls") > 0,
        what="a scheduler run",
    )
    assert value(stack.worker_metrics(), "wushi_scheduler_job_failures_total", job="calls") == 0

    # The web reads the stream's figures from Redis: all delivered and acknowledged.
    def drained() -> Any:
        web = stack.web_metrics()
        ok = (
            value(web, "wushi_stream_pending", group="workers") == 0
            and value(web, "wushi_stream_lag_seconds", group="workers") == 0
        )
        return web if ok else None

    web = _wait(drained, what="an empty backlog")
    assert value(web, "wushi_stream_up") == 1
    assert value(web, "wushi_stream_length") >= len(events) + 2
    assert value(web, "wushi_deadletter_length") >= 2
    if ("wushi_stream_lag", (("group", "workers"),)) in web:  # Redis 7 or later
        assert value(web, "wushi_stream_lag", group="workers") == 0


def test_a_callback_moves_the_callback_histogram_summed_over_processes(stack):
    name = "wushi_callback_duration_seconds_count"
    labels = {"callback": "router.render_page", "transport": "http"}
    before = value(stack.web_metrics(), name, **labels)
    with fresh_client(stack.base) as client:
        assert stack.login(client).status_code == 303
        for _ in range(4):
            response = client.post("/_dash-update-component", json=render_page_request())
            assert response.status_code == 200
    after = stack.web_metrics()
    # Four runs, wherever they ran: every process's count is in any process's answer.
    assert value(after, name, **labels) - before == 4
    requests = value(
        after,
        "wushi_http_request_duration_seconds_count",
        handler="_dash-update-component",
        method="POST",
        status="200",
    )
    assert requests >= 4


def test_an_open_live_page_is_a_live_client(stack, factory):
    with fresh_client(stack.base) as client:
        assert stack.login(client).status_code == 303
        cookie = client.cookies["wushi_session"]
    assert value(stack.web_metrics(), "wushi_live_clients") == 0
    with LiveSocket(stack.base, cookie) as socket:
        event = factory.call()
        assert stack.ingest([event]).status_code == 202
        socket.wait_for(event["id"])
        assert value(stack.web_metrics(), "wushi_live_clients") == 1
    _wait(
        lambda: value(stack.web_metrics(), "wushi_live_clients") == 0,
        what="the live client to be gone",
    )


def test_without_a_token_only_direct_loopback_clients_may_read(tmp_path):
    """The rule of an unset WUSHI_METRICS_TOKEN, over real HTTP on the worker's endpoint."""
    from browser import free_port

    from dashboard.metrics import allowed, start_worker_metrics_server
    from dashboard.settings import Settings

    settings = Settings(var_dir=tmp_path, worker_metrics_port=free_port())
    assert allowed(settings, {}, "127.0.0.1") == 200
    assert allowed(settings, {}, "::1") == 200
    assert allowed(settings, {}, "10.1.2.3") == 403
    assert allowed(settings, {"x-forwarded-for": "10.1.2.3"}, "127.0.0.1") == 403
    assert allowed(settings, {"x-real-ip": "10.1.2.3"}, "127.0.0.1") == 403
    server = start_worker_metrics_server(settings)
    assert server is not None
    try:
        url = f"http://127.0.0.1:{settings.worker_metrics_port}"
        assert httpx.get(f"{url}/metrics").status_code == 200
        proxied = httpx.get(f"{url}/metrics", headers={"X-Forwarded-For": "10.1.2.3"})
        assert proxied.status_code == 403
        assert httpx.get(f"{url}/other").status_code == 404
        # A second worker on the same port runs on without metrics instead of failing.
        assert start_worker_metrics_server(settings) is None
    finally:
        server.shutdown()
        server.server_close()
