"""Load: N tablet users changing filters and M wall screens on live updates, on the real stack.

    .venv/bin/python benchmarks/load.py [--db URL] [--tablets 100] [--walls 20] [--rate 200]
        [--duration 120] [--warmup 20] [--web-workers 1] [--browser-walls 0] [--json FILE]

What runs (all on loopback, all stopped on exit, error, Ctrl-C or SIGTERM):

- a private copy of a seeded database (``--db``: a SQLite file or a PostgreSQL URL, copied with
  ``CREATE DATABASE ... TEMPLATE``), or a fresh PostgreSQL database seeded here
  (``--history-scale``, default 1 = ``wushi seed --demo``); an embedded Redis (as the browser
  tests' ``LiveStack``); ``uvicorn`` with the app (``--web-workers``), ``wushi worker`` and,
  once everyone is logged in, ``wushi simulate --rate R``.
- **What the browser sends is captured from the browser.** One headless Chromium logs in and
  opens ``/`` and ``/wall`` with two hooks installed before the page's scripts: one on
  ``window.fetch`` (every ``POST /_dash-update-component``: URL, body, answer) and one on
  ``MessagePort.postMessage`` (the ``callback_request`` the renderer hands to Dash's
  SharedWorker for the WebSocket). Ordinary callbacks go over HTTP; only the persistent live
  callback goes over the WebSocket (``/_dash-ws-callback``).
- **Each simulated page replays that protocol** (a small Dash renderer): it keeps the page's
  prop values, and when a prop changes (a user's choice, a callback's answer, or a ``set_props``
  pushed over the socket) it POSTs every server callback that has the prop as an input, with
  the captured request as the template and the page's current values filled in, exactly as the
  renderer would; answers update the props and fire the next callbacks in the chain. Each page
  also opens its own WebSocket with its session cookie and Origin, sends the captured
  ``callback_request`` of the persistent live callback, answers the server's
  ``get_props_request`` (filters, language) from its props, sends Dash's heartbeat every 10 s,
  and so also fires any HTTP callback a live push would trigger. Clientside callbacks are not
  run, except two: the ``live-selection`` mirror the live callback reads (answered from the
  page's props), and the wall's rotation (every 20 s the metric and highlighted town change,
  from the page's ``wall-rotation`` data, as the clock-driven JavaScript does), which fires the
  map callback. A callback already in flight for
  a page is sent again once it returns, with the newest values (triggers meanwhile merged).
- **N tablet users** (``--tablets``; ``--town-share`` of them are town officials, the rest
  district leaders), each logged in through ``POST /login`` with its own account and cookie,
  load ``/`` (HTML, layout, dependencies, the page's initial callbacks) and then, after a think
  time (``--think``, seconds), change a filter: a town (district users), a village of the town
  shown, or the period (this year, last year, the last 30 days, last year to date), and wait
  for every callback of the chain.
- **M wall screens** (``--walls``): pages of ``/wall`` replayed as above (a wall account, one
  session each). Chromium ×20 at 200 events/s would need several cores for the browsers alone
  (one wall page keeps most of a core busy, see docs/performance.md), so walls speak Dash's
  socket protocol; ``--browser-walls K`` makes K of them real Chromium pages (one browser, K
  tabs, measured in the DOM) as a cross-check.
- **Event to screen**: a ``call.key`` probe event for a real device is published every
  ``--probe-every`` seconds through the producer path; its latency on a wall is the time from
  just before the XADD to the socket message (or, on a Chromium wall, the DOM mutation) that
  first carries its ``data-event-id`` in ``#live-feed``.

Reported: p50/p95 of callback latency (per kind and per trigger: filter changes, live pushes,
page loads, rotation), of a whole filter change (first request to last answer of the chain),
of event → screen; errors (HTTP status >= 400, timeouts, socket closes, callback errors, error
lines in the servers' logs, dead letters; target none); RSS and CPU of web, worker, Redis,
simulator, the PostgreSQL backends, this load generator and Chromium; the machine's ``uptime``
at start and end. Exit status 1 on any error. ``--json`` writes every raw figure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import datetime as dt
import json
import os
import random
import re
import shutil
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    Sampler,
    Stack,
    add_users,
    copy_database,
    cpu_share,
    district_of,
    drop_database,
    entries_added,
    fmt_ms,
    group_backlog,
    log,
    machine_cpu_busy,
    markdown_table,
    pct,
    pg_admin_url,
    pg_create,
    probe_devices,
    probe_event,
    raise_on_signal,
    seed_database,
    uptime,
)

PASSWORD = "load-password-1"
# The event ids in the feed's HTML (layouts/components.py, ``feed_item``).
EVENT_ID = re.compile(r'data-event-id="([^"]+)"')
CAPTURE_USER = "load-capture"
WALL_USER = "load-wall"
HEARTBEAT_S = 10.0  # the app's websocket_heartbeat_interval
ROTATE_S = 20  # callbacks/wall.py
MAX_CONNECTIONS = 6  # Chromium's connections per host (HTTP/1.1)
TARGET_EVENT_P95_MS = 250.0  # docs/performance.md (UI)
# The callbacks of the chain being answered, so that a cycle is not followed.
_CHAIN: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar("chain", default=())

# --- Capture -----------------------------------------------------------------------------------

CAPTURE_HOOK = """
(() => {
  window.__posts = []; window.__wsreq = []; window.__inflight = 0;
  const origFetch = window.fetch;
  window.fetch = async function(input, init) {
    const url = typeof input === 'string' ? input : input.url;
    const isCb = init && init.method === 'POST' && url.includes('_dash-update-component');
    if (!isCb) return origFetch.apply(this, arguments);
    const rec = {url, body: init.body, t0: Date.now()};
    window.__inflight++;
    try {
      const res = await origFetch.apply(this, arguments);
      rec.status = res.status; rec.t1 = Date.now();
      try { rec.response = await res.clone().text(); } catch (e) {}
      window.__posts.push(rec);
      return res;
    } finally { window.__inflight--; }
  };
  const post = MessagePort.prototype.postMessage;
  MessagePort.prototype.postMessage = function(m, ...rest) {
    try {
      if (m && m.type === 'callback_request') window.__wsreq.push(JSON.parse(JSON.stringify(m)));
    } catch (e) {}
    return post.call(this, m, ...rest);
  };
})();
"""

FEED_OBSERVER = """
(() => {
  const feed = document.getElementById('live-feed');
  if (!feed) return false;
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
  new MutationObserver(mutations => {
    const t = performance.timeOrigin + performance.now();
    for (const m of mutations) {
      if (m.type === 'attributes') scan(m.target, t);
      else m.addedNodes.forEach(n => scan(n, t));
    }
  }).observe(feed, {childList: true, subtree: true, attributes: true,
                    attributeFilter: ['data-event-id']});
  return true;
})()
"""


@dataclass
class Captured:
    """What one real browser sent, per page path, and the app's callback graph."""

    templates: dict[str, dict[str, dict[str, Any]]]  # path -> output key -> request body
    order: dict[str, list[str]]  # path -> output keys in the order first sent
    first_changed: dict[str, dict[str, list[str]]]  # path -> output -> changedPropIds, 1st time
    query: dict[str, str]  # path -> the ?endId=... of its callback URL
    store: dict[str, dict[str, Any]]  # path -> "id.prop" -> value
    persistent: dict[str, list[dict[str, Any]]]  # path -> WebSocket callback payloads
    by_input: dict[str, list[str]]  # "id.prop" -> server callbacks' output keys
    inputs_of: dict[str, list[str]]  # output key -> its input "id.prop"s
    outputs_of: dict[str, list[str]]  # output key -> its output "id.prop"s
    watched: set[str] = field(default_factory=set)  # props some template sends back

    def __post_init__(self) -> None:
        for templates in self.templates.values():
            for body in templates.values():
                for item in flat(body.get("inputs")) + flat(body.get("state")):
                    key = prop_key(item)
                    if key:
                        self.watched.add(key)


def id_text(cid: Any) -> str | None:
    """Return a component id as text: itself, or a dict id as canonical JSON (None: wildcard)."""
    if isinstance(cid, str):
        if not cid.startswith("{"):
            return cid
        try:
            cid = json.loads(cid)
        except ValueError:
            return cid
    if not isinstance(cid, dict) or any(isinstance(v, list) for v in cid.values()):
        return None
    return json.dumps(cid, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def prop_key(item: dict[str, Any]) -> str | None:
    """Return "id.prop" of a callback argument (None for a wildcard id)."""
    cid = id_text(item.get("id"))
    if cid is None:
        return None
    return f"{cid}.{str(item.get('property', '')).split('@', 1)[0]}"


def flat(items: Any) -> list[dict[str, Any]]:
    """Flatten a callback's inputs/state/outputs (wildcards give nested lists)."""
    if isinstance(items, dict):
        return [items]
    out: list[dict[str, Any]] = []
    for item in items or []:
        out += flat(item)
    return out


def walk_layout(node: Any, store: dict[str, Any]) -> None:
    """Record every component prop (but children) of a layout tree in ``store``."""
    if isinstance(node, list):
        for child in node:
            walk_layout(child, store)
        return
    if not isinstance(node, dict):
        return
    props = node.get("props")
    if isinstance(props, dict):
        cid = id_text(props.get("id"))
        for name, value in props.items():
            if name == "children":
                walk_layout(value, store)
            elif cid is not None and name != "id":
                store[f"{cid}.{name}"] = value
                walk_layout(value, store)


def apply_response(
    body: dict[str, Any], store: dict[str, Any], keep: set[str] | None = None
) -> set[str]:
    """Apply a callback answer's props to ``store``; return the "id.prop"s it set.

    With ``keep``, only those props are stored (what some callback sends back as an input or
    a state); the others only trigger.
    """
    changed: set[str] = set()
    for part in ("response", "sideUpdate"):
        for raw_id, props in (body.get(part) or {}).items():
            cid = id_text(raw_id)
            if cid is None or not isinstance(props, dict):
                continue
            for name, value in props.items():
                key = f"{cid}.{name.split('@', 1)[0]}"
                if keep is None or key in keep:
                    store[key] = value
                changed.add(key)
    return changed


async def capture(base: str, paths: list[str], timeout_s: float = 45.0) -> Captured:
    """Log in with Chromium, open each path with the hooks, and read what the page sent."""
    import httpx
    from browser import CHROMIUM, CHROMIUM_ARGS
    from playwright.async_api import async_playwright

    if not Path(CHROMIUM).exists():
        raise SystemExit(f"{CHROMIUM} is missing: `make system-deps` installs it")
    templates: dict[str, dict[str, dict[str, Any]]] = {}
    order: dict[str, list[str]] = {}
    first_changed: dict[str, dict[str, list[str]]] = {}
    query: dict[str, str] = {}
    stores: dict[str, dict[str, Any]] = {}
    persistent: dict[str, list[dict[str, Any]]] = {}
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = await browser.new_context(viewport={"width": 1366, "height": 1024})
            page = await context.new_page()
            await login_page(page, base, CAPTURE_USER)
            await page.close()

            async def one(path: str) -> None:
                page = await context.new_page()
                await page.add_init_script(CAPTURE_HOOK)
                await page.goto(f"{base}{path}")
                posts, ws = await _settled(page, timeout_s)
                await page.close()
                store: dict[str, Any] = {}
                templates[path], order[path], first_changed[path] = {}, [], {}
                for rec in posts:
                    body = json.loads(rec["body"])
                    out = body["output"]
                    if out not in templates[path]:
                        order[path].append(out)
                        first_changed[path][out] = list(body.get("changedPropIds") or [])
                    templates[path][out] = body
                    query[path] = rec["url"].partition("?")[2]
                    for item in flat(body.get("inputs")) + flat(body.get("state")):
                        key = prop_key(item)
                        if key and "value" in item:
                            store[key] = item["value"]
                    if rec.get("status") == 200 and rec.get("response"):
                        answer = json.loads(rec["response"])
                        page_tree = (answer.get("response") or {}).get("page-content", {})
                        walk_layout(page_tree.get("children"), store)
                        apply_response(answer, store)
                stores[path] = store
                persistent[path] = [m["payload"] for m in ws]

            # The pages at once, as a person with two tabs would: it halves the capture's time.
            await asyncio.gather(*(one(path) for path in paths))
            cookies = {c["name"]: c["value"] for c in await context.cookies()}
        finally:
            await browser.close()
    async with httpx.AsyncClient(base_url=base, cookies=cookies) as client:
        deps = (await client.get("/_dash-dependencies")).json()
    by_input: dict[str, list[str]] = defaultdict(list)
    inputs_of: dict[str, list[str]] = {}
    outputs_of: dict[str, list[str]] = {}
    for dep in deps:
        if dep.get("clientside_function"):
            continue
        out = dep["output"]
        keys = [k for k in (prop_key(i) for i in dep.get("inputs", [])) if k]
        inputs_of[out] = keys
        for key in keys:
            by_input[key].append(out)
        outputs_of[out] = [k for k in (prop_key(o) for o in _outputs_of(out)) if k]
    return Captured(
        templates,
        order,
        first_changed,
        query,
        stores,
        persistent,
        dict(by_input),
        inputs_of,
        outputs_of,
    )


def _outputs_of(output_key: str) -> list[dict[str, Any]]:
    """Split Dash's output key ("..a.b...c.d.." or "a.b") into {id, property} items."""
    parts = output_key[2:-2].split("...") if output_key.startswith("..") else [output_key]
    out = []
    for part in parts:
        if part.startswith("{"):
            continue
        cid, _, prop = part.rpartition(".")
        out.append({"id": cid, "property": prop})
    return out


async def _settled(page: Any, timeout_s: float) -> tuple[list[dict[str, Any]], list[Any]]:
    """Wait until the page is done: its live callback sent, no callback pending for 1 s.

    "Pending" is Dash's own view (the renderer's redux store, ``isLoading``: callbacks
    requested, waiting for a lazily loaded component, or executing), plus fetches in flight.
    """
    state = """[window.__posts.length, window.__inflight, window.__wsreq.length,
                !!window.store && !!window.store.getState().isLoading]"""
    deadline = time.monotonic() + timeout_s
    last_n, quiet_since = -1, time.monotonic()
    while time.monotonic() < deadline:
        n, inflight, ws, loading = await page.evaluate(state)
        if n != last_n or inflight or loading:
            last_n, quiet_since = n, time.monotonic()
        elif n and ws and time.monotonic() - quiet_since >= 1.0:
            break
        await asyncio.sleep(0.2)
    else:
        raise TimeoutError(f"{page.url} did not settle in {timeout_s} s")
    return await page.evaluate("window.__posts"), await page.evaluate("window.__wsreq")


async def login_page(page: Any, base: str, username: str) -> None:
    """Log a Chromium page in through the real form."""
    await page.goto(f"{base}/login")
    await page.fill("input[name=username]", username)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url(lambda url: "/login" not in url, timeout=30_000)


# --- Recording ---------------------------------------------------------------------------------


@dataclass
class Record:
    """Everything measured, with wall-clock times so the warm-up can be cut off."""

    calls: list[tuple[float, str, str, float, int]] = field(default_factory=list)
    interactions: list[tuple[float, str, float, int]] = field(default_factory=list)
    loads: list[tuple[float, str, float]] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)
    probes: dict[str, float] = field(default_factory=dict)  # id -> time.time() before XADD
    seen: dict[str, dict[str, float]] = field(default_factory=dict)  # page -> id -> time
    published: dict[str, float] = field(default_factory=dict)  # id -> on the live channel
    ws_messages: Counter[str] = field(default_factory=Counter)
    pushes: Counter[str] = field(default_factory=Counter)  # "<path> <component id>" per set_props

    def error(self, kind: str, detail: str) -> None:
        self.errors[kind] += 1
        self.examples.setdefault(kind, detail[:300])


def label(output: str) -> str:
    """A short name for a callback: its first output's id (a chart's name for chart ids)."""
    first = output[2:].split("...")[0] if output.startswith("..") else output
    if first.startswith("{"):
        try:
            cid = json.loads(first.rpartition("}")[0] + "}")
            return str(cid.get("chart") or cid.get("table") or first)
        except ValueError:
            return first[:40]
    name = first.rpartition(".")[0] if "." in first else first
    names = {"kpi-tiles-html": "tiles", "grid-style": "map", "filter-village": "choices"}
    return names.get(name, name)


# --- One simulated page ------------------------------------------------------------------------


class Page:
    """One open page (``/`` or ``/wall``) of one logged-in browser, replaying Dash's protocol."""

    def __init__(
        self,
        run: Run,
        name: str,
        path: str,
        username: str,
        watch_probes: bool = False,
    ) -> None:
        import httpx

        self.run = run
        self.name = name
        self.path = path
        self.username = username
        self.watch_probes = watch_probes
        cap = run.cap
        self.templates = cap.templates[path]
        self.store: dict[str, Any] = dict(cap.store[path])
        self.url = f"/_dash-update-component?{cap.query.get(path, '')}".rstrip("?")
        self.client = httpx.AsyncClient(
            base_url=run.base,
            timeout=httpx.Timeout(60.0),
            limits=httpx.Limits(max_connections=MAX_CONNECTIONS),
            headers={"Accept": "application/json"},
        )
        self.busy: dict[str, asyncio.Future[None]] = {}
        self.again: dict[str, set[str]] = {}
        self.seen: dict[str, float] = {}
        self.run.record.seen[name] = self.seen
        self.tasks: list[asyncio.Task[Any]] = []
        self.feed_ready = asyncio.Event()  # the live callback has pushed the feed once

    @property
    def rec(self) -> Record:
        return self.run.record

    async def login(self) -> None:
        """``POST /login`` with the form, as the browser does; keep the session cookie."""
        from dashboard.sessions import COOKIE_NAME

        r = await self.client.post(
            "/login", data={"username": self.username, "password": PASSWORD, "next": self.path}
        )
        if r.status_code != 303 or COOKIE_NAME not in self.client.cookies:
            raise RuntimeError(f"login of {self.username} failed: HTTP {r.status_code}")

    async def load(self) -> None:
        """Load the page: HTML, layout, dependencies, then the page's first callbacks."""
        t0 = time.perf_counter()
        for url in (self.path, "/_dash-layout", "/_dash-dependencies"):
            r = await self.client.get(url, headers={"Accept": "text/html,application/json"})
            if r.status_code != 200:
                self.rec.error("http", f"GET {url}: {r.status_code}")
        cap = self.run.cap
        produced = {k for out in self.templates for k in cap.outputs_of.get(out, [])}
        roots = []
        for out in cap.order[self.path]:
            # As the browser first sent it (a later request of the same callback may have been
            # triggered by a live push, which the server answers differently).
            changed = set(cap.first_changed[self.path][out])
            own = set(cap.outputs_of.get(out, []))
            if not (changed - own) & produced:
                roots.append((out, changed))
        await asyncio.gather(*(self.call(out, changed, "load") for out, changed in roots))
        self.rec.loads.append((time.time(), self.path, (time.perf_counter() - t0) * 1000))

    def dependents(self, changed: set[str], source: str | None) -> list[str]:
        outs: list[str] = []
        for key in changed:
            for out in self.run.cap.by_input.get(key, []):
                if out != source and out in self.templates and out not in outs:
                    outs.append(out)
        return outs

    async def fire(self, changed: set[str], tag: str, source: str | None = None) -> int:
        """POST every callback with one of ``changed`` as an input; return how many ran."""
        outs = self.dependents(changed, source)
        counts = await asyncio.gather(*(self.call(out, changed, tag) for out in outs))
        return sum(counts)

    async def call(self, output: str, changed: set[str], tag: str) -> int:
        """Run one callback (and its chain); merge into a run already in flight."""
        chain = _CHAIN.get()
        if output in chain:  # a cycle: Dash does not follow it either
            return 0
        _CHAIN.set((*chain, output))
        if output in self.busy:
            self.again.setdefault(output, set()).update(changed)
            await asyncio.shield(self.busy[output])
            return 0
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.busy[output] = done
        n = 0
        try:
            while True:
                n += 1
                updated = await self.post(output, changed, tag)
                if updated:
                    n += await self.fire(updated, tag, source=output)
                if output not in self.again:
                    break
                changed = self.again.pop(output)
        finally:
            del self.busy[output]
            done.set_result(None)
        return n

    def payload(self, output: str, changed: set[str]) -> dict[str, Any]:
        body = json.loads(json.dumps(self.templates[output]))
        for item in flat(body.get("inputs")) + flat(body.get("state")):
            key = prop_key(item)
            if key and key in self.store:
                item["value"] = self.store[key]
        inputs = self.run.cap.inputs_of.get(output, [])
        ids = [k for k in inputs if k in changed]
        body["changedPropIds"] = ids
        body["parsedChangedPropsIds"] = ids
        return body

    async def post(self, output: str, changed: set[str], tag: str) -> set[str]:
        import httpx

        body = self.payload(output, changed)
        t0 = time.perf_counter()
        try:
            r = await self.client.post(self.url, json=body)
        except httpx.HTTPError as exc:
            self.rec.error("http", f"{label(output)}: {type(exc).__name__} {exc}")
            return set()
        ms = (time.perf_counter() - t0) * 1000
        self.rec.calls.append((time.time(), tag, label(output), ms, r.status_code))
        if r.status_code == 204:
            return set()
        if r.status_code != 200:
            self.rec.error("http", f"{label(output)}: HTTP {r.status_code} {r.text[:200]}")
            return set()
        return apply_response(r.json(), self.store, self.run.cap.watched)

    # --- the live socket ---

    async def live(self, stop: asyncio.Event) -> None:
        """Hold the page's WebSocket, reconnecting like Dash's worker does after a close."""
        delay = 1.0
        while not stop.is_set():
            try:
                await self._socket(stop)
                delay = 1.0
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if stop.is_set():
                    return
                self.rec.error("websocket", f"{self.name}: {type(exc).__name__} {exc}")
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)

    async def _socket(self, stop: asyncio.Event) -> None:
        from websockets.asyncio.client import connect

        from dashboard.sessions import COOKIE_NAME

        cookie = self.client.cookies.get(COOKIE_NAME)
        url = self.run.base.replace("http://", "ws://") + "/_dash-ws-callback"
        renderer = str(uuid.uuid4())
        async with connect(
            url,
            additional_headers={"Cookie": f"{COOKIE_NAME}={cookie}", "Origin": self.run.base},
            max_size=None,
            ping_interval=None,
            open_timeout=60,
        ) as ws:
            for i, payload in enumerate(self.run.cap.persistent[self.path], start=1):
                message = {
                    "type": "callback_request",
                    "rendererId": renderer,
                    "requestId": f"{renderer}-{i}",
                    "payload": payload,
                }
                await ws.send(json.dumps(message))
            beat = asyncio.create_task(self._heartbeat(ws))
            try:
                while not stop.is_set():
                    try:
                        raw = await asyncio.wait_for(ws.recv(), timeout=1.0)
                    except TimeoutError:
                        continue
                    await self._handle(ws, raw, renderer)
                await ws.close()
            finally:
                beat.cancel()

    async def _heartbeat(self, ws: Any) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_S)
            await ws.send('{"type": "heartbeat"}')

    async def _handle(self, ws: Any, raw: str | bytes, renderer: str) -> None:
        now = time.time()
        data = json.loads(raw)
        changed: set[str] = set()
        for msg in data if isinstance(data, list) else [data]:
            kind = msg.get("type")
            self.rec.ws_messages[str(kind)] += 1
            if kind == "set_props":
                payload = msg.get("payload") or {}
                cid = payload.get("componentId")
                props = payload.get("props") or {}
                cid = id_text(cid)
                if cid is None:
                    continue
                self.rec.pushes[f"{self.path} {cid}"] += 1
                for name, value in props.items():
                    key = f"{cid}.{name}"
                    self.store[key] = value
                    changed.add(key)
                if cid == "live-feed-html":
                    self.feed_ready.set()
                    if self.watch_probes:
                        self._probes(props.get("html"), now)
            elif kind == "get_props_request":
                payload = msg.get("payload") or {}
                cid = id_text(payload.get("componentId"))
                if cid == "live-selection":
                    # Filled in the browser by a clientside callback from these props.
                    self.store["live-selection.data"] = self.selection()
                answer = {
                    name: self.store[f"{cid}.{name}"]
                    for name in payload.get("properties", [])
                    if f"{cid}.{name}" in self.store
                }
                reply = {
                    "type": "get_props_response",
                    "rendererId": renderer,
                    "requestId": msg.get("requestId"),
                    "payload": answer,
                }
                await ws.send(json.dumps(reply))
            elif kind == "callback_response":
                status = (msg.get("payload") or {}).get("status")
                if status == "error":
                    self.rec.error("callback", f"{self.name}: {msg.get('payload')}")
        if changed:
            task = asyncio.create_task(self.fire(changed, "live"))
            self.tasks.append(task)
            self.tasks = [t for t in self.tasks if not t.done()]

    def selection(self) -> dict[str, Any]:
        """What the page's clientside ``live-selection`` callback mirrors (callbacks/live.py)."""
        return {
            "filters": self.store.get("filters-store.data") or {},
            "lang": self.store.get("lang-store.data"),
            "path": self.path,
            "metric": self.store.get("filter-metric.value"),
            "focus": self.store.get("wall-focus.data"),
        }

    def _probes(self, feed: Any, now: float) -> None:
        """Note the probes among the entries of a pushed feed (its HTML, as the page gets it)."""
        probes = self.rec.probes
        for eid in EVENT_ID.findall(feed if isinstance(feed, str) else ""):
            if eid in probes and eid not in self.seen:
                self.seen[eid] = now

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await self.client.aclose()


# --- Users -------------------------------------------------------------------------------------


def periods(today: dt.date) -> list[tuple[str, str]]:
    """The periods a leader switches between (start, end)."""
    first = dt.date(today.year, 1, 1)
    last_year = dt.date(today.year - 1, 1, 1)
    return [
        (first.isoformat(), today.isoformat()),
        (last_year.isoformat(), dt.date(today.year - 1, 12, 31).isoformat()),
        ((today - dt.timedelta(days=30)).isoformat(), today.isoformat()),
        (last_year.isoformat(), today.replace(year=today.year - 1).isoformat()),
    ]


async def tablet(page: Page, role: str, towns: list[str], stop: asyncio.Event) -> None:
    """A leader on a tablet: load ``/``, then change a filter after each think time."""
    from datasources.periods import SHANGHAI

    rng = random.Random(page.name)
    run = page.run
    lo, hi = run.think
    await asyncio.sleep(rng.uniform(0, run.args.warmup / 2))  # people do not all start at once
    await page.load()
    choices = periods(dt.datetime.now(SHANGHAI).date())
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), timeout=rng.uniform(lo, hi))
            return
        except TimeoutError:
            pass
        if run.max_interactions and len(run.record.interactions) >= run.max_interactions:
            return
        kinds = ["village", "period"] if role == "town" else ["town", "village", "period"]
        kind = rng.choice(kinds)
        store = page.store
        options = [o.get("value") for o in store.get("filter-village.options") or []]
        if kind == "village" and not options:
            kind = "period" if role == "town" else "town"
        if kind == "town":
            store["filter-town.value"] = rng.choice(towns)
            changed = {"filter-town.value"}
        elif kind == "village":
            store["filter-village.value"] = rng.choice(options)
            changed = {"filter-village.value"}
        else:
            start, end = rng.choice(choices)
            store["filter-period.start_date"], store["filter-period.end_date"] = start, end
            changed = {"filter-period.start_date", "filter-period.end_date"}
        changed |= mirror_filters(store, kind)
        t0 = time.perf_counter()
        n = await page.fire(changed, "filter")
        run.record.interactions.append((time.time(), kind, (time.perf_counter() - t0) * 1000, n))


def mirror_filters(store: dict[str, Any], kind: str) -> set[str]:
    """Do what the page's clientside filters callback does (``callbacks/filters.py``): set
    ``filters-store`` from the dropdowns after a town, village or period choice."""
    town, village = store.get("filter-town.value"), store.get("filter-village.value")
    if kind == "town":
        village = None
    elif kind == "village" and village:
        town = village[:9]
    scope = store.get("filter-scope.data") or {}
    town = scope.get("town") or town
    changed = {"filters-store.data"}
    for key, value in (("filter-town.value", town), ("filter-village.value", village)):
        if store.get(key) != value:
            store[key] = value
            changed.add(key)
    store["filters-store.data"] = {
        "town": town,
        "village": village,
        "grid": None,
        "start": (store.get("filter-period.start_date") or "")[:10] or None,
        "end": (store.get("filter-period.end_date") or "")[:10] or None,
    }
    return changed


async def wall(page: Page, stop: asyncio.Event) -> None:
    """A wall screen: load ``/wall``; every 20 s the metric and highlighted town rotate."""
    await asyncio.sleep(random.Random(page.name).uniform(0, page.run.args.warmup / 2))
    await page.load()
    slot = int(time.time() // ROTATE_S)
    while not stop.is_set():
        nxt = (slot + 1) * ROTATE_S
        try:
            await asyncio.wait_for(stop.wait(), timeout=max(0.0, nxt - time.time()))
            return
        except TimeoutError:
            pass
        slot = int(time.time() // ROTATE_S)
        rotation = page.store.get("wall-rotation.data") or {}
        metrics, towns = rotation.get("metrics") or [], rotation.get("towns") or []
        changed = set()
        if metrics:
            page.store["filter-metric.value"] = metrics[slot % len(metrics)]
            changed.add("filter-metric.value")
        if towns:
            page.store["wall-focus.data"] = towns[slot % len(towns)]
            changed.add("wall-focus.data")
        if changed:
            await page.fire(changed, "rotate")


# --- The run -----------------------------------------------------------------------------------


class Run:
    """One load run: the stack, the captured protocol, the pages, the figures."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.record = Record()
        self.think = tuple(float(x) for x in args.think.split(":"))
        self.max_interactions = args.max_interactions
        self.base = ""
        self.cap: Captured
        self.samples: list[dict[str, Any]] = []

    async def channel_loop(self, redis_url: str, channel: str, stop: asyncio.Event) -> None:
        """Note when each probe is published by the worker on the live channel."""
        import redis.asyncio as aioredis

        r = aioredis.from_url(redis_url)
        pubsub = r.pubsub()
        await pubsub.subscribe(channel)
        try:
            while not stop.is_set():
                msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.5)
                if not msg or msg.get("type") != "message":
                    continue
                now = time.time()
                probes, published = self.record.probes, self.record.published
                for entry in json.loads(msg["data"]):
                    eid = entry.get("id")
                    if eid in probes and eid not in published:
                        published[eid] = now
        finally:
            await pubsub.aclose()
            await r.aclose()

    async def probe_loop(self, redis_url: str, key: str, devices: list, stop: asyncio.Event):
        from redis import Redis

        from datasources.stream import publish

        redis = Redis.from_url(redis_url)
        i = 0
        try:
            next_at = time.monotonic()
            while not stop.is_set():
                device, grid = devices[i % len(devices)]
                i += 1
                event = probe_event(device, grid)
                self.record.probes[event["id"]] = time.time()
                await asyncio.to_thread(publish, redis, key, [event], 2_000_000)
                next_at += self.args.probe_every
                try:
                    await asyncio.wait_for(stop.wait(), max(0.0, next_at - time.monotonic()))
                except TimeoutError:
                    pass
        finally:
            redis.close()

    async def sample_loop(
        self, sampler: Sampler, redis_url: str, every: float, stop: asyncio.Event
    ) -> None:
        """Sample every process's RSS and CPU, and Redis's own memory and key count."""
        from redis import Redis

        redis = Redis.from_url(redis_url)
        while True:
            moment = time.time()
            roles = await asyncio.to_thread(sampler.sample)
            procs = await asyncio.to_thread(sampler.per_process_rss)
            info = await asyncio.to_thread(redis.info, "memory")
            keys = await asyncio.to_thread(redis.dbsize)
            self.samples.append(
                {
                    "t": moment,
                    "roles": roles,
                    "procs": procs,
                    "redis_used_mb": info["used_memory"] / 2**20,
                    "redis_keys": keys,
                }
            )
            try:
                await asyncio.wait_for(stop.wait(), every)
                redis.close()
                return
            except TimeoutError:
                pass


def prepare_database(args: argparse.Namespace, workdir: Path) -> tuple[str, bool]:
    """Return (URL of the database to serve, whether it is ours to drop)."""
    if args.db:
        log(f"copying {args.db} ...")
        return copy_database(args.db, workdir, "load"), True
    if args.backend == "sqlite":
        url = f"sqlite:///{workdir / 'load.db'}"
    else:
        url = pg_create(f"wushi_load_{uuid.uuid4().hex[:8]}")
    log(f"seeding {url.rpartition('/')[2]} (history scale {args.history_scale:g}) ...")
    log(f"seeded in {seed_database(url, history_scale=args.history_scale):.0f} s")
    return url, True


async def run_load(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Run the whole benchmark; return the raw figures."""
    from sqlalchemy import select

    from dashboard.embedded_redis import EmbeddedRedis
    from dashboard.settings import Settings
    from datasources.db import make_engine
    from datasources.models import Town

    run = Run(args)
    result: dict[str, Any] = {"config": vars(args), "uptime_start": uptime()}
    log(f"uptime: {result['uptime_start']}")
    url, ours = prepare_database(args, workdir)
    result["database"] = url.rpartition("/")[2] if "postgresql" in url else "sqlite"
    stack: Stack | None = None
    try:
        district = district_of(url)
        engine = make_engine(url)
        with engine.connect() as conn:
            towns = sorted(str(c) for c in conn.scalars(select(Town.code)))
        engine.dispose()
        n_town = round(args.tablets * args.town_share)
        users = [
            (CAPTURE_USER, PASSWORD, "district", None),
            (WALL_USER, PASSWORD, "district", None),
        ]
        roles: list[tuple[str, str]] = []
        for i in range(args.tablets):
            role = "town" if i < n_town else "district"
            name = f"load-tab{i:03d}"
            users.append((name, PASSWORD, role, towns[i % len(towns)] if role == "town" else None))
            roles.append((name, role))
        log(f"adding {len(users)} logins ...")
        add_users(url, users)
        devices = probe_devices(url)
        async with AsyncExitStack() as exits:
            redis_server = EmbeddedRedis(workdir / "redis").start()
            exits.callback(redis_server.stop)
            extra = {"WUSHI_STREAM_MAXLEN": str(args.stream_maxlen)} if args.stream_maxlen else {}
            stack = Stack(url, redis_server.url, workdir, district, extra)
            exits.callback(stack.stop)
            stack.start_worker()
            web = stack.start_web(args.web_workers)
            run.base = stack.base
            log(f"web on {stack.base} ({args.web_workers} process(es)), worker running")
            log("capturing what the browser sends on / and /wall ...")
            run.cap = await capture(stack.base, ["/", "/wall"])
            for path in ("/", "/wall"):
                log(
                    f"  {path}: {len(run.cap.templates[path])} HTTP callbacks "
                    f"({', '.join(label(o) for o in run.cap.order[path])}), "
                    f"{len(run.cap.persistent[path])} WebSocket callback(s)"
                )
            result["captured"] = {p: [label(o) for o in run.cap.order[p]] for p in run.cap.order}
            stop = asyncio.Event()
            walls = [
                Page(run, f"wall{i:02d}", "/wall", WALL_USER, watch_probes=True)
                for i in range(args.walls - args.browser_walls)
            ]
            tablets = [Page(run, name, "/", name) for name, _ in roles]
            pages = walls + tablets
            log(f"logging in {len(pages)} pages ...")
            gate = asyncio.Semaphore(4)

            async def login(page: Page) -> None:
                async with gate:
                    await page.login()

            await asyncio.gather(*(login(p) for p in pages))
            for page in pages:
                exits.push_async_callback(page.close)
            simulator = stack.start_simulator(args.rate)
            roots = {
                "web": [web.pid],
                "worker": [p.pid for p in stack.procs if p.role == "worker"],
                "simulator": [simulator.pid],
                "redis": [redis_server.process.pid] if redis_server.process else [],
            }
            pg_db = [url.rpartition("/")[2]] if url.startswith("postgresql") else []
            sampler = Sampler(roots, url if pg_db else None, pg_db)
            exits.callback(sampler.close)
            tasks: list[asyncio.Task[Any]] = []
            browser_task = None
            browsers_ready = asyncio.Event()
            if args.browser_walls:
                browser_task = asyncio.create_task(
                    browser_walls(run, args.browser_walls, stop, browsers_ready)
                )
            else:
                browsers_ready.set()
            for page in pages:
                tasks.append(asyncio.create_task(page.live(stop)))
            tasks += [asyncio.create_task(wall(p, stop)) for p in walls]
            tasks += [
                asyncio.create_task(tablet(p, role, towns, stop))
                for p, (_, role) in zip(tablets, roles, strict=True)
            ]
            log(
                f"warming up {args.warmup:g} s ({len(tablets)} tablets, {len(walls)} socket "
                f"walls, {args.browser_walls} Chromium walls, {args.rate:g} events/s) ..."
            )
            await asyncio.sleep(args.warmup)
            # The window starts once every wall shows its feed (late walls would miss probes).
            waits = [p.feed_ready.wait() for p in walls] + [browsers_ready.wait()]
            try:
                await asyncio.wait_for(asyncio.gather(*waits), timeout=120)
            except TimeoutError:
                raise RuntimeError("the walls did not show their live feed within 120 s") from None
            if browser_task is not None and browser_task.done():
                browser_task.result()  # raises what went wrong in Chromium
            probe_stop = asyncio.Event()
            sample_stop = asyncio.Event()
            sampler_task = asyncio.create_task(
                run.sample_loop(sampler, redis_server.url, args.sample_every, sample_stop)
            )
            key = Settings(district_code=district).stream_key("events")
            channel = Settings(district_code=district).stream_key("live")
            tasks.append(asyncio.create_task(run.channel_loop(redis_server.url, channel, stop)))
            await asyncio.sleep(0.2)  # subscribed before the first probe
            probe_task = asyncio.create_task(
                run.probe_loop(redis_server.url, key, devices, probe_stop)
            )
            t_start = time.time()
            result["uptime_measure_start"] = uptime()
            log(f"measuring {args.duration:g} s; uptime: {result['uptime_measure_start']}")
            cpu0, wall0 = await asyncio.to_thread(sampler.sample), time.monotonic()
            busy0, added0 = (
                machine_cpu_busy(),
                _entries_added(redis_server.url, key, args.stream_maxlen),
            )
            await _sleep_watch(stack, args.duration)
            probe_stop.set()
            cpu1, wall1 = await asyncio.to_thread(sampler.sample), time.monotonic()
            busy1, added1 = (
                machine_cpu_busy(),
                _entries_added(redis_server.url, key, args.stream_maxlen),
            )
            t_end = time.time()
            result["uptime_end"] = uptime()
            log(f"draining the probes (up to {args.drain:g} s) ...")
            await probe_task
            await _drain(run, len(walls), args.drain)
            stop.set()
            chromium_seen = await browser_task if browser_task else {}
            sample_stop.set()
            await sampler_task
            await asyncio.wait(tasks, timeout=20)
            for task in tasks:
                task.cancel()
            result["backlog"] = _backlog(redis_server.url, key)
            result["deadletters"] = _deadletters(redis_server.url, district)
            result["log_errors"] = stack.log_errors()
            result["dead_processes"] = [f"{p.role} exit {p.popen.returncode}" for p in stack.dead()]
        seconds = wall1 - wall0
        capped = added0 is None or added1 is None
        result["stream_rate"] = None if capped else (added1 - added0) / seconds
        result["window"] = [t_start, t_end]
        result["cpu_cores"] = cpu_share(cpu0, cpu1, seconds)
        result["cpu_cores"]["machine (all users)"] = (busy1 - busy0) / seconds
        result["samples"] = run.samples
        result["chromium_seen"] = chromium_seen
        result["record"] = run.record
    finally:
        if stack is not None:
            stack.stop()
        if ours and not args.keep:
            drop_database(url)
    return result


async def _sleep_watch(stack: Stack, seconds: float) -> None:
    """Sleep, checking every second that the servers are alive."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        dead = stack.dead()
        if dead:
            raise RuntimeError(
                f"{dead[0].role} exited ({dead[0].popen.returncode}); see {dead[0].log}"
            )
        await asyncio.sleep(min(1.0, max(0.0, end - time.monotonic())))


async def _drain(run: Run, walls: int, timeout: float) -> None:
    """Wait until every socket wall has seen every probe, or ``timeout`` s."""
    end = time.monotonic() + timeout
    pages = [s for n, s in run.record.seen.items() if n.startswith("wall")][:walls]
    while time.monotonic() < end:
        if all(len(s) >= len(run.record.probes) for s in pages):
            return
        await asyncio.sleep(0.25)


def _backlog(redis_url: str, key: str) -> int:
    """Stream entries the worker group has not acknowledged yet (pending + unread)."""
    from redis import Redis

    with Redis.from_url(redis_url) as r:
        return group_backlog(r, key)


def _deadletters(redis_url: str, district: str) -> int:
    from redis import Redis

    with Redis.from_url(redis_url) as r:
        return int(r.xlen(f"wushi:{{{district}}}:deadletter"))


def _entries_added(redis_url: str, key: str, maxlen: int) -> int | None:
    """Entries added to the stream so far (XLEN where Redis < 7 does not count them)."""
    from redis import Redis

    with Redis.from_url(redis_url) as r:
        added = entries_added(r, key)
        if added is not None:
            return added
        # XLEN counts what was added only while the stream is below its cap.
        length = int(r.xlen(key))
        return None if length >= 0.9 * (maxlen or 2_000_000) else length


async def browser_walls(
    run: Run, k: int, stop: asyncio.Event, ready: asyncio.Event
) -> dict[str, dict[str, float]]:
    """K real Chromium ``/wall`` tabs in one browser; return probe id -> DOM time per tab."""
    from browser import CHROMIUM, CHROMIUM_ARGS
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = await browser.new_context(viewport={"width": 1920, "height": 1080})
            page = await context.new_page()
            await login_page(page, run.base, WALL_USER)
            await page.close()
            pages = []
            for _ in range(k):
                page = await context.new_page()
                await page.goto(f"{run.base}/wall")
                await page.wait_for_function(
                    "document.getElementById('ws-status')?.dataset.state === 'connected'",
                    timeout=60_000,
                )
                await page.wait_for_selector("#live-feed", timeout=60_000)
                await page.evaluate(FEED_OBSERVER)
                pages.append(page)
            ready.set()
            await stop.wait()
            out = {}
            ids = list(run.record.probes)
            for i, page in enumerate(pages):
                times = await page.evaluate(
                    "ids => ids.map(i => window.__seen.get(i) ?? null)", ids
                )
                out[f"chromium{i}"] = {e: t / 1000 for e, t in zip(ids, times, strict=True) if t}
            return out
        finally:
            ready.set()  # also on failure: the caller then reads the task's exception
            await browser.close()


# --- Report ------------------------------------------------------------------------------------


def summarize(result: dict[str, Any]) -> dict[str, Any]:
    """Turn the raw record into the reported figures (only what happened in the window)."""
    rec: Record = result["record"]
    t0, t1 = result["window"]
    probes = {i: t for i, t in rec.probes.items() if t0 <= t <= t1}
    calls = [c for c in rec.calls if t0 <= c[0] <= t1]
    by_tag: dict[str, list[float]] = defaultdict(list)
    by_label: dict[str, list[float]] = defaultdict(list)
    for _, tag, name, ms, _status in calls:
        by_tag[tag].append(ms)
        by_label[name].append(ms)
    inter = [i for i in rec.interactions if t0 <= i[0] <= t1]
    lat_ws: list[float] = []
    expected_ws = seen_ws = 0
    for name, seen in rec.seen.items():
        if not name.startswith("wall"):
            continue
        expected_ws += len(probes)
        for pid, sent in probes.items():
            if pid in seen:
                seen_ws += 1
                lat_ws.append((seen[pid] - sent) * 1000)
    lat_cr: list[float] = []
    expected_cr = seen_cr = 0
    for seen in (result.get("chromium_seen") or {}).values():
        expected_cr += len(probes)
        for pid, sent in probes.items():
            if pid in seen:
                seen_cr += 1
                lat_cr.append((seen[pid] - sent) * 1000)
    errors = Counter(rec.errors)
    if result.get("log_errors"):
        errors["server log"] += len(result["log_errors"])
    if result.get("deadletters"):
        errors["dead letters"] += result["deadletters"]
    if result.get("dead_processes"):
        errors["process exited"] += len(result["dead_processes"])
    examples = dict(rec.examples)
    published = {i: (rec.published[i] - t) * 1000 for i, t in probes.items() if i in rec.published}
    after_publish: list[float] = []
    for name, seen in rec.seen.items():
        if name.startswith("wall"):
            after_publish += [(seen[i] - rec.published[i]) * 1000 for i in published if i in seen]
    if expected_ws and seen_ws < expected_ws:
        errors["probes not shown (socket walls)"] += expected_ws - seen_ws
        walls = [seen for name, seen in rec.seen.items() if name.startswith("wall")]
        missed = {i: sum(i not in w for w in walls) for i in probes}
        missed = {i: n for i, n in missed.items() if n}
        unpublished = sum(i not in rec.published for i in missed)
        examples["probes not shown (socket walls)"] = (
            f"{len(missed)} distinct probe(s); {unpublished} of them never in a live-channel "
            f"message (the worker publishes a batch's newest 200 feed entries), the others "
            f"published but never in a wall's 30 newest; sent at "
            + ", ".join(f"+{probes[i] - t0:.1f} s (missed by {n})" for i, n in missed.items())[:200]
        )
    if expected_cr and seen_cr < expected_cr:
        errors["probes not shown (Chromium walls)"] += expected_cr - seen_cr
    samples = result.get("samples") or []
    roles = sorted({r for s in samples for r in s["roles"]})
    memory = {
        r: {
            "end": samples[-1]["roles"].get(r, {}).get("rss_mb", 0.0) if samples else 0.0,
            "peak": max((s["roles"].get(r, {}).get("rss_mb", 0.0) for s in samples), default=0),
            "n": samples[-1]["roles"].get(r, {}).get("n", 0) if samples else 0,
        }
        for r in roles
    }
    return {
        "seconds": t1 - t0,
        "calls": len(calls),
        "calls_per_s": len(calls) / max(t1 - t0, 1e-9),
        "by_tag": {k: _stat(v) for k, v in by_tag.items()},
        "by_label": {k: _stat(v) for k, v in sorted(by_label.items())},
        "all_calls": _stat([c[3] for c in calls]),
        "interactions": _stat([i[2] for i in inter]),
        "interaction_calls": sum(i[3] for i in inter) / max(len(inter), 1),
        "loads": _stat([x[2] for x in rec.loads]),
        "event_ws": {**_stat(lat_ws), "seen": seen_ws, "expected": expected_ws},
        "event_chromium": {**_stat(lat_cr), "seen": seen_cr, "expected": expected_cr},
        "event_published": {**_stat(list(published.values())), "seen": len(published)},
        "published_to_wall": _stat(after_publish),
        "probes": len(probes),
        "errors": dict(errors),
        "error_examples": examples,
        "memory": memory,
        "ws_messages": dict(rec.ws_messages),
        "pushes": dict(rec.pushes.most_common()),
    }


def _stat(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50": pct(values, 50),
        "p95": pct(values, 95),
        "max": max(values) if values else float("nan"),
    }


def report(result: dict[str, Any], s: dict[str, Any]) -> str:
    """Return the printed report: markdown tables ready to paste into docs/performance.md."""
    cfg = result["config"]

    def trio(st: dict[str, float]) -> str:
        return f"{fmt_ms(st['p50'])} / {fmt_ms(st['p95'])} / {fmt_ms(st['max'])}"

    rows = [
        [
            "load",
            f"{cfg['tablets']} tablets, {cfg['walls']} walls "
            f"({cfg['browser_walls']} in Chromium), {cfg['rate']:g} events/s, "
            f"{cfg['web_workers']} web process(es)",
            "",
        ],
        [
            "window",
            f"{s['seconds']:.0f} s after {cfg['warmup']:g} s warm-up; "
            f"{s['calls']} callbacks ({s['calls_per_s']:.1f}/s)",
            "",
        ],
        ["callbacks, all (ms p50 / p95 / max)", trio(s["all_calls"]), ""],
    ]
    for tag in ("filter", "live", "rotate", "load"):
        if tag in s["by_tag"]:
            st = s["by_tag"][tag]
            rows.append([f"callbacks from {tag} (n={st['n']})", trio(st), ""])
    st = s["interactions"]
    rows.append(
        [
            f"filter change → all panels answered (n={st['n']}, "
            f"{s['interaction_calls']:.1f} callbacks each)",
            trio(st),
            "",
        ]
    )
    ev = s["event_ws"]
    rows.append(
        [
            f"event → wall feed, socket walls ({ev['seen']}/{ev['expected']} seen)",
            trio(ev),
            f"all seen, p95 <= {TARGET_EVENT_P95_MS:g} ms",
        ]
    )
    ev = s["event_published"]
    rows.append(
        [
            f"  of which XADD → worker published ({ev['seen']}/{s['probes']} probes)",
            trio(ev),
            "",
        ]
    )
    rows.append(["  of which published → socket wall", trio(s["published_to_wall"]), ""])
    ev = s["event_chromium"]
    if ev["expected"]:
        rows.append(
            [
                f"event → wall feed DOM, Chromium ({ev['seen']}/{ev['expected']} seen)",
                trio(ev),
                "all seen",
            ]
        )
    total_errors = sum(s["errors"].values())
    rows.append(
        [
            "errors",
            str(total_errors)
            + (
                f" ({', '.join(f'{k} {v}' for k, v in s['errors'].items())})"
                if total_errors
                else ""
            ),
            "0",
        ]
    )
    rate = result.get("stream_rate")
    rows.append(["events added to the stream per s", "–" if rate is None else f"{rate:.0f}", ""])
    rows.append(
        [
            "worker backlog at end / dead letters",
            f"{result['backlog']} / {result['deadletters']}",
            "",
        ]
    )
    for role, m in s["memory"].items():
        rows.append(
            [
                f"RSS {role} ({m['n']} proc.), end / peak MiB",
                f"{m['end']:.0f} / {m['peak']:.0f}",
                "",
            ]
        )
    rows.append(
        [
            "CPU cores busy in the window",
            ", ".join(f"{k} {v:.2f}" for k, v in result["cpu_cores"].items()),
            "",
        ]
    )
    rows.append(["uptime, start of window", result["uptime_measure_start"], ""])
    rows.append(["uptime, end of window", result["uptime_end"], ""])
    out = [markdown_table(["figure", "value", "target"], rows), ""]
    out.append(
        markdown_table(
            ["callback", "n", "p50 ms", "p95 ms", "max ms"],
            [
                [k, v["n"], fmt_ms(v["p50"]), fmt_ms(v["p95"]), fmt_ms(v["max"])]
                for k, v in s["by_label"].items()
            ],
        )
    )
    if total_errors:
        out += ["", "errors (first of each kind):"]
        out += [f"- {k}: {v}" for k, v in s["error_examples"].items()]
        out += [f"- {line}" for line in result.get("log_errors", [])[:10]]
        out += [f"- {line}" for line in result.get("dead_processes", [])]
    return "\n".join(out)


def parser(**defaults: Any) -> argparse.ArgumentParser:
    """The command line (``soak.py`` reuses it with other defaults)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--db", help="seeded database to copy: sqlite:///file, a path, or postgresql://")
    p.add_argument(
        "--backend",
        choices=["postgresql", "sqlite"],
        default="postgresql",
        help="backend of a fresh seed (without --db)",
    )
    p.add_argument(
        "--history-scale",
        type=float,
        default=1.0,
        help="history of a fresh seed (0: people and callers only)",
    )
    p.add_argument("--tablets", type=int, default=100, help="tablet users changing filters")
    p.add_argument("--town-share", type=float, default=0.2, help="share of town officials")
    p.add_argument("--walls", type=int, default=20, help="open wall pages")
    p.add_argument(
        "--browser-walls", type=int, default=0, help="how many of the walls are real Chromium tabs"
    )
    p.add_argument("--rate", type=float, default=200.0, help="simulated events/s")
    p.add_argument("--duration", type=float, default=120.0, help="measured seconds")
    p.add_argument("--warmup", type=float, default=20.0, help="seconds before measuring")
    p.add_argument(
        "--drain",
        type=float,
        default=10.0,
        help="seconds the walls get after the window to show the last probes",
    )
    p.add_argument("--think", default="5:15", help="think time between filter changes, s (lo:hi)")
    p.add_argument(
        "--max-interactions",
        type=int,
        default=0,
        help="stop changing filters after this many changes in all (0: no limit)",
    )
    p.add_argument("--probe-every", type=float, default=0.5, help="seconds between probes")
    p.add_argument("--web-workers", type=int, default=1, help="uvicorn worker processes")
    p.add_argument(
        "--stream-maxlen",
        type=int,
        default=0,
        help="WUSHI_STREAM_MAXLEN for the run (0: the default)",
    )
    p.add_argument("--sample-every", type=float, default=5.0, help="seconds between RSS samples")
    p.add_argument("--json", help="write the raw figures here")
    p.add_argument("--keep", action="store_true", help="keep the work directory and database")
    p.set_defaults(**defaults)
    return p


def check_args(p: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.browser_walls > args.walls:
        p.error("--browser-walls cannot exceed --walls")
    lo, _, hi = args.think.partition(":")
    try:
        if not 0 <= float(lo) <= float(hi or lo):
            raise ValueError
    except ValueError:
        p.error("--think wants lo:hi seconds")
    if not args.think.count(":"):
        args.think = f"{args.think}:{args.think}"


def execute(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run the benchmark in a fresh work directory; return (raw result, summary)."""
    workdir = Path(tempfile.mkdtemp(prefix="wushi-load-"))
    try:
        result = asyncio.run(run_load(args, workdir))
        summary = summarize(result)
        if args.json:
            raw = dict(result)
            rec: Record = raw.pop("record")
            raw["record"] = {
                "calls": rec.calls,
                "interactions": rec.interactions,
                "loads": rec.loads,
                "errors": dict(rec.errors),
                "examples": rec.examples,
                "probes": rec.probes,
                "seen": rec.seen,
                "published": rec.published,
            }
            Path(args.json).write_text(
                json.dumps({"result": raw, "summary": summary}, indent=1, default=str)
            )
        return result, summary
    finally:
        if args.keep:
            log(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    p = parser()
    args = p.parse_args()
    check_args(p, args)
    raise_on_signal()
    log(f"{os.cpu_count()} CPUs; PostgreSQL admin {pg_admin_url()}")
    result, summary = execute(args)
    print(report(result, summary), flush=True)
    sys.exit(1 if sum(summary["errors"].values()) else 0)


if __name__ == "__main__":
    main()
