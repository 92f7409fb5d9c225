"""Structured logs: JSON lines that parse, one per request and per batch, and no secrets.

A real ``wushi web`` and ``wushi worker`` (``WUSHI_LOG_FORMAT=json``) see a login, a failed
login, a kiosk-style URL, events carrying a phone number and a CSV export; afterwards every
line of both logs must parse as JSON and none may hold a password, a cookie, a token or a phone
number.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from collections.abc import Iterator

import httpx
import pytest
from eventfactory import Factory
from servestack import (
    INGEST_TOKEN,
    METRICS_TOKEN,
    PASSWORD,
    SECRET_KEY,
    USERNAME,
    ServeStack,
    fresh_client,
    redis_for,
    seeded_database,
)

from dashboard.logs import JsonFormatter, TextFormatter, log_path, scrub
from datasources.db import make_engine

PHONE = re.compile(r"(?<!\d)1[3-9]\d{9}(?!\d)")
KIOSK_TOKEN = "kT9vQ2mZx7LwP4rN8sB1cD6fG3hJ5yU0eA"
A_PHONE = "13912345678"


@pytest.fixture(scope="module")
def stack(seeded_templates, test_district, tmp_path_factory) -> Iterator[ServeStack]:
    root = tmp_path_factory.mktemp("logging")
    with (
        seeded_database(seeded_templates, root, postgres=False) as (_, db_url),
        redis_for(test_district, root) as redis_url,
    ):
        stack = ServeStack(db_url, redis_url, root, district=test_district, workers=1)
        try:
            stack.start_web()
            stack.start_worker()
            yield stack
        finally:
            stack.stop()


def _export_request() -> dict:
    button = {"type": "export-csv", "table": "table-tickets"}
    return {
        "output": "download.data",
        "outputs": {"id": "download", "property": "data"},
        "inputs": [
            [{"id": button, "property": "n_clicks", "value": 1}],
            [],
        ],
        "state": [
            {"id": "filters-store", "property": "data", "value": {}},
            {"id": "lang-store", "property": "data", "value": "zh"},
            [],  # when the page's tables were counted: none here, so the ages of now
        ],
        "changedPropIds": [json.dumps(button, sort_keys=True, separators=(",", ":")) + ".n_clicks"],
    }


def test_json_lines_parse_and_hold_no_secrets(stack):
    engine = make_engine(stack.database_url)
    factory = Factory.from_engine(engine, stack.district)
    engine.dispose()
    with fresh_client(stack.base) as client:
        # A failed login whose wrong password is a phone number, then the real one.
        assert stack.login(client, USERNAME, A_PHONE).status_code == 401
        assert stack.login(client).status_code == 303
        cookie = client.cookies["wushi_session"]
        page = client.get(f"/wall?kiosk={KIOSK_TOKEN}&town=1", headers={"Accept": "text/html"})
        assert page.status_code < 500
        ticket = factory.ticket(title=f"请回电 {A_PHONE}")
        assert stack.ingest([ticket, factory.call()]).status_code == 202
        export = client.post("/_dash-update-component", json=_export_request())
        assert export.status_code == 200, export.text
        assert "wushi-table-tickets" in export.text
    httpx.get(f"{stack.base}/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})

    deadline = time.monotonic() + 30
    while not [
        line
        for line in stack.log_lines("worker.log")
        if line.get("event") == "batch" and line["kinds"].get("ticket.created")
    ]:
        assert time.monotonic() < deadline, "the worker logged no batch with the ticket"
        time.sleep(0.3)

    for name in ("web.log", "worker.log"):
        raw = stack.raw_log(name)
        for line in raw.splitlines():
            if line.startswith("serving http://"):
                continue  # the command's banner on stdout
            record = json.loads(line)  # every log line is one JSON object
            assert {"ts", "level", "logger", "pid", "msg"} <= record.keys(), line
        for secret in (PASSWORD, cookie, INGEST_TOKEN, METRICS_TOKEN, SECRET_KEY, KIOSK_TOKEN):
            assert secret not in raw, (name, secret[:6])
        assert not PHONE.search(raw), name
        assert "kiosk=" not in raw

    # One line per request: method, path without the query, status, duration, user name.
    export_line = stack.wait_requests(
        path="/_dash-update-component", callback="tables.export_table"
    )
    assert export_line and export_line[-1]["user"] == USERNAME
    assert export_line[-1]["status"] == 200 and export_line[-1]["ms"] > 0
    assert stack.requests(path="/login", method="POST", status=401)
    assert stack.requests(path="/wall")
    assert stack.requests(path="/api/v1/events", status=202)
    # One line per worker batch: counts, kinds, duration, dead letters.
    batch = next(
        line
        for line in stack.log_lines("worker.log")
        if line.get("event") == "batch" and line["kinds"].get("ticket.created")
    )
    assert {"entries", "new", "kinds", "dead_lettered", "ms"} <= batch.keys()


def test_scrub_masks_phones_and_secrets():
    assert scrub("call 13812345678 now") == "call 138****5678 now"
    assert scrub("id 1381234567890") == "id 1381234567890"  # not a phone number
    assert "abc.def" not in scrub("Authorization: Bearer abc.def")
    assert "s3cr3t" not in scrub("Cookie: wushi_session=s3cr3t; other=1")
    assert "hunter22" not in scrub('{"password": "hunter22"}')
    assert "t0k" not in scrub("GET /wall?kiosk=t0k&town=1")
    assert log_path("/kiosk/" + KIOSK_TOKEN) == "/kiosk/[redacted]"
    assert log_path("/_dash-component-suites/dash/dcc/dash_core_components.v3_0_0m1.js") == (
        "/_dash-component-suites/dash/dcc/dash_core_components.v3_0_0m1.js"
    )


def test_formatters_keep_extra_fields_and_tracebacks():
    logger = logging.getLogger("wushi.test")
    try:
        raise ValueError(f"bad {A_PHONE}")
    except ValueError:
        record = logger.makeRecord(
            "wushi.test",
            logging.ERROR,
            __file__,
            1,
            "batch %d",
            (3,),
            sys.exc_info(),
            extra={"kinds": {"call.key": 3}, "ms": 1.5},
        )
    line = json.loads(JsonFormatter().format(record))
    assert line["msg"] == "batch 3" and line["kinds"] == {"call.key": 3} and line["ms"] == 1.5
    assert line["level"] == "ERROR" and "ValueError" in line["exc"]
    assert A_PHONE not in line["exc"]
    text = TextFormatter().format(record)
    assert "batch 3" in text and A_PHONE not in text
