"""Prometheus metrics of the web and worker processes (``GET /metrics``, docs/deploy.md).

Web processes: HTTP request and Dash callback latency, open live sockets, and, read from Redis
at scrape time, the stream's length, lag and pending count. Under ``wushi web --workers N`` the
processes share prometheus_client's multiprocess directory (``PROMETHEUS_MULTIPROC_DIR``, set by
``wushi web`` before the workers start), so one scrape of any process returns the sum of all.

The worker process (``wushi worker``): events stored and dead-lettered per kind, batch latency,
back-offs, and the scheduler's job runs and failures, served on its own small HTTP port
(``WUSHI_WORKER_METRICS_PORT``) because it is a separate process, maybe on another host.

Metric objects are made on first use by the process that owns them (``web()``, ``worker()``):
in multiprocess mode a metric made in the wrong process would show up there as zeros.

Who may read: with ``WUSHI_METRICS_TOKEN`` set, requests with ``Authorization: Bearer
<token>``; without it, only direct loopback clients (no proxy headers). No label carries a user,
an area, a phone number or any other personal data: kinds, job names, callback names, statuses.
"""

from __future__ import annotations

import functools
import glob
import hmac
import inspect
import ipaddress
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from dash.exceptions import PreventUpdate
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from redis.exceptions import ResponseError

from dashboard.request_info import REQUEST_INFO
from dashboard.settings import Settings

# No ``*_created`` series: Prometheus does not need them and they double the output.
disable_created_metrics()

log = logging.getLogger("wushi.metrics")

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
PROXY_HEADERS = ("x-forwarded-for", "forwarded", "x-real-ip")
# The classic text format every Prometheus reads (prometheus_client's "latest" is 1.0.0).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def multiprocess_dir() -> str | None:
    """Return the shared metrics directory of this process, or None in single-process mode."""
    return os.environ.get(MULTIPROC_ENV) or None


# --- The web's metrics -----------------------------------------------------------------------


class WebMetrics:
    """What a web process measures."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.http_seconds = Histogram(
            "wushi_http_request_duration_seconds",
            "HTTP requests by handler group, method and status, and how long they took.",
            ["handler", "method", "status"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.callback_seconds = Histogram(
            "wushi_callback_duration_seconds",
            "Dash callback run time by callback and transport (http or ws).",
            ["callback", "transport"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.callback_errors = Counter(
            "wushi_callback_errors_total",
            "Dash callbacks that raised an exception (PreventUpdate is not one).",
            ["callback"],
            registry=registry,
        )
        self.live_clients = Gauge(
            "wushi_live_clients",
            "Open Dash WebSockets (pages receiving live pushes), summed over the web processes.",
            multiprocess_mode="livesum",
            registry=registry,
        )
        self.process_start = Gauge(
            "wushi_web_process_start_time_seconds",
            "Start time of each live web process (one series per process id).",
            multiprocess_mode="liveall",
            registry=registry,
        )
        self.process_start.set(time.time())


_WEB_REGISTRY = CollectorRegistry(auto_describe=True)
_WORKER_REGISTRY = CollectorRegistry(auto_describe=True)


@functools.cache
def web() -> WebMetrics:
    """Return this process's web metrics (made on first use)."""
    return WebMetrics(_WEB_REGISTRY)


# --- The worker's metrics --------------------------------------------------------------------


class WorkerMetrics:
    """What the worker process (and its scheduler) measures."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.ingested = Counter(
            "wushi_events_ingested_total",
            "Events stored in the database for the first time, by kind.",
            ["kind"],
            registry=registry,
        )
        self.dead_lettered = Counter(
            "wushi_events_dead_lettered_total",
            "Stream entries moved to the dead-letter stream, by kind ('invalid' when unreadable).",
            ["kind"],
            registry=registry,
        )
        self.entries = Counter(
            "wushi_worker_entries_total",
            "Stream entries processed (stored, duplicates, dead-lettered and parked retries).",
            registry=registry,
        )
        self.batch_seconds = Histogram(
            "wushi_worker_batch_duration_seconds",
            "Time to validate, store, apply and acknowledge one batch of stream entries.",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.backoffs = Counter(
            "wushi_worker_backoffs_total",
            "Times the worker backed off after the database or Redis failed.",
            registry=registry,
        )
        self.job_runs = Counter(
            "wushi_scheduler_job_runs_total",
            "Scheduler jobs run by this worker (it held the job's lock), by job.",
            ["job"],
            registry=registry,
        )
        self.job_failures = Counter(
            "wushi_scheduler_job_failures_total",
            "Scheduler job runs that raised an exception, by job.",
            ["job"],
            registry=registry,
        )
        self.job_skipped = Counter(
            "wushi_scheduler_job_skipped_total",
            "Scheduler job runs skipped because another worker held the job's lock, by job.",
            ["job"],
            registry=registry,
        )
        self.job_last_success = Gauge(
            "wushi_scheduler_job_last_success_timestamp_seconds",
            "When each job last finished without an error (Unix time).",
            ["job"],
            registry=registry,
        )


@functools.cache
def worker() -> WorkerMetrics:
    """Return this process's worker metrics (made on first use)."""
    return WorkerMetrics(_WORKER_REGISTRY)


# --- The stream, read from Redis at scrape time ------------------------------------------------


def _id_ms(entry_id: Any) -> int | None:
    text = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id or "")
    head = text.partition("-")[0]
    return int(head) if head.isdigit() else None


class StreamCollector:
    """The event stream's length, the group's lag and pending count, the dead-letter length."""

    def __init__(self, redis: Callable[[], Any], settings: Settings) -> None:
        self._redis = redis
        self._events = settings.stream_key()
        self._dead = settings.stream_key("deadletter")

    def describe(self) -> list[Any]:
        return []  # collected only when asked: never read Redis at registration

    def collect(self) -> Any:
        up = GaugeMetricFamily("wushi_stream_up", "1 when Redis answered this scrape, else 0.")
        try:
            families = self._read()
        except Exception as exc:  # a scrape must never fail because Redis is down
            log.warning("metrics: cannot read the stream (%s)", type(exc).__name__)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def _read(self) -> list[Any]:
        r = self._redis()
        pipe = r.pipeline(transaction=False)
        pipe.xlen(self._events)
        pipe.xlen(self._dead)
        length, dead = pipe.execute()
        try:
            groups = r.xinfo_groups(self._events)
            last_generated = r.xinfo_stream(self._events).get("last-generated-id")
        except ResponseError:  # no stream yet
            groups, last_generated = [], None
        stream = GaugeMetricFamily("wushi_stream_length", "Entries in the event stream (XLEN).")
        stream.add_metric([], length)
        deadletter = GaugeMetricFamily(
            "wushi_deadletter_length", "Entries in the dead-letter stream (XLEN)."
        )
        deadletter.add_metric([], dead)
        pending = GaugeMetricFamily(
            "wushi_stream_pending",
            "Entries delivered to a worker but not yet acknowledged, by consumer group.",
            labels=["group"],
        )
        lag = GaugeMetricFamily(
            "wushi_stream_lag",
            "Entries not yet delivered to the consumer group (needs Redis 7 or later).",
            labels=["group"],
        )
        lag_s = GaugeMetricFamily(
            "wushi_stream_lag_seconds",
            "Age gap between the newest entry and the newest one delivered to the group.",
            labels=["group"],
        )
        newest = _id_ms(last_generated)
        for group in groups:
            name = group["name"].decode() if isinstance(group["name"], bytes) else group["name"]
            pending.add_metric([name], group.get("pending") or 0)
            if group.get("lag") is not None:
                lag.add_metric([name], group["lag"])
            delivered = _id_ms(group.get("last-delivered-id"))
            if newest is not None and delivered is not None:
                lag_s.add_metric([name], max(0, newest - delivered) / 1000)
        return [stream, deadletter, pending, lag, lag_s]


# --- Rendering and access ------------------------------------------------------------------


def _forget_dead_processes(path: str) -> None:
    """Drop the live gauges of web processes that died (uvicorn restarts crashed workers)."""
    pids = set()
    for name in glob.glob(os.path.join(path, "gauge_live*_*.db")):
        match = re.search(r"_(\d+)\.db$", name)
        if match:
            pids.add(int(match.group(1)))
    for pid in pids:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            multiprocess.mark_process_dead(pid, path)
        except PermissionError:
            pass


def render_web(extra: CollectorRegistry | None = None) -> bytes:
    """Return the web's metrics in the text format: every web process's, plus ``extra``."""
    web()  # make sure this process's own series exist
    path = multiprocess_dir()
    if path:
        _forget_dead_processes(path)
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path)
        body = generate_latest(registry)
    else:
        body = generate_latest(_WEB_REGISTRY)
    return body + (generate_latest(extra) if extra is not None else b"")


def render_worker() -> bytes:
    """Return the worker's metrics in the text format."""
    worker()
    return generate_latest(_WORKER_REGISTRY)


def _loopback(address: str | None) -> bool:
    try:
        return address is not None and ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


def allowed(settings: Settings, headers: Mapping[str, str], peer: str | None) -> int:
    """Return 200 if this request may read the metrics, else the status to answer (401/403).

    ``headers`` must be case-insensitive or lower-cased.
    """
    token = settings.metrics_token
    if token:
        given = headers.get("authorization", "")
        scheme, _, credential = given.partition(" ")
        ok = scheme.lower() == "bearer" and hmac.compare_digest(
            credential.strip().encode(), token.encode()
        )
        return 200 if ok else 401
    if _loopback(peer) and not any(headers.get(h) for h in PROXY_HEADERS):
        return 200
    return 403


REFUSED = {
    401: b'{"error": "metrics: bearer token required"}',
    403: b'{"error": "metrics: loopback only (set WUSHI_METRICS_TOKEN for remote scrapes)"}',
}


# --- Dash callbacks ------------------------------------------------------------------------


def callback_name(func: Callable[..., Any]) -> str:
    """Return ``module.function`` of a callback (``tables.export_table``)."""
    module = (getattr(func, "__module__", "") or "").rpartition(".")[2]
    name = getattr(func, "__name__", "callback")
    return f"{module}.{name}" if module else name


def instrument_callbacks(app: Any) -> int:
    """Time every Dash callback of ``app`` (HTTP and WebSocket); return how many were wrapped.

    Both transports call ``app.callback_map[output]["callback"]``, so wrapping it there covers
    ``/_dash-update-component`` and the socket alike. Persistent callbacks (the live push) run
    for as long as the page is open; they are counted as live clients, not timed.
    """
    persistent = {c["output"] for c in getattr(app, "_callback_list", []) if c.get("persistent")}
    wrapped = 0
    for output, spec in app.callback_map.items():
        func = spec.get("callback")
        if func is None or output in persistent or getattr(func, "_wushi_timed", False):
            continue
        spec["callback"] = _timed(func, callback_name(func))
        wrapped += 1
    return wrapped


def _timed(func: Callable[..., Any], name: str) -> Callable[..., Any]:
    """Return ``func`` wrapped to record its run time under ``name`` (async stays async)."""
    metrics = web()

    def begin(kwargs: dict[str, Any]) -> str:
        info = REQUEST_INFO.get()
        if info is not None:
            info["callback"] = name  # for the request's log line
        g = kwargs.get("callback_context")
        return "ws" if isinstance(g, dict) and "dash_websocket" in g else "http"

    def end(transport: str, started: float, failed: bool) -> None:
        # Series appear when a callback first runs, not for every callback in advance.
        metrics.callback_seconds.labels(name, transport).observe(time.perf_counter() - started)
        if failed:
            metrics.callback_errors.labels(name).inc()

    timed: Any
    if inspect.iscoroutinefunction(func):

        @functools.wraps(func)
        async def timed_async(*args: Any, **kwargs: Any) -> Any:
            transport, started, failed = begin(kwargs), time.perf_counter(), False
            try:
                return await func(*args, **kwargs)
            except PreventUpdate:
                raise
            except Exception:
                failed = True
                # Dash's FastAPI backend answers 500 without logging anything.
                log.exception("callback %s failed", name)
                raise
            finally:
                end(transport, started, failed)

        timed = timed_async
    else:

        @functools.wraps(func)
        def timed_sync(*args: Any, **kwargs: Any) -> Any:
            transport, started, failed = begin(kwargs), time.perf_counter(), False
            try:
                return func(*args, **kwargs)
            except PreventUpdate:
                raise
            except Exception:
                failed = True
                # Dash's FastAPI backend answers 500 without logging anything.
                log.exception("callback %s failed", name)
                raise
            finally:
                end(transport, started, failed)

        timed = timed_sync
    timed._wushi_timed = True
    return timed


# --- The worker's endpoint ---------------------------------------------------------------


def start_worker_metrics_server(settings: Settings) -> ThreadingHTTPServer | None:
    """Serve ``GET /metrics`` of the worker on ``WUSHI_WORKER_METRICS_PORT`` (0: not at all)."""
    if not settings.worker_metrics_port:
        return None

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
            if self.path.split("?")[0] != "/metrics":
                self._answer(404, b'{"error": "not found"}', "application/json")
                return
            headers = {k.lower(): v for k, v in self.headers.items()}
            status = allowed(settings, headers, self.client_address[0])
            if status != 200:
                self._answer(status, REFUSED[status], "application/json")
                return
            self._answer(200, render_worker(), CONTENT_TYPE)

        def _answer(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            if status == 401:
                self.send_header("WWW-Authenticate", "Bearer")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            log.debug("worker metrics: " + format, *args)

    try:
        server = ThreadingHTTPServer(
            (settings.worker_metrics_host, settings.worker_metrics_port), Handler
        )
    except OSError as exc:
        # Storing events matters more than exposing their counts: run on without metrics.
        log.error(
            "worker metrics: cannot listen on %s:%d (%s); running without them",
            settings.worker_metrics_host,
            settings.worker_metrics_port,
            exc,
        )
        return None
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="wushi-metrics", daemon=True)
    thread.start()
    log.info(
        "worker metrics on http://%s:%d/metrics",
        settings.worker_metrics_host,
        server.server_address[1],
    )
    return server
