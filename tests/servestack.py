"""A production-like stack for the serving, metrics and logging tests.

``ServeStack`` runs ``wushi web --workers N`` and ``wushi worker`` (with its metrics port) as
subprocesses, with JSON logs at INFO, against a copy of the seeded database (PostgreSQL where
reachable) and a real Redis (the system one where reachable, else an embedded one). Nothing is
stubbed; the helpers talk HTTP and WebSocket to it like a browser, a producer and Prometheus.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from browser import LiveStack, free_port, wait_http
from conftest import postgres_admin_url, system_redis_url
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from datasources.db import make_engine
from datasources.users import add_user

PASSWORD = "serving-test-pw-1"
USERNAME = "chief"
METRICS_TOKEN = "metrics-token-for-tests-0123456789abcdef"
INGEST_TOKEN = "ingest-token-for-tests-0123456789abcdef"
SECRET_KEY = "secret-key-for-tests-0123456789abcdef"


@contextmanager
def seeded_database(
    templates: dict[str, str], root: Path, postgres: bool = True
) -> Iterator[tuple[str, str]]:
    """Yield (kind, URL) of a fresh copy of the seeded demo database with a district login."""
    admin_url = postgres_admin_url() if postgres else None
    if admin_url is not None and "postgresql" in templates:
        name = f"wushi_t_{uuid.uuid4().hex[:12]}"
        admin = make_engine(admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{templates["postgresql"]}"'))
        url = f"{admin_url.rpartition('/')[0]}/{name}"
        _add_login(url)
        try:
            yield "postgresql", url
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()
        return
    target = root / "wushi.db"
    shutil.copyfile(templates["sqlite"], target)
    url = f"sqlite:///{target}"
    _add_login(url)
    yield "sqlite", url


def _add_login(url: str) -> None:
    engine = make_engine(url)
    add_user(engine, USERNAME, PASSWORD, "district", None, display_name="区指挥中心")
    engine.dispose()


@contextmanager
def redis_for(district: str, root: Path) -> Iterator[str]:
    """Yield a Redis URL (the system Redis, else an embedded one); the district's keys go after."""
    from redis import Redis

    from dashboard.embedded_redis import EmbeddedRedis

    url = system_redis_url()
    if url is None:
        with EmbeddedRedis(root / "redis") as server:
            yield server.url
        return
    try:
        yield url
    finally:
        with Redis.from_url(url) as client:
            names = list(client.scan_iter(match=f"wushi:{{{district}}}:*", count=1000))
            for start in range(0, len(names), 500):
                client.delete(*names[start : start + 500])


@dataclass
class ServeStack(LiveStack):
    """``wushi web --workers N`` and ``wushi worker`` with JSON logs and metrics."""

    district: str = "341504"
    workers: int = 1
    worker_metrics_port: int = field(default_factory=free_port)

    @property
    def env(self) -> dict[str, str]:
        env = super().env | {
            "WUSHI_DISTRICT_CODE": self.district,
            "WUSHI_LOG_LEVEL": "INFO",
            "WUSHI_LOG_FORMAT": "json",
            "WUSHI_SECRET_KEY": SECRET_KEY,
            "WUSHI_INGEST_TOKEN": INGEST_TOKEN,
            "WUSHI_METRICS_TOKEN": METRICS_TOKEN,
            "WUSHI_WORKER_METRICS_PORT": str(self.worker_metrics_port),
            "WUSHI_WORKER_CONSUMER": f"test-{self.port}",
        }
        env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        return env

    def start_web(self) -> None:
        command = [sys.executable, "-m", "dashboard.cli", "web", "--workers", str(self.workers)]
        self._spawn(command, "web.log")
        wait_http(f"{self.base}/healthz", timeout=180)
        deadline = time.monotonic() + 120
        while len(self.web_pids()) < self.workers:
            assert time.monotonic() < deadline, "not every web process came up"
            time.sleep(0.5)

    def start_worker(self) -> None:
        super().start_worker()
        deadline = time.monotonic() + 120
        while True:
            try:
                self.worker_metrics()
                return
            except OSError:
                assert time.monotonic() < deadline, "the worker's metrics port did not open"
                time.sleep(0.5)

    # --- reading what the processes say ------------------------------------------------------

    def log_lines(self, name: str = "web.log") -> list[dict[str, Any]]:
        """Return the JSON log lines of a process (other lines are left out)."""
        lines = (self.var_dir / name).read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")]

    def raw_log(self, name: str = "web.log") -> str:
        return (self.var_dir / name).read_text(encoding="utf-8")

    def requests(self, **match: Any) -> list[dict[str, Any]]:
        """Return the request lines of the web log whose fields equal ``match``."""
        return [
            line
            for line in self.log_lines()
            if line.get("event") == "request" and all(line.get(k) == v for k, v in match.items())
        ]

    def wait_requests(
        self, timeout: float = 10.0, at_least: int = 1, **match: Any
    ) -> list[dict[str, Any]]:
        """Return the matching request lines once there are ``at_least`` (a line is written
        just after its response is sent, so it may trail the client a little)."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.requests(**match)
            if len(found) >= at_least or time.monotonic() > deadline:
                return found
            time.sleep(0.1)

    def wait_pids(self, n: int, timeout: float = 10.0, **match: Any) -> set[int]:
        """Return the process ids that answered the matching requests, waiting for ``n``."""
        deadline = time.monotonic() + timeout
        while True:
            pids = {line["pid"] for line in self.requests(**match)}
            if len(pids) >= n or time.monotonic() > deadline:
                return pids
            time.sleep(0.1)

    def web_metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        response = httpx.get(
            f"{self.base}/metrics",
            headers={"Authorization": f"Bearer {METRICS_TOKEN}"},
            timeout=30,
        )
        assert response.status_code == 200, response.text
        return parse_metrics(response.text)

    def worker_metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.worker_metrics_port}/metrics",
            headers={"Authorization": f"Bearer {METRICS_TOKEN}"},
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            return parse_metrics(response.read().decode())

    def web_pids(self) -> set[str]:
        """Return the process ids of the live web processes, as /metrics lists them."""
        try:
            samples = self.web_metrics()
        except (httpx.HTTPError, AssertionError):
            return set()
        return {
            dict(labels).get("pid", "single")
            for (name, labels) in samples
            if name == "wushi_web_process_start_time_seconds"
        }

    # --- talking to it -------------------------------------------------------------------------

    def login(self, client: httpx.Client, username: str = USERNAME, password: str = PASSWORD):
        return client.post("/login", data={"username": username, "password": password, "next": "/"})

    def ingest(self, events: list[dict[str, Any]]) -> httpx.Response:
        return httpx.post(
            f"{self.base}/api/v1/events",
            json=events,
            headers={"Authorization": f"Bearer {INGEST_TOKEN}"},
            timeout=30,
        )


def parse_metrics(body: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Return {(sample name, sorted labels): value} of a Prometheus text exposition."""
    out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def value(samples: dict[Any, float], name: str, **labels: str) -> float:
    """Return one sample's value (0 when the series does not exist yet)."""
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def fresh_client(base: str, cookies: httpx.Cookies | None = None) -> httpx.Client:
    """A client that opens a new connection per request (so the kernel may pick any process)."""
    return httpx.Client(
        base_url=base,
        cookies=cookies,
        timeout=60,
        limits=httpx.Limits(max_keepalive_connections=0),
        headers={"Connection": "close"},
    )


def render_page_request(path: str = "/", search: str = "") -> dict[str, Any]:
    """The body of the router's callback, as Dash's renderer posts it on a page load."""
    return {
        "output": "page-content.children",
        "outputs": {"id": "page-content", "property": "children"},
        "inputs": [
            {"id": "url", "property": "pathname", "value": path},
            {"id": "lang-store", "property": "data", "value": "zh"},
        ],
        "state": [{"id": "url", "property": "search", "value": search}],
        "changedPropIds": ["url.pathname"],
    }


class LiveSocket:
    """Dash's live WebSocket as the renderer speaks it: start the persistent push, answer it."""

    def __init__(self, base: str, cookie: str) -> None:
        from websockets.sync.client import connect

        host = base.removeprefix("http://")
        deps = httpx.get(f"{base}/_dash-dependencies", cookies={"wushi_session": cookie}).json()
        (persistent,) = [d["output"] for d in deps if d.get("persistent")]
        self._connection = connect(
            f"ws://{host}/_dash-ws-callback",
            additional_headers={"Cookie": f"wushi_session={cookie}", "Origin": base},
            open_timeout=30,
        )
        self.ws = self._connection.__enter__()
        self.ws.send(
            json.dumps(
                {
                    "type": "callback_request",
                    "requestId": "live-1",
                    "rendererId": "test-renderer",
                    "payload": {
                        "output": persistent,
                        "outputs": [],
                        "inputs": [],
                        "state": [],
                        "changedPropIds": [],
                    },
                }
            )
        )

    def wait_for(self, needle: str, timeout: float = 20.0) -> dict[str, Any]:
        """Answer the callback's questions until a pushed update contains ``needle``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                raw = self.ws.recv(timeout=0.5)
            except TimeoutError:
                continue
            batch = json.loads(raw)
            for message in batch if isinstance(batch, list) else [batch]:
                if isinstance(message, str):
                    message = json.loads(message)
                if message.get("type") == "get_props_request":
                    payload = message["payload"]
                    prop = payload["properties"][0]
                    answer = {} if payload["componentId"] == "filters-store" else "zh"
                    self.ws.send(
                        json.dumps(
                            {
                                "type": "get_props_response",
                                "requestId": message["requestId"],
                                "payload": {prop: answer},
                            }
                        )
                    )
                elif message.get("type") == "set_props" and needle in json.dumps(
                    message, ensure_ascii=False
                ):
                    return message
        raise TimeoutError(f"no pushed update with {needle!r} in {timeout} s")

    def close(self) -> None:
        self._connection.__exit__(None, None, None)

    def __enter__(self) -> LiveSocket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
