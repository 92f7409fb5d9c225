"""Benchmark: what a person at the screen waits for, in a real headless Chromium.

Starts the real stack the browser tests use (``tests/browser.py``: ``uvicorn`` with the app and
a ``wushi worker`` as subprocesses, on an embedded Redis) against a freshly seeded SQLite
database (``wushi seed --demo`` through the CLI, about a minute) or a copy of ``--db``, logs in
through the real form as a district user, and measures:

1. ``/wall`` load: from ``page.goto`` to 607 grid shapes, every headline tile filled and today's
   tiles present (``--runs`` fresh pages; the first one after the login only, later ones with a
   warm HTTP cache). Target: <= 2 s.
2. Event-to-screen latency while ``wushi simulate --rate R`` runs: probe ``call.key`` events
   XADDed from here every 250 ms; latency = first appearance of the probe's
   ``[data-event-id]`` in ``#live-feed`` (a MutationObserver, ``performance.timeOrigin +
   performance.now()``) minus ``time.time()`` just before the XADD. Target: p95 <= 250 ms.
3. Choosing a town in the dropdown (click ``#filter-town``, click the option; ``--town-samples``
   choices, at least 20, cycling through the 6 towns) from the option's ``pointerdown`` until
   every panel of ``/`` shows the town: the area title names it, the first tile shows
   ``datasources.kpi.kpi`` for the town and this year so far, every chart has fired
   ``plotly_afterplot`` after its answer, each table's rows and the map's grid styles have
   changed in the DOM (the end of that burst of changes). Target: p95 <= 300 ms. Per switch it
   also reports what depends little on the machine's load: callbacks, bytes of the answers,
   main-thread time in ``Plotly.react``, Dash store actions.
4. Bytes on the wire for the map layers (``/api/v1/{grids,villages,towns}.geojson``) and for the
   whole first load of ``/wall``. Target: the grid layer <= 150 KB compressed.
5. A fresh first load of ``/wall`` and of ``/``: the browser's cache is cleared first (the login
   landed on ``/`` and filled it), then every response is counted as Chromium's DevTools
   protocol reports it (``Network.loadingFinished``'s ``encodedDataLength``: headers and body
   as they crossed the wire), with its ``Content-Encoding`` and ``Cache-Control``. Targets:
   ``/wall`` drawn <= 1.0 s after navigation and <= 1 MB transferred.

    python benchmarks/ui.py [--db PATH] [--runs N] [--rate 200] [--seconds 30]
                            [--town-samples 24] [--parts wall,towns,events] [--keep]

Everything started here (web, worker, simulator, Redis, Chromium) is stopped on exit, error,
Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

WUSHI = Path(sys.executable).with_name("wushi")
USER, PASSWORD = "bench", "bench-password-1"
GRIDS = 607
TARGET_WALL_S = 2.0
TARGET_EVENT_P95_MS = 250.0
TARGET_TOWN_P95_MS = 300.0
TARGET_GRID_KB = 150.0
TARGET_FRESH_WALL_S = 1.0
TARGET_FRESH_KB = 1024.0
LAYERS = ("grids", "villages", "towns")


def log(message: str) -> None:
    """Print a progress line (stderr, flushed, with the wall-clock time)."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100) of a non-empty list."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def _raise_interrupt(signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


# --- Setup ----------------------------------------------------------------------------------


def seed_database(workdir: Path) -> str:
    """Seed a fresh SQLite database with ``wushi seed --demo`` (the real CLI) and return its URL."""
    url = f"sqlite:///{workdir / 'wushi.db'}"
    env = os.environ | {"WUSHI_DATABASE_URL": url, "WUSHI_VAR_DIR": str(workdir / "var")}
    log(f"seeding {url} with `wushi seed --demo` (about a minute) ...")
    began = time.perf_counter()
    with open(workdir / "seed.log", "wb") as out:
        proc = subprocess.run(
            [str(WUSHI), "seed", "--demo"], cwd=workdir, env=env, stdout=out, stderr=out
        )
    if proc.returncode != 0:
        raise SystemExit(f"seeding failed; see {workdir / 'seed.log'}")
    log(f"seeded in {time.perf_counter() - began:.0f} s")
    return url


def prepare_database(args: argparse.Namespace, workdir: Path) -> str:
    """Return the URL of the database to serve: a fresh seed, or a copy of ``--db``."""
    from browser import copy_sqlite
    from sqlalchemy import select

    from datasources.db import make_engine
    from datasources.models import User
    from datasources.users import add_user

    if args.db:
        source = Path(args.db).resolve()
        if not source.exists():
            raise SystemExit(f"--db {source} does not exist")
        log(f"copying {source} (the benchmark adds a user and events) ...")
        url = copy_sqlite(f"sqlite:///{source}", workdir / "wushi.db")
    else:
        url = seed_database(workdir)
    engine = make_engine(url)
    with engine.connect() as conn:
        exists = conn.scalar(select(User.id).where(User.username == USER))
    if not exists:
        add_user(engine, USER, PASSWORD, "district", None)
    engine.dispose()
    return url


def start_simulator(env: dict[str, str], rate: float, log_path: Path) -> subprocess.Popen[bytes]:
    """Start ``wushi simulate --rate RATE`` in its own session."""
    with open(log_path, "ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "dashboard.cli", "simulate", "--rate", f"{rate:g}"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    """Stop a process started in its own session (SIGTERM, then SIGKILL)."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


# --- 1 and 4: the wall's load ---------------------------------------------------------------

WALL_PROBE = """
(() => {
  if (location.pathname !== '/wall') return;
  const parts = window.__wallParts = {};
  const mark = (name, ok) => {
    if (ok && !(name in parts)) parts[name] = performance.timeOrigin + performance.now();
    return ok;
  };
  const check = () => {
    const cells = document.querySelectorAll('#grid-map path.grid-cell').length;
    const values = [...document.querySelectorAll('#kpi-tiles .tile .value span')];
    const a = mark('map', cells >= GRIDS);
    const b = mark('kpi', values.length > 0 && values.every(v => v.textContent.trim() !== ''));
    const c = mark('today', !!document.querySelector('#today-tiles .tile'));
    if (a && b && c) {
      window.__wallDrawn = performance.timeOrigin + performance.now();
      window.__wallCells = cells;
      return;
    }
    requestAnimationFrame(check);
  };
  requestAnimationFrame(check);
})();
""".replace("GRIDS", str(GRIDS))

RESOURCES_JS = """
(() => {
  const nav = performance.getEntriesByType('navigation')[0];
  const rows = performance.getEntriesByType('resource').map(r => ({
    name: r.name, start: r.startTime, end: r.responseEnd, ttfb: r.responseStart - r.requestStart,
    transfer: r.transferSize, encoded: r.encodedBodySize, decoded: r.decodedBodySize,
    type: r.initiatorType,
    server: (r.serverTiming || []).map(s => `${s.name}=${s.duration}`).join(' ')}));
  return {nav: {transfer: nav.transferSize, responseEnd: nav.responseEnd,
                dcl: nav.domContentLoadedEventEnd, load: nav.loadEventEnd}, rows};
})()
"""


def short(url: str) -> str:
    """Return the path of ``url`` without the query, shortened."""
    path = url.split("//", 1)[-1].split("/", 1)[-1].split("?", 1)[0]
    return "/" + (path if len(path) <= 60 else "…" + path[-59:])


class WireLog:
    """Every response of one page as Chromium's DevTools protocol reports it.

    ``bytes`` is ``Network.loadingFinished``'s ``encodedDataLength``: what crossed the wire,
    headers included (0 for an answer from the browser's cache). WebSocket frames are not
    counted (Dash's callbacks over the socket, the live feed).
    """

    def __init__(self, page: Any, clear_cache: bool) -> None:
        self.rows: dict[str, dict[str, Any]] = {}
        self._cdp = page.context.new_cdp_session(page)
        self._cdp.on("Network.responseReceived", self._response)
        self._cdp.on("Network.loadingFinished", self._finished)
        self._cdp.send("Network.enable")
        if clear_cache:
            self._cdp.send("Network.clearBrowserCache")

    def _response(self, event: dict[str, Any]) -> None:
        response = event["response"]
        headers = {k.lower(): v for k, v in (response.get("headers") or {}).items()}
        self.rows[event["requestId"]] = {
            "url": response["url"],
            "status": response["status"],
            "type": event.get("type", ""),
            "encoding": headers.get("content-encoding", ""),
            "cache": headers.get("cache-control", ""),
            "from_cache": bool(response.get("fromDiskCache") or response.get("fromMemoryCache")),
            "bytes": 0,
            "finished": False,
        }

    def _finished(self, event: dict[str, Any]) -> None:
        row = self.rows.get(event["requestId"])
        if row is not None:
            row["bytes"] = int(event["encodedDataLength"])
            row["finished"] = True

    def settle(self, quiet_s: float = 1.0, limit_s: float = 20.0) -> None:
        """Wait until no response has arrived for ``quiet_s`` (at most ``limit_s``)."""
        deadline = time.monotonic() + limit_s
        seen, since = -1, time.monotonic()
        while time.monotonic() < deadline:
            self._cdp.send("Runtime.evaluate", {"expression": "1"})  # lets events arrive
            done = sum(1 for r in self.rows.values() if r["finished"])
            if done != seen:
                seen, since = done, time.monotonic()
            elif time.monotonic() - since >= quiet_s:
                return
            time.sleep(0.1)

    def summary(self) -> dict[str, Any]:
        """Return the rows (largest first) and the total bytes."""
        rows = sorted(self.rows.values(), key=lambda r: -r["bytes"])
        return {"rows": rows, "bytes": sum(r["bytes"] for r in rows), "requests": len(rows)}

    def close(self) -> None:
        self._cdp.detach()


def compressed(row: dict[str, Any]) -> bool:
    """True when a response came compressed (gzip, brotli or zstd)."""
    return any(e in row["encoding"] for e in ("gzip", "br", "zstd"))


def cacheable(row: dict[str, Any]) -> bool:
    """True when the browser may keep a response without asking again."""
    cache = row["cache"].replace(" ", "")
    return "max-age=" in cache and "max-age=0" not in cache and "no-store" not in cache


def measure_fresh_page(context: Any, base: str, path: str, drawn_js: str) -> dict[str, Any]:
    """Load ``path`` with the browser cache cleared; time it to ``drawn_js`` and count bytes."""
    page = context.new_page()
    wire = WireLog(page, clear_cache=True)
    started = time.time()
    page.goto(f"{base}{path}", wait_until="commit")
    deadline = time.monotonic() + 60
    drawn = None
    while time.monotonic() < deadline:
        drawn = page.evaluate(drawn_js)
        if drawn:
            break
        time.sleep(0.05)
    if not drawn:
        raise TimeoutError(f"{path} was not drawn within 60 s")
    wire.settle()
    out = wire.summary() | {"drawn_ms": drawn - started * 1000, "path": path}
    wire.close()
    page.close()
    return out


HOME_DRAWN = """
(() => document.querySelectorAll('.ag-root .ag-row').length > 0
  && document.querySelectorAll('.js-plotly-plot').length > 0
  ? performance.timeOrigin + performance.now() : null)()
"""


def measure_wall(context: Any, base: str, runs: int) -> dict[str, Any]:
    """Load ``/wall`` ``runs`` times in fresh pages; time it and count its bytes.

    The first run clears the browser's cache (the login filled it with ``/``'s files): a wall
    screen's first start.
    """
    times: list[float] = []
    parts: list[dict[str, float]] = []
    first: dict[str, Any] = {}
    for run in range(runs):
        page = context.new_page()
        page.add_init_script(WALL_PROBE)
        wire = WireLog(page, clear_cache=True) if run == 0 else None
        responses: list[Any] = []

        def on_response(response: Any, responses: list[Any] = responses) -> None:
            responses.append(response)

        page.on("response", on_response)
        started = time.time()
        page.goto(f"{base}/wall", wait_until="commit")
        deadline = time.monotonic() + 60
        drawn = None
        while time.monotonic() < deadline:
            drawn = page.evaluate("window.__wallDrawn || null")
            if drawn:
                break
            time.sleep(0.05)
        if not drawn:
            raise TimeoutError("the wall was not drawn within 60 s")
        elapsed = drawn / 1000 - started
        times.append(elapsed)
        marks = page.evaluate("window.__wallParts")
        part = {k: v - started * 1000 for k, v in marks.items()}
        parts.append(part)
        log(
            f"wall run {run + 1}/{runs}: {elapsed * 1000:.0f} ms (map {part['map']:.0f}, "
            f"headline tiles {part['kpi']:.0f}, today's tiles {part['today']:.0f})"
        )
        if run == 0 and wire is not None:
            wire.settle()  # let late requests finish before counting bytes
            first = wall_bytes(responses)
            first["wire"] = wire.summary()
            wire.close()
            first["timing"] = page.evaluate(RESOURCES_JS)
            first["started"] = started
            first["drawn_ms"] = elapsed * 1000
        page.close()
    return {"times": times, "parts": parts, "first": first}


def wall_bytes(responses: list[Any]) -> dict[str, Any]:
    """Return the bytes of the responses of one load, and the map layers' sizes."""
    total = headers = 0
    layers: dict[str, dict[str, Any]] = {}
    for response in list(responses):
        try:
            sizes = response.request.sizes()
        except Exception:
            continue
        total += sizes["responseBodySize"] + sizes["responseHeadersSize"]
        headers += sizes["responseHeadersSize"]
        for layer in LAYERS:
            if f"/api/v1/{layer}.geojson" in response.url:
                body = response.body()
                layers[layer] = {
                    "content_length": int(response.headers.get("content-length") or 0),
                    "encoding": response.headers.get("content-encoding", ""),
                    "body": sizes["responseBodySize"],
                    "decoded": len(body),
                    "features": len(json.loads(body).get("features", [])),
                }
    return {
        "requests": len(responses),
        "bytes": total,
        "header_bytes": headers,
        "layers": layers,
    }


# --- 2: event to screen ---------------------------------------------------------------------

FEED_OBSERVER = """
(() => {
  const feed = document.getElementById('live-feed');
  window.__seen = new Map();
  const record = (el, t) => {
    const id = el.getAttribute('data-event-id');
    if (id && !window.__seen.has(id)) window.__seen.set(id, t);
  };
  const scan = (node, t) => {
    if (node.nodeType !== 1) return;
    if (node.hasAttribute('data-event-id')) record(node, t);
    node.querySelectorAll('[data-event-id]').forEach(el => record(el, t));
  };
  feed.querySelectorAll('[data-event-id]').forEach(el => record(el, 0));
  window.__feedUpdates = [];  // when the feed changed (to explain a probe never seen)
  new MutationObserver(mutations => {
    const t = performance.timeOrigin + performance.now();
    window.__feedUpdates.push(t);
    for (const m of mutations) {
      if (m.type === 'attributes') scan(m.target, t);
      else m.addedNodes.forEach(n => scan(n, t));
    }
  }).observe(feed, {childList: true, subtree: true, attributes: true,
                    attributeFilter: ['data-event-id']});
  return true;
})()
"""


def probe_devices(url: str, n: int = 200) -> list[tuple[str, str]]:
    """Return ``n`` (device id, grid code) pairs of the database, drawn with a fixed seed."""
    from sqlalchemy import select

    from datasources.db import make_engine
    from datasources.models import Device

    engine = make_engine(url)
    with engine.connect() as conn:
        rows = [tuple(r) for r in conn.execute(select(Device.id, Device.grid_code))]
    engine.dispose()
    return random.Random(7).sample(rows, min(n, len(rows)))


class ChannelWatch:
    """Record when each event id is first published on the worker's live channel."""

    def __init__(self, redis_url: str, channel: str) -> None:
        import threading

        from redis import Redis

        self.seen: dict[str, float] = {}
        self.messages = 0
        self._redis = Redis.from_url(redis_url)
        self._pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        self._pubsub.subscribe(channel)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            message = self._pubsub.get_message(timeout=0.2)
            if not message:
                continue
            now = time.time()
            self.messages += 1
            for entry in json.loads(message["data"]):
                self.seen.setdefault(entry.get("id", ""), now)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._pubsub.close()
        self._redis.close()


def cpu_ticks(named: dict[str, int]) -> dict[str, int]:
    """Return the CPU ticks (user + system) of each named process and its descendants so far.

    Processes under this script that are not named (Playwright's driver and Chromium) count
    as "browser"; "machine" is every CPU's busy time, other users' load included.
    """
    parent: dict[int, int] = {}
    ticks: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parent[int(entry)] = int(fields[1])
        ticks[int(entry)] = int(fields[11]) + int(fields[12])
    owner: dict[int, str] = {pid: name for name, pid in named.items()}
    me = os.getpid()

    def group(pid: int) -> str | None:
        seen = pid
        while seen > 1:
            if seen in owner:
                return owner[seen]
            if parent.get(seen) == me:
                return "browser"
            seen = parent.get(seen, 0)
        return None

    out = dict.fromkeys([*named, "browser"], 0)
    for pid, n in ticks.items():
        name = group(pid)
        if name:
            out[name] += n
    with open("/proc/stat") as f:
        cpu = [int(x) for x in f.readline().split()[1:]]
    out["machine"] = sum(cpu) - cpu[3] - cpu[4]  # minus idle and iowait
    return out


def backlog(redis: Any, stream: str, group: str = "workers") -> int:
    """Return the entries of ``stream`` the worker group has not acknowledged yet."""
    for info in redis.xinfo_groups(stream):
        if info["name"].decode() == group:
            last = info["last-delivered-id"].decode()
            unread = len(redis.xrange(stream, min=f"({last}", max="+", count=1_000_000))
            return int(info["pending"]) + unread
    return -1


def js_profile(cdp: Any, seconds: float) -> list[tuple[str, float]]:
    """Sample the page's JavaScript for ``seconds``; return (script, share of time), top first."""
    cdp.send("Profiler.enable")
    cdp.send("Profiler.setSamplingInterval", {"interval": 500})
    cdp.send("Profiler.start")
    time.sleep(seconds)
    profile = cdp.send("Profiler.stop")["profile"]
    cdp.send("Profiler.disable")
    where = {}
    for node in profile["nodes"]:
        frame = node["callFrame"]
        url = frame.get("url") or ""
        name = url.rsplit("/", 1)[-1].split("?", 1)[0] if url else f"({frame['functionName']})"
        where[node["id"]] = name or "(anonymous)"
    spent: dict[str, float] = {}
    for node_id, delta in zip(profile["samples"], profile["timeDeltas"], strict=True):
        spent[where[node_id]] = spent.get(where[node_id], 0.0) + delta
    total = (profile["endTime"] - profile["startTime"]) or 1
    return sorted(((k, v / total) for k, v in spent.items()), key=lambda kv: -kv[1])


def measure_events(
    context: Any, stack: Any, rate: float, seconds: float, workdir: Path, redis_pid: int
) -> dict[str, Any]:
    """Probe the event-to-screen latency while the simulator runs at ``rate``."""
    from browser import wait_for
    from redis import Redis

    from dashboard.settings import Settings
    from datasources.live import LiveKeys
    from datasources.periods import SHANGHAI

    settings = Settings()
    devices = probe_devices(stack.database_url)
    stream = settings.stream_key("events")
    redis = Redis.from_url(stack.redis_url)
    page = context.new_page()
    page.goto(f"{stack.base}/")
    wait_for(page, "document.getElementById('ws-status').dataset.state === 'connected'", 30)
    wait_for(page, "document.querySelector('#today-tiles .tile')", 30)
    page.evaluate(FEED_OBSERVER)
    cdp = context.new_cdp_session(page)
    cdp.send("Performance.enable")

    def main_thread() -> dict[str, float]:
        metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
        keys = ("TaskDuration", "ScriptDuration", "LayoutDuration", "RecalcStyleDuration")
        return {k: metrics.get(k, 0.0) for k in keys}

    watch = ChannelWatch(stack.redis_url, LiveKeys(settings.district_code).channel)
    simulator = start_simulator(stack.env, rate, workdir / "simulate.log")
    sent: dict[str, float] = {}
    try:
        time.sleep(3.0)  # let the simulator reach its rate
        added_before = redis.xlen(stream)
        worker, web = (p.pid for p in stack.processes)
        named = {"web": web, "worker": worker, "simulator": simulator.pid, "redis": redis_pid}
        cpu_before = cpu_ticks(named)
        main_before = main_thread()
        window_start = time.time()
        i = 0
        next_at = time.monotonic()
        end = next_at + seconds
        while time.monotonic() < end:
            device, grid = devices[i % len(devices)]
            i += 1
            event = {
                "v": 1,
                "id": uuid.uuid4().hex,
                "kind": "call.key",
                "ts": dt.datetime.now(SHANGHAI).isoformat(timespec="seconds"),
                "grid": grid,
                "device": device,
                "key": "call",
            }
            payload = {"event": json.dumps(event)}
            sent[event["id"]] = time.time()
            redis.xadd(stream, payload)
            next_at += 0.25
            time.sleep(max(0.0, next_at - time.monotonic()))
        window = time.time() - window_start
        cpu_after = cpu_ticks(named)
        main_after = main_thread()
        added = redis.xlen(stream) - added_before
        behind = backlog(redis, stream)
        # After the window (so as not to slow it down): where the page's JavaScript time goes.
        profile = js_profile(cdp, 5.0)
        if simulator.poll() is not None:
            raise RuntimeError(f"the simulator exited early; see {workdir / 'simulate.log'}")
    finally:
        stop_process(simulator)
    try:
        # Let the worker drain what is left so that every probe gets a latency, up to 60 s.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not all(i in watch.seen for i in sent):
            time.sleep(0.2)
        time.sleep(1.0)
    finally:
        watch.close()
        redis.close()
    ids = list(sent)
    seen = page.evaluate("ids => ids.map(i => window.__seen.get(i) ?? null)", ids)
    updates = [u / 1000 for u in page.evaluate("window.__feedUpdates")]
    page.close()
    missed = []
    for n, (i, t) in enumerate(zip(ids, seen, strict=True)):
        if t:
            continue
        published = watch.seen.get(i)
        # The longest pause in the feed's updates around the probe (a stalled page drops what
        # arrived meanwhile from the 30 entries it shows).
        around = [u for u in updates if sent[i] - 2 <= u <= sent[i] + 2]
        gaps = [b - a for a, b in zip(around, around[1:], strict=False)]
        missed.append(
            f"#{n} sent at +{sent[i] - window_start:.1f} s, "
            + (f"published +{(published - sent[i]) * 1000:.0f} ms" if published else "unpublished")
            + f", feed updates within 2 s: {len(around)}, longest pause "
            + f"{max(gaps, default=0) * 1000:.0f} ms"
        )
    latencies = [(t / 1000 - sent[i]) * 1000 for i, t in zip(ids, seen, strict=True) if t]
    published = [(watch.seen[i] - sent[i]) * 1000 for i in ids if i in watch.seen]
    after_publish = [
        (t / 1000 - watch.seen[i]) * 1000
        for i, t in zip(ids, seen, strict=True)
        if t and i in watch.seen
    ]
    return {
        "sent": len(ids),
        "seen": len(latencies),
        "latencies_ms": latencies,
        "missed": missed,
        "published": len(published),
        "publish_ms": published,
        # When the worker's slowest publishes happened (s into the window), to tell a periodic
        # pause (a scheduler job) from a one-off.
        "slow_publishes": sorted(
            (
                (round(sent[i] - window_start, 1), round((watch.seen[i] - sent[i]) * 1000))
                for i in ids
                if i in watch.seen and watch.seen[i] - sent[i] > 0.1
            ),
        ),
        "after_publish_ms": after_publish,
        "messages": watch.messages,
        "stream_rate": added / window if window else 0.0,
        "backlog": behind,
        "messages_per_s": watch.messages / max(window, 1e-9),
        "profile": profile,
        "main_thread": {k: (main_after[k] - main_before[k]) / window for k in main_after},
        "cpu": {
            k: (cpu_after[k] - cpu_before[k]) / os.sysconf("SC_CLK_TCK") / window for k in cpu_after
        },
    }


# --- 3: choosing a town ---------------------------------------------------------------------

TOWN_INIT = """
(() => {
  const now = () => performance.timeOrigin + performance.now();
  // Every Dash callback request: its outputs, when it was sent, when its headers and its
  // whole body arrived, and the body's size.
  window.__answers = [];
  const fetch0 = window.fetch;
  window.fetch = function (input, init) {
    const url = typeof input === 'string' ? input : (input && input.url) || '';
    const promise = fetch0.apply(this, arguments);
    if (!url.includes('_dash-update-component') || !init || !init.body) return promise;
    let output = '';
    try { output = JSON.parse(init.body).output || ''; } catch (e) { return promise; }
    const rec = {output, sent: now(), t: null, body: null, bytes: 0, up: init.body.length};
    window.__answers.push(rec);
    return promise.then(resp => {
      // Headers first (the renderer may draw before a clone's body resolves), then the body.
      rec.t = now();
      resp.clone().text().then(text => { rec.body = now(); rec.bytes = text.length; });
      return resp;
    });
  };
  // Plotly.react calls (dcc.Graph calls the global one): main-thread time until it returns.
  window.__reacts = [];
  // Dash's Redux store: how many actions a town switch dispatches.
  window.__dispatches = 0;
  window.__resets = 0;
  const hook = () => {
    if (window.Plotly && window.Plotly.react && !window.Plotly.__bench) {
      const react0 = window.Plotly.react;
      window.Plotly.react = function () {
        const t0 = now();
        const out = react0.apply(this, arguments);
        window.__reacts.push({start: t0, ms: now() - t0});
        return out;
      };
      window.Plotly.__bench = true;
    }
    const store = window.store;
    if (store && store.dispatch && !store.__bench) {
      const dispatch0 = store.dispatch;
      store.dispatch = function (action) {
        // Component resets apart: wushi_dash_perf.js drops the no-op ones behind this hook.
        if (action && action.type === 'RESET_COMPONENT_STATE') window.__resets += 1;
        else window.__dispatches += 1;
        return dispatch0.apply(this, arguments);
      };
      store.__bench = true;
    }
  };
  setInterval(hook, 50);
  // Long tasks of the main thread.
  window.__long = [];
  try {
    new PerformanceObserver(list => {
      for (const e of list.getEntries())
        window.__long.push({start: performance.timeOrigin + e.startTime, ms: e.duration});
    }).observe({type: 'longtask', buffered: false});
  } catch (e) { /* not supported */ }
  document.addEventListener('pointerdown', ev => {
    const s = window.__town;
    if (s && !s.clicked && ev.target.closest && ev.target.closest('.dash-dropdown-option'))
      s.clicked = now();
  }, true);
})();
"""

TOWN_ARM = """
([name, value]) => {
  const now = () => performance.timeOrigin + performance.now();
  window.__answers = [];
  window.__reacts = [];
  window.__long = [];
  window.__dispatches = 0;
  window.__resets = 0;
  window.__town = {name, value, clicked: null, title: null, tile: null, plots: {}, muts: {}};
  const key = el => {
    const holder = el.closest('[id*="chart"],[id*="table"]');
    const m = holder && holder.id.match(/"(chart|table)":"([^"]+)"/);
    return m ? m[2] : '?';
  };
  const charts = [];
  document.querySelectorAll('.js-plotly-plot').forEach(gd => {
    const chart = key(gd);
    charts.push(chart);
    if (!gd.__benchHooked && gd.on) {
      gd.__benchHooked = true;
      gd.on('plotly_afterplot', () => {
        const s = window.__town;
        if (s && s.clicked) (s.plots[chart] = s.plots[chart] || []).push(now());
      });
    }
  });
  // DOM changes of the tables (rows) and of the map (the grids' style) after the click.
  // AG Grid first updates its row count and pager, and creates the rows later (after the
  // charts drawn in the same frame): a table counts as updated when its rows were replaced.
  const watch = (el, region, options) => {
    if (!el || el.__benchWatched) return;
    el.__benchWatched = true;
    new MutationObserver(records => {
      const s = window.__town;
      if (!s || !s.clicked) return;
      const t = now();
      (s.muts[region] = s.muts[region] || []).push(t);
      if (records.some(r => r.type === 'childList' && r.target.classList &&
                            r.target.classList.contains('ag-center-cols-container')))
        (s.muts[region + ':rows'] = s.muts[region + ':rows'] || []).push(t);
    }).observe(el, options);
  };
  const tables = [];
  document.querySelectorAll('[id*="\\\\"table\\\\":"]').forEach(el => {
    if (!el.classList.contains('ag-theme-alpine') && !el.querySelector('.ag-root')) return;
    const table = key(el);
    tables.push(table);
    watch(el, table, {childList: true, subtree: true, characterData: true});
  });
  const map = document.getElementById('grid-map');
  watch(map, 'map', {attributes: true, subtree: true, attributeFilter: ['fill', 'stroke',
    'fill-opacity', 'stroke-width', 'stroke-opacity', 'class', 'style']});
  const check = () => {
    const s = window.__town;
    if (s !== window.__town) return;
    if (s.clicked) {
      const t = now();
      const title = (document.getElementById('area-title') || {}).textContent || '';
      const tile = (document.querySelector('#kpi-tiles .tile .value span') || {}).textContent;
      if (s.title === null && title.includes(s.name)) s.title = t;
      if (s.tile === null && tile === s.value) s.tile = t;
      if (s.title !== null && s.tile !== null) return;
    }
    requestAnimationFrame(check);
  };
  requestAnimationFrame(check);
  return {charts, tables, map: !!map};
}
"""

MIN_TOWN_SAMPLES = 20  # town choices, cycling through the 6 towns
# Per-switch figures that depend little on the machine's load (and server_ms, which does).
TOWN_COUNTS = (
    "callbacks",
    "kb",
    "server_ms",
    "plotly_ms",
    "reacts",
    "long_ms",
    "dispatches",
    "resets",
)
# A panel whose new value equals the old one is not redrawn (no plotly_afterplot, no DOM
# change): it counts as updated when its callback's answer has arrived and nothing was drawn
# for this long after.
UNCHANGED_AFTER_MS = 1500
# A table or the map is redrawn in a burst of DOM changes; the burst ends at the first gap
# this long, and its last change is when the panel showed the new area.
BURST_GAP_MS = 120.0


def expected_tiles(url: str) -> list[tuple[str, str, str]]:
    """Return (code, name, first tile text) of every town, for this year so far."""
    from sqlalchemy import select

    from datasources.db import make_engine
    from datasources.kpi import kpi, resolve_area
    from datasources.models import Town
    from datasources.periods import SHANGHAI, Period
    from layouts.components import fmt_number

    engine = make_engine(url)
    today = dt.datetime.now(SHANGHAI).date()
    period = Period(dt.date(today.year, 1, 1), today)
    with engine.connect() as conn:
        towns = list(conn.execute(select(Town.code, Town.name).order_by(Town.code)))
    out = []
    for code, name in towns:
        figures = kpi(engine, resolve_area(engine, town=code), period, dt.datetime.now(dt.UTC))
        out.append((code, name, fmt_number(figures["requests"])))
    engine.dispose()
    return out


def _answer(answers: list[dict[str, Any]], needle: str) -> dict[str, Any] | None:
    """Return the last answered callback after the click whose outputs include ``needle``."""
    hits = [a for a in answers if needle in a["output"] and a["t"] is not None]
    return max(hits, key=lambda a: a["t"]) if hits else None


def _burst_end(times: list[float], after: float) -> float | None:
    """Return the last change of the first burst of DOM changes at or after ``after``."""
    later = sorted(x for x in times if x >= after)
    if not later:
        return None
    end = later[0]
    for x in later[1:]:
        if x - end > BURST_GAP_MS:
            break
        end = x
    return end


def _panel_done(
    state: dict[str, Any], answers: list[dict[str, Any]], kind: str, name: str, now: float
) -> tuple[float, bool] | None:
    """Return (when the panel showed the new area, redrawn?) or None while still waiting."""
    needle = {
        "chart": f'"chart":"{name}"',
        "table": f'"table":"{name}"',
        "map": "grid-style.data",
    }[kind]
    answer = _answer(answers, needle)
    if answer is None or answer["body"] is None:
        return None
    if kind == "chart":
        drawn = [t for t in state["plots"].get(name, []) if t >= answer["t"]]
        if drawn:
            return min(drawn), True
    else:
        region = name if kind == "table" else "map"
        rows = _burst_end(state["muts"].get(f"{region}:rows", []), answer["t"])
        if rows is not None:  # a table whose rows were replaced
            return (rows, True) if now - rows >= BURST_GAP_MS * 2 else None
        end = _burst_end(state["muts"].get(region, []), answer["t"])
        if end is not None and (kind == "map" or now - answer["body"] >= UNCHANGED_AFTER_MS):
            # The map's grid styles; a table whose rows stayed (only its pager changed).
            return (end, True) if now - end >= BURST_GAP_MS * 2 else None
    if now - answer["body"] >= UNCHANGED_AFTER_MS:
        return answer["body"], False
    return None


def measure_towns(context: Any, base: str, url: str, samples: int) -> dict[str, Any]:
    """Choose each town in turn in the dropdown and time until every panel of / shows it.

    "Every panel": the area title, the headline tiles, each chart (``plotly_afterplot``), each
    table (its rows' DOM), and the map (its grids' style); the live column on the right
    follows the area on its own schedule (``callbacks/live.py``) and is not counted.
    """
    from browser import wait_for

    towns = expected_tiles(url)
    page = context.new_page()
    page.add_init_script(TOWN_INIT)
    page.goto(f"{base}/")
    wait_for(page, "document.querySelector('#kpi-tiles .tile .value span')", 30)
    # Every chart slot on the page drawn once (the overview's chart count may change).
    wait_for(
        page,
        "document.querySelectorAll('.dash-graph').length > 0 && "
        "document.querySelectorAll('.js-plotly-plot').length >= "
        "document.querySelectorAll('.dash-graph').length",
        60,
    )
    wait_for(page, "document.querySelectorAll('#grid-map path.grid-cell').length > 0", 60)
    time.sleep(1.5)
    rows: list[dict[str, Any]] = []
    panels: dict[str, Any] = {}
    for k in range(samples):
        code, name, value = towns[k % len(towns)]
        panels = page.evaluate(TOWN_ARM, [name, value])
        wanted = [("chart", c) for c in panels["charts"]] + [("table", t) for t in panels["tables"]]
        if panels["map"]:
            wanted.append(("map", "map"))
        page.click("#filter-town")
        page.click(f".dash-dropdown-option:has(input[value='{code}'])")
        deadline = time.monotonic() + 30
        done: dict[tuple[str, str], Any] = {}
        while time.monotonic() < deadline:
            state, answers, now = page.evaluate(
                "[window.__town, window.__answers, performance.timeOrigin + performance.now()]"
            )
            done = {p: _panel_done(state, answers, p[0], p[1], now) for p in wanted}
            if state["title"] and state["tile"] and all(done.values()):
                break
            time.sleep(0.05)
        else:
            raise TimeoutError(f"choosing {name} did not finish in 30 s: {state} {answers}")
        clicked = state["clicked"]
        reacts, long_tasks, dispatches, resets = page.evaluate(
            "[window.__reacts, window.__long, window.__dispatches, window.__resets]"
        )
        answered = [a for a in answers if a["t"] is not None]
        by_kind = {
            kind: max((t for (k2, _), (t, _) in done.items() if k2 == kind), default=clicked)
            for kind in ("chart", "table", "map")
        }
        last = max([state["title"], state["tile"], *(t for t, _ in done.values())])
        row = {
            "town": name,
            "total": last - clicked,
            "title": state["title"] - clicked,
            "tile": state["tile"] - clicked,
            "charts": by_kind["chart"] - clicked,
            "tables": by_kind["table"] - clicked,
            "map": by_kind["map"] - clicked,
            "sent": max(a["sent"] for a in answered) - clicked,
            "answers": max(a["t"] for a in answered) - clicked,
            "filters": (_answer(answers, "filters-store.data") or {"t": clicked})["t"] - clicked,
            "callbacks": len(answers),
            "kb": sum(a["bytes"] for a in answers) / 1024,
            "server_ms": max(a["t"] - a["sent"] for a in answered),
            "plotly_ms": sum(r["ms"] for r in reacts),
            "reacts": len(reacts),
            "long_ms": sum(x["ms"] for x in long_tasks if x["start"] >= clicked - 5),
            "dispatches": dispatches,
            "resets": resets,
            "redrawn": sum(1 for _, redrawn in done.values() if redrawn),
            "panels": len(done) + 2,
        }
        rows.append(row)
        log(
            f"town {k + 1}/{samples} {name}: {row['total']:.0f} ms (filters answered "
            f"{row['filters']:.0f}, last request sent {row['sent']:.0f}, last answer "
            f"{row['answers']:.0f}; title {row['title']:.0f}, tile {row['tile']:.0f}, charts "
            f"{row['charts']:.0f}, tables {row['tables']:.0f}, map {row['map']:.0f}; "
            f"{row['callbacks']} callbacks, {row['kb']:.1f} KB, Plotly.react "
            f"{row['plotly_ms']:.0f} ms in {row['reacts']}, {dispatches} store actions "
            f"and {resets} component resets)"
        )
        time.sleep(0.3)
    page.close()
    return {
        "rows": rows,
        "charts": len(panels.get("charts", [])),
        "tables": len(panels.get("tables", [])),
    }


# --- Report ---------------------------------------------------------------------------------


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def report(
    machine: dict[str, Any],
    wall: dict[str, Any] | None,
    events: dict[str, Any] | None,
    towns: dict[str, Any] | None,
) -> None:
    """Print the table of figures, then the details behind them (of the parts measured)."""
    rows: list[tuple[str, str, str, str]] = []
    lat: list[float] = []
    if wall:
        t = wall["times"]
        rows.append(
            (
                f"/wall drawn, median of {len(t)}",
                f"{statistics.median(t):.2f} s",
                f"<= {TARGET_WALL_S:g} s",
                verdict(statistics.median(t) <= TARGET_WALL_S),
            )
        )
        rows.append(
            ("/wall drawn, max", f"{max(t):.2f} s", f"<= {TARGET_WALL_S:g} s", verdict(max(t) <= 2))
        )
        rows.append(
            (
                "/wall drawn, first (browser cache cleared)",
                f"{t[0]:.2f} s",
                f"<= {TARGET_FRESH_WALL_S:g} s",
                verdict(t[0] <= TARGET_FRESH_WALL_S),
            )
        )
        for name, fresh in (("/wall", wall["first"].get("wire")), ("/", wall.get("home"))):
            if not fresh:
                continue
            kb = fresh["bytes"] / 1024
            rows.append(
                (
                    f"{name} fresh first load, {fresh['requests']} responses",
                    f"{kb:.0f} KB on the wire",
                    f"<= {TARGET_FRESH_KB:g} KB" if name == "/wall" else "",
                    verdict(kb <= TARGET_FRESH_KB) if name == "/wall" else "",
                )
            )
        if wall.get("home"):
            rows.append(
                (
                    "/ drawn, fresh (tables and charts)",
                    f"{wall['home']['drawn_ms'] / 1000:.2f} s",
                    "",
                    "",
                )
            )
    if events:
        lat = events["latencies_ms"]
        seen = f"{events['seen']}/{events['sent']}"
        rows.append(
            (
                "event->feed, probes seen/sent",
                seen,
                "all",
                verdict(events["seen"] == events["sent"]),
            )
        )
        if lat:
            p95 = pct(lat, 95)
            rows.append(("event->feed, median", f"{statistics.median(lat):.0f} ms", "", ""))
            rows.append(
                (
                    "event->feed, p95",
                    f"{p95:.0f} ms",
                    f"<= {TARGET_EVENT_P95_MS:g} ms",
                    verdict(p95 <= TARGET_EVENT_P95_MS),
                )
            )
            rows.append(("event->feed, max", f"{max(lat):.0f} ms", "", ""))
        pub = events["publish_ms"]
        if pub:
            rows.append(
                (
                    f"  of which XADD->worker published, {events['published']}/{events['sent']}",
                    f"p50 {statistics.median(pub):.0f} / p95 {pct(pub, 95):.0f} / max "
                    f"{max(pub):.0f} ms",
                    "",
                    "",
                )
            )
        after = events["after_publish_ms"]
        if after:
            rows.append(
                (
                    "  of which published->feed DOM",
                    f"p50 {statistics.median(after):.0f} / p95 {pct(after, 95):.0f} ms",
                    "",
                    "",
                )
            )
        rows.append(("simulated stream rate (ev/s)", f"{events['stream_rate']:.0f}", "", ""))
        rows.append(("worker backlog at end of window", f"{events['backlog']} entries", "", ""))
        rows.append(("live channel messages/s", f"{events['messages_per_s']:.1f}", "", ""))
        main_thread = events["main_thread"]
        rows.append(
            (
                "page main thread busy (share of the window)",
                ", ".join(f"{k.removesuffix('Duration')} {v:.0%}" for k, v in main_thread.items()),
                "",
                "",
            )
        )
        cpu = events["cpu"]
        rows.append(
            (
                "CPU cores busy during the window",
                ", ".join(f"{k} {v:.2f}" for k, v in cpu.items()),
                "",
                "",
            )
        )
    if towns:
        totals = [r["total"] for r in towns["rows"]]
        p95 = pct(totals, 95)
        rows.append(
            (
                f"town->panels, median of {len(totals)}",
                f"{statistics.median(totals):.0f} ms",
                "",
                "",
            )
        )
        rows.append(
            (
                "town->panels, p95",
                f"{p95:.0f} ms",
                f"<= {TARGET_TOWN_P95_MS:g} ms",
                verdict(p95 <= TARGET_TOWN_P95_MS),
            )
        )
        med = {k: statistics.median(r[k] for r in towns["rows"]) for k in TOWN_COUNTS}
        rows.append(
            (
                "  per switch (medians)",
                f"{med['callbacks']:.0f} callbacks, {med['kb']:.1f} KB answers, "
                f"server <= {med['server_ms']:.0f} ms",
                "",
                "",
            )
        )
        rows.append(
            (
                "  browser per switch (medians)",
                f"Plotly.react {med['plotly_ms']:.0f} ms, long tasks {med['long_ms']:.0f} ms, "
                f"{med['dispatches']:.0f} store actions (+{med['resets']:.0f} resets)",
                "",
                "",
            )
        )
    if wall:
        layers = wall["first"]["layers"]
        for layer in LAYERS:
            info = layers.get(layer)
            if not info:
                rows.append((f"{layer}.geojson", "not requested", "", ""))
                continue
            kb = info["body"] / 1024
            target = f"<= {TARGET_GRID_KB:g} KB" if layer == "grids" else ""
            ok = verdict(kb <= TARGET_GRID_KB) if layer == "grids" else ""
            rows.append(
                (
                    f"{layer}.geojson ({info['encoding'] or 'identity'}, raw)",
                    f"{kb:.1f} KB ({info['decoded'] / 1024:.0f} KB)",
                    target,
                    ok,
                )
            )
        first = wall["first"]
        timing = first["timing"]
        wire = timing["nav"]["transfer"] + sum(r["transfer"] for r in timing["rows"])
        raw = sum(r["decoded"] for r in timing["rows"])
        rows.append(
            (
                f"/wall first load, {len(timing['rows']) + 1} requests",
                f"{wire / 1024:.0f} KB ({raw / 1024:.0f} KB raw)",
                "",
                "",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    head = ("figure", "value", "target", "")
    widths = [max(w, len(h)) for w, h in zip(widths, head, strict=True)]
    print()
    print(
        f"machine: {machine['nproc']} CPUs, load average at start {machine['load']}, "
        f"{machine['when']}, Chromium headless 1920x1080"
    )
    line = "  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True))
    print(line)
    print("-" * len(line))
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    print(f"load average at end: {machine['load_end']}")
    print()
    if wall:
        t = wall["times"]
        timing = wall["first"]["timing"]
        first = wall["first"]
        print("/wall runs (ms): " + ", ".join(f"{x * 1000:.0f}" for x in t))
        print(
            "  medians: "
            + ", ".join(
                f"{k} {statistics.median(p[k] for p in wall['parts']):.0f} ms"
                for k in ("map", "kpi", "today")
            )
            + " (map = 607 shapes, kpi = headline tiles filled, today = today's tiles)"
        )
        nav = timing["nav"]
        print(
            f"first /wall load: document responseEnd {nav['responseEnd']:.0f} ms, "
            f"DOMContentLoaded {nav['dcl']:.0f} ms, load {nav['load']:.0f} ms, "
            f"drawn {first['drawn_ms']:.0f} ms after goto"
        )
        print("  slowest-to-finish responses (start → end ms after navigation, TTFB, bytes):")
        for r in sorted(timing["rows"], key=lambda r: -r["end"])[:12]:
            print(
                f"    {r['start']:6.0f} → {r['end']:6.0f}  ttfb {r['ttfb']:5.0f}  "
                f"{r['transfer'] / 1024:7.1f} KB (raw {r['decoded'] / 1024:7.1f})  "
                f"{short(r['name'])}"
            )
        posts = [r for r in timing["rows"] if "_dash-update-component" in r["name"]]
        if posts:
            ttfb = [p["ttfb"] for p in posts]
            print(
                f"  {len(posts)} callback POSTs: TTFB median {statistics.median(ttfb):.0f} ms, "
                f"max {max(ttfb):.0f} ms; the last ends at {max(p['end'] for p in posts):.0f} ms"
            )
        for name, fresh in (("/wall", first.get("wire")), ("/", wall.get("home"))):
            if fresh:
                print_wire(name, fresh)
    if events:
        for line in events.get("missed", []):
            print(f"probe never seen in the feed: {line}")
        if events.get("slow_publishes"):
            print(
                "publishes over 100 ms (s into the window: ms): "
                + ", ".join(f"+{at:g}: {ms}" for at, ms in events["slow_publishes"])
            )
        if lat:
            print(
                "event->feed latencies (ms), sorted: "
                + ", ".join(f"{x:.0f}" for x in sorted(lat)[:: max(1, len(lat) // 20)])
            )
        print(
            "page JavaScript profile, 5 s after the probe window (simulator still running): "
            + ", ".join(f"{name} {share:.0%}" for name, share in events["profile"][:8])
        )
    if towns:
        parts = ("filters", "sent", "answers", "title", "tile", "charts", "tables", "map", "total")
        print(
            "town->panels medians (ms after the click): "
            + ", ".join(f"{p} {statistics.median(r[p] for r in towns['rows']):.0f}" for p in parts)
            + f" ({towns['charts']} charts and {towns['tables']} tables on /, and the map)"
        )
        print(
            "town->panels per switch, medians: "
            + ", ".join(
                f"{k} {statistics.median(r[k] for r in towns['rows']):.1f}" for k in TOWN_COUNTS
            )
        )
        half = len(towns["rows"]) // 2
        if half:
            first_round = [r["total"] for r in towns["rows"][: min(6, half)]]
            later = [r["total"] for r in towns["rows"][6:]]
            if later:
                print(
                    f"  first pass over the towns (server cache cold) median "
                    f"{statistics.median(first_round):.0f} ms; later passes median "
                    f"{statistics.median(later):.0f} ms"
                )


def print_wire(name: str, fresh: dict[str, Any]) -> None:
    """Print each response of a fresh first load: bytes, encoding, caching, URL."""
    rows = fresh["rows"]
    static = [r for r in rows if "/_dash-component-suites/" in r["url"] or "/assets/" in r["url"]]
    print(
        f"fresh first load of {name}: {fresh['bytes'] / 1024:.0f} KB in {len(rows)} responses; "
        f"static files {sum(r['bytes'] for r in static) / 1024:.0f} KB in {len(static)}, "
        f"{sum(1 for r in static if compressed(r))} compressed, "
        f"{sum(1 for r in static if cacheable(r))} cacheable"
    )
    for r in rows:
        print(
            f"    {r['bytes'] / 1024:7.1f} KB  {r['status']}  {r['encoding'] or 'identity':8}  "
            f"{'cacheable' if cacheable(r) else 'no-cache ':9}  {short(r['url'])}"
            + ("  (from cache)" if r["from_cache"] else "")
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", help="A seeded SQLite file to copy (default: seed a fresh one).")
    parser.add_argument("--runs", type=int, default=5, help="Loads of /wall.")
    parser.add_argument("--rate", type=float, default=200.0, help="Simulated events/s.")
    parser.add_argument("--seconds", type=float, default=30.0, help="Probe window.")
    parser.add_argument(
        "--town-samples", type=int, default=24, help=f"Town choices (>= {MIN_TOWN_SAMPLES})."
    )
    parser.add_argument(
        "--parts",
        default="wall,towns,events",
        help="What to measure, comma-separated: wall, towns, events (default: all).",
    )
    parser.add_argument("--keep", action="store_true", help="Keep the work directory and logs.")
    args = parser.parse_args()
    parts = {p.strip() for p in args.parts.split(",") if p.strip()}
    if not parts or parts - {"wall", "towns", "events"}:
        parser.error("--parts takes wall, towns and/or events")

    signal.signal(signal.SIGTERM, _raise_interrupt)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started in background
    machine = {
        "nproc": os.cpu_count(),
        "load": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "when": dt.datetime.now().astimezone().isoformat(timespec="minutes"),
    }
    log(f"{machine['nproc']} CPUs, load average {machine['load']}")
    workdir = Path(tempfile.mkdtemp(prefix="wushi-ui-bench-"))
    try:
        with ExitStack() as stack:
            from browser import LiveStack, browser_context, login

            from dashboard.embedded_redis import EmbeddedRedis

            url = prepare_database(args, workdir)
            redis_server = stack.enter_context(EmbeddedRedis(workdir / "redis"))
            live = LiveStack(url, redis_server.url, workdir)
            stack.callback(live.stop)
            live.start_worker()
            live.start_web()
            log(f"web on {live.base}, worker running; logs in {workdir}")
            context = stack.enter_context(browser_context(1920, 1080))
            page = context.new_page()
            login(page, live.base, USER, PASSWORD)
            page.close()

            wall = towns = events = None
            if "wall" in parts:
                log(f"1/4: loading /wall {args.runs} times ...")
                wall = measure_wall(context, live.base, args.runs)
                log("1/4: loading / with the browser cache cleared ...")
                wall["home"] = measure_fresh_page(context, live.base, "/", HOME_DRAWN)
            if "towns" in parts:
                # Town choices before the simulator, so that the figures stay those of the seed.
                samples = max(MIN_TOWN_SAMPLES, args.town_samples)
                log(f"3/4: choosing towns {samples} times ...")
                towns = measure_towns(context, live.base, url, samples)
            if "events" in parts:
                log(f"2/4: probing the live feed for {args.seconds:g} s at {args.rate:g} ev/s")
                events = measure_events(
                    context, live, args.rate, args.seconds, workdir, redis_server.process.pid
                )
            machine["load_end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
        report(machine, wall, events, towns)
    finally:
        if args.keep:
            log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
