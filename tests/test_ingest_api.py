"""POST /api/v1/events served for real by uvicorn on loopback (no TestClient)."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request

import pytest
import uvicorn
from eventfactory import Factory, make_settings
from fastapi import FastAPI
from sqlalchemy import select

from dashboard.api import build_api_router
from dashboard.embedded_redis import free_port
from dashboard.worker import Worker
from datasources.events import load_registry
from datasources.live import read_feed
from datasources.models import VillageNotice
from datasources.stream import redis_client
from layouts.components import feed_item

TOKEN = "test-token-" + "x" * 30


@pytest.fixture
def api(tmp_path, seeded_engine, seeded_url, redis_url, test_district):
    """A uvicorn server on 127.0.0.1 with the ingest router; yields (base URL, redis, factory)."""
    settings = make_settings(tmp_path, test_district, seeded_url, redis_url, ingest_max_events=50)
    registry = load_registry(seeded_engine, test_district)
    app = FastAPI()
    app.include_router(
        build_api_router(settings, lambda: redis_client(redis_url), lambda: registry)
    )
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    redis = redis_client(redis_url)
    yield f"http://127.0.0.1:{port}", redis, Factory.from_engine(seeded_engine, test_district)
    server.should_exit = True
    thread.join(10)
    redis.close()


def post(url: str, body: bytes, token: str | None = TOKEN) -> tuple[int, dict]:
    request = urllib.request.Request(url + "/api/v1/events", data=body, method="POST")
    request.add_header("Content-Type", "application/json")
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, json.loads(exc.read())


def test_a_token_is_required(api):
    url, redis, f = api
    assert post(url, json.dumps(f.petition()).encode(), token=None)[0] == 401
    assert post(url, json.dumps(f.petition()).encode(), token="wrong")[0] == 401


def test_valid_events_are_accepted_into_the_stream(api):
    url, redis, f = api
    one = f.petition()
    status, body = post(url, json.dumps(one).encode())
    assert status == 202 and body == {"accepted": [one["id"]]}
    many = [f.call(), f.heartbeat(), f.ticket()]
    status, body = post(url, json.dumps(many).encode())
    assert status == 202 and body["accepted"] == [e["id"] for e in many]
    stored = [
        json.loads(fields[b"event"]) for _, fields in redis.xrange(f"wushi:{{{f.district}}}:events")
    ]
    assert [e["id"] for e in stored] == [one["id"]] + [e["id"] for e in many]


def test_invalid_events_are_rejected_with_reasons_and_the_valid_ones_kept(api):
    url, redis, f = api
    good = f.petition()
    bad = f.petition(persons=0)
    unknown = f.call()
    unknown["device"] = "D-nope"
    status, body = post(url, json.dumps([good, bad, unknown, 7]).encode())
    assert status == 422
    assert body["accepted"] == [good["id"]]
    assert body["rejected"][0] == {"index": 1, "id": bad["id"], "errors": ["persons: must be >= 1"]}
    assert body["rejected"][1]["index"] == 2
    assert body["rejected"][1]["errors"] == ["device: unknown device D-nope"]
    assert body["rejected"][2] == {
        "index": 3,
        "id": None,
        "errors": ["event: must be a JSON object"],
    }
    assert redis.xlen(f"wushi:{{{f.district}}}:events") == 1


def test_bad_bodies_are_400_and_big_ones_413(api):
    url, redis, f = api
    assert post(url, b"{not json")[0] == 400
    assert post(url, b'"a string"')[0] == 400
    assert post(url, json.dumps([f.petition() for _ in range(51)]).encode())[0] == 413


def test_a_village_notice_goes_from_the_api_to_sql_and_the_feed_in_both_languages(
    api, tmp_path, seeded_engine, seeded_url, redis_url, test_district
):
    url, redis, f = api
    settings = make_settings(tmp_path, test_district, seeded_url, redis_url)
    worker = Worker(settings, seeded_engine, redis, consumer="notice")
    worker.start()
    notice = f.notice(title="秋季防火<安全>提示")
    status, body = post(url, json.dumps(notice).encode())
    assert status == 202 and body == {"accepted": [notice["id"]]}
    while entries := worker.read_new():
        worker.process(entries)
    with seeded_engine.connect() as conn:
        row = conn.execute(
            select(VillageNotice.notice_id, VillageNotice.village_code, VillageNotice.title).where(
                VillageNotice.id == notice["id"]
            )
        ).one()
    assert tuple(row) == (notice["notice"], f.village, "秋季防火<安全>提示")
    entry = next(e for e in read_feed(redis, f.district) if e["id"] == notice["id"])
    assert entry["code"] == "notice.posted" and entry["params"] == {"title": "秋季防火<安全>提示"}
    assert entry["village"] == f.village and "text" not in entry
    names = {f.village: "孙岗村"}
    zh, en = feed_item(entry, names, "zh"), feed_item(entry, names, "en")
    assert f'data-event-id="{notice["id"]}"' in zh
    assert "孙岗村 村务公告：秋季防火&lt;安全&gt;提示" in zh
    assert "孙岗村 Village notice: 秋季防火&lt;安全&gt;提示" in en
