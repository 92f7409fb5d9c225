"""Load: N tablet users changing filters and M wall screens on live updates, on the real stack.

    .venv/bin/python benchmarks/load.py [--db URL] [--tablets 100] [--walls 20] [--rate 200]
        [--duration 120] [--warmup 20] [--web-workers 1] [--browser-walls 0]
        [--browser-tablets 0] [--json FILE]

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
- **Each simulated page replays that protocol** (a small Dash renderer): it keeps its own
  prop values, from its own answers only: it loads the app's layout, sends the router
  callback, takes its own user's page from the answer (a town official's pinned town and
  village choices), runs the clientside filters on it, then sends the page's callbacks. When a
  prop changes (a user's choice, a callback's answer, or a ``set_props``
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
  map callback. A callback triggered again while its request is in flight is sent again at
  once with the newest values, and the older answer is dropped unapplied, as the renderer
  does (Dash 4.4 drops an executing duplicate); such answers count as "superseded". A
  server callback the dependency graph says a change triggers on the page but that was never
  captured (``prevent_initial_call``, a lazily loaded panel, a callback over the WebSocket)
  cannot be replayed: it is an error, so the run fails rather than leave it out of the figures.
- **N tablet users** (``--tablets``; ``--town-share`` of them are town officials, the rest
  district leaders), each logged in through ``POST /login`` with its own account and cookie,
  load ``/`` (HTML, layout, dependencies, the page's initial callbacks) and then, after a think
  time (``--think``, seconds), change a filter, the kinds in turn: a town (district users), a
  village among those the page offers, or the period (this year, last year, the last 30 days,
  last year to date), never the value already shown. A period is typed into the date picker's
  two inputs, and the picker sends each date as soon as it is set: two chains, the start (with
  the old end) and ``PICK_GAP_S`` later the end, as ``--browser-tablets`` shows it does. Each
  change is timed from its (last) step to the last answer of its chain: not the drawing.
- **K Chromium tablets** (``--browser-tablets``, K of the N): real pages of ``/``, each in its
  own browser context and login, with the same share of town officials, making the same kinds
  of choice with the real dropdowns and date inputs, timed (``benchmarks/ui.py``'s hooks) from
  the step's first request to its last answer, as a replayed change is, and from the click (or
  the Enter of a typed date) to the last answer and to the last panel drawn. The replayed
  tablets' p95 to the last answer must be within 20 % or 50 ms of theirs, or the run fails.
- **M wall screens** (``--walls``): pages of ``/wall`` replayed as above (a wall account, one
  session each). Chromium ×20 at 200 events/s would need several cores for the browsers alone
  (one wall page keeps most of a core busy, see docs/performance.md), so walls speak Dash's
  socket protocol; ``--browser-walls K`` makes K of them real Chromium pages (one browser, each
  tab in its own context and login, measured in the DOM) as a cross-check.
- **Event to screen**: a ``call.key`` probe event for a real device is published every
  ``--probe-every`` seconds through the producer path; its latency on a wall is the time from
  just before the XADD to the socket message (or, on a Chromium wall, the DOM mutation) that
  first carries its ``data-event-id`` in ``#live-feed``.

Reported: p50/p95 of callback latency (per kind and per trigger: filter changes, live pushes,
page loads, rotation; 200 answers only, 204s and answers with ``no_update`` parts counted
apart), of a whole filter change to the last answer of its chain (only changes whose every
callback was answered 200; the others counted apart), replayed and in Chromium (there also to
the last panel drawn), of event → screen; errors (HTTP status >= 400, timeouts, socket closes,
callback errors, exceptions in the pages' tasks, error and WARNING lines in the servers' logs,
dead letters, choices outside what a page offers, uncaptured callbacks, replay and Chromium
disagreeing; target none); RSS and CPU of web, worker, Redis,
simulator, the PostgreSQL backends, this load generator and Chromium; the machine's ``uptime``
at start and end. Exit status 1 on any error. ``--json`` writes every raw figure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import datetime as dt
import json
import math
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
from ui import TOWN_ARM, TOWN_INIT  # noqa: E402
from ui import _panel_done as panel_done  # noqa: E402

from layouts import ids  # noqa: E402

PASSWORD = "load-password-1"
# The event ids in the feed's HTML (layouts/components.py, ``feed_item``).
EVENT_ID = re.compile(r'data-event-id="([^"]+)"')
CAPTURE_USER = "load-capture"
WALL_USER = "load-wall"
HEARTBEAT_S = 10.0  # the app's websocket_heartbeat_interval
ROTATE_S = 20  # callbacks/wall.py
MAX_CONNECTIONS = 6  # Chromium's connections per host (HTTP/1.1)
TARGET_EVENT_P95_MS = 250.0  # docs/performance.md (UI)
# The replayed tablets' p95 to the last answer must be within 20 % or 50 ms of the Chromium
# tablets' (the same choices under the same load), or the replay is not measuring the page.
AGREE_SHARE, AGREE_MS = 0.20, 50.0
# The callbacks of the chain being answered, so that a cycle is not followed.
_CHAIN: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar("chain", default=())
# A person picking a period: seconds between the start day and the end day (the date picker
# sends each as soon as it is set, so a period is two chains).
PICK_GAP_S = (0.5, 1.5)

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
    # path -> "id.prop" -> value of the props no layout and no server callback sets (the
    # browser's own: dcc.Location's pathname, search, href): a replayed page starts from these
    # and fills the rest from its own answers.
    browser_props: dict[str, dict[str, Any]] = field(default_factory=dict)
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


def walk_layout(node: Any, store: dict[str, Any], present: set[str] | None = None) -> None:
    """Record every component prop (but children) of a layout tree in ``store``.

    With ``present``, also the id of every component with an id (what is on the page).
    """
    if isinstance(node, list):
        for child in node:
            walk_layout(child, store, present)
        return
    if not isinstance(node, dict):
        return
    props = node.get("props")
    if isinstance(props, dict):
        cid = id_text(props.get("id"))
        if cid is not None and present is not None:
            present.add(cid)
        for name, value in props.items():
            if name == "children":
                walk_layout(value, store, present)
            elif cid is not None and name != "id":
                store[f"{cid}.{name}"] = value
                walk_layout(value, store, present)


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
    from_server: dict[str, set[str]] = {}  # path -> props a layout or an answer set
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
                answered: dict[str, Any] = {}
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
                        walk_layout(page_tree.get("children"), answered)
                        apply_response(answer, answered)
                        store.update(answered)
                stores[path] = store
                from_server[path] = set(answered)
                persistent[path] = [m["payload"] for m in ws]

            # The pages at once, as a person with two tabs would: it halves the capture's time.
            await asyncio.gather(*(one(path) for path in paths))
            cookies = {c["name"]: c["value"] for c in await context.cookies()}
        finally:
            await browser.close()
    async with httpx.AsyncClient(base_url=base, cookies=cookies) as client:
        deps = (await client.get("/_dash-dependencies")).json()
        base_layout: dict[str, Any] = {}
        walk_layout((await client.get("/_dash-layout")).json(), base_layout)
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
    produced = {k for keys in outputs_of.values() for k in keys}
    browser_props = {
        path: {
            k: v
            for k, v in store.items()
            if k not in from_server[path] and k not in base_layout and k not in produced
        }
        for path, store in stores.items()
    }
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
        browser_props,
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

    # (time, tag, callback, ms, HTTP status, answer kind: "answered" (200, every output),
    # "partial" (200, some outputs no_update), "no_update" (204), "superseded" (a newer request
    # of the callback was sent meanwhile: dropped unapplied) or "error")
    calls: list[tuple[float, str, str, float, int, str]] = field(default_factory=list)
    # One dict per user action on a replayed tablet: time, page, role, kind, what was chosen,
    # what the page offered, ms to the last answer, callbacks, their answer kinds, and what
    # each step set (the filters sent); only "answered" ones make the filter figure.
    interactions: list[dict[str, Any]] = field(default_factory=list)
    # The same for the Chromium tablets, with ms to the last panel drawn too.
    browser_interactions: list[dict[str, Any]] = field(default_factory=list)
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
    """One open page (``/`` or ``/wall``) of one logged-in browser, replaying Dash's protocol.

    The page keeps its own state: it starts from the app's layout and its own router answer
    (the page of its own user: a town official's pinned town, its own village choices), and
    every answer it gets updates it, as the renderer's store does.
    """

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
        self.store: dict[str, Any] = dict(cap.browser_props.get(path, {}))
        self.present: set[str] = set()  # component ids on the page
        self.url = f"/_dash-update-component?{cap.query.get(path, '')}".rstrip("?")
        self.client = httpx.AsyncClient(
            base_url=run.base,
            timeout=httpx.Timeout(60.0),
            limits=httpx.Limits(max_connections=MAX_CONNECTIONS),
            headers={"Accept": "application/json"},
        )
        self.sends: Counter[str] = Counter()  # requests sent per callback (the newest wins)
        self.seen: dict[str, float] = {}
        self.run.record.seen[name] = self.seen
        self.tasks: list[asyncio.Task[Any]] = []
        self.feed_ready = asyncio.Event()  # the live callback has pushed the feed once
        self.loaded = False
        # The answers to the requests sent since the timed step of a user's action began:
        # (callback label, answer kind).
        self.timed: list[tuple[str, str]] | None = None
        self.timed_since = 0.0

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
        """Load the page: HTML, layout, dependencies, the router, then the page's callbacks.

        As the renderer does: the callbacks of the app's layout first (the router, whose
        answer is this user's page), then, once that page is in the store and the clientside
        filters have run on it, the callbacks of the page's own components.
        """
        t0 = time.perf_counter()
        for url in (self.path, "/_dash-layout", "/_dash-dependencies"):
            r = await self.client.get(url, headers={"Accept": "text/html,application/json"})
            if r.status_code != 200:
                self.rec.error("http", f"GET {url}: {r.status_code}")
            elif url == "/_dash-layout":
                walk_layout(r.json(), self.store, self.present)
        cap = self.run.cap
        produced = {k for out in self.templates for k in cap.outputs_of.get(out, [])}
        roots: list[tuple[str, set[str]]] = []
        for out in cap.order[self.path]:
            # As the browser first sent it (a later request of the same callback may have been
            # triggered by a live push, which the server answers differently).
            changed = set(cap.first_changed[self.path][out])
            own = set(cap.outputs_of.get(out, []))
            if not (changed - own) & produced:
                roots.append((out, changed))
        first = [(o, c) for o, c in roots if self._outputs_present(o)]
        later = [(o, c) for o, c in roots if (o, c) not in first]
        await asyncio.gather(*(self.call(out, changed, "load") for out, changed in first))
        if ids.FILTERS in self.present and f"{ids.TOWN}.value" in self.store:
            mirror_filters(self.store, set())
        await asyncio.gather(*(self.call(out, changed, "load") for out, changed in later))
        self.loaded = True
        self.rec.loads.append((time.time(), self.path, (time.perf_counter() - t0) * 1000))

    def _outputs_present(self, output: str) -> bool:
        """Whether every (non-wildcard) output component of a callback is on the page."""
        keys = self.run.cap.outputs_of.get(output, [])
        return bool(keys) and all(k.rpartition(".")[0] in self.present for k in keys)

    def _should_run(self, output: str) -> bool:
        """Whether the renderer would run a server callback here: its components are shown."""
        cap = self.run.cap
        keys = cap.outputs_of.get(output, []) + cap.inputs_of.get(output, [])
        return all(k.rpartition(".")[0] in self.present for k in keys)

    def dependents(self, changed: set[str], source: str | None) -> list[str]:
        """The server callbacks ``changed`` triggers on this page.

        One the dependency graph names and the renderer would run, but which the browser never
        sent while captured (``prevent_initial_call``, a lazily loaded panel, a callback over
        the WebSocket), has no template: the replay cannot send it, so it is an error that
        fails the run rather than a callback silently missing from the figures.
        """
        outs: list[str] = []
        for key in sorted(changed):
            for out in self.run.cap.by_input.get(key, []):
                if out == source or out in outs:
                    continue
                if out in self.templates:
                    outs.append(out)
                elif self.loaded and self._should_run(out):
                    self.rec.error(
                        "callback without template",
                        f"{self.path}: {out} (triggered by {key}) was never captured",
                    )
        return outs

    async def fire(self, changed: set[str], tag: str, source: str | None = None) -> int:
        """POST every callback with one of ``changed`` as an input; return how many ran."""
        outs = self.dependents(changed, source)
        counts = await asyncio.gather(*(self.call(out, changed, tag) for out in outs))
        return sum(counts)

    async def call(self, output: str, changed: set[str], tag: str) -> int:
        """Run one callback and the chain its answer triggers; return how many requests."""
        chain = _CHAIN.get()
        if output in chain:  # a cycle: Dash does not follow it either
            return 0
        _CHAIN.set((*chain, output))
        self.sends[output] += 1
        updated = await self.post(output, changed, tag, self.sends[output])
        return 1 + (await self.fire(updated, tag, source=output) if updated else 0)

    def payload(self, output: str, changed: set[str]) -> dict[str, Any]:
        body = json.loads(json.dumps(self.templates[output]))
        for item in flat(body.get("inputs")) + flat(body.get("state")):
            key = prop_key(item)
            if key and key in self.store:
                item["value"] = self.store[key]
        inputs = self.run.cap.inputs_of.get(output, [])
        ids_ = [k for k in inputs if k in changed]
        body["changedPropIds"] = ids_
        body["parsedChangedPropsIds"] = ids_
        return body

    async def post(self, output: str, changed: set[str], tag: str, send: int) -> set[str]:
        """POST one callback; apply its answer unless a newer request of it was sent since."""
        import httpx

        body = self.payload(output, changed)
        t0 = time.perf_counter()
        answers = self.timed if self.timed is not None and t0 >= self.timed_since else None
        try:
            r = await self.client.post(self.url, json=body)
        except httpx.HTTPError as exc:
            self.rec.error("http", f"{label(output)}: {type(exc).__name__} {exc}")
            if answers is not None:
                answers.append((label(output), "error"))
            return set()
        ms = (time.perf_counter() - t0) * 1000
        if r.status_code == 204:
            kind = "no_update"
        elif r.status_code != 200:
            kind = "error"
            self.rec.error("http", f"{label(output)}: HTTP {r.status_code} {r.text[:200]}")
        elif self.sends[output] != send:
            kind = "superseded"  # the renderer drops it: a newer request is on its way
        else:
            answer = r.json()
            kind = "answered" if self._complete(output, answer) else "partial"
        self.rec.calls.append((time.time(), tag, label(output), ms, r.status_code, kind))
        if answers is not None:
            answers.append((label(output), kind))
        if kind not in ("answered", "partial"):
            return set()
        return self._apply(answer)

    def _complete(self, output: str, answer: dict[str, Any]) -> bool:
        """Whether an answer set every (non-wildcard) output of its callback."""
        got = {
            f"{id_text(cid)}.{name.split('@', 1)[0]}"
            for cid, props in (answer.get("response") or {}).items()
            if isinstance(props, dict)
            for name in props
        }
        return all(k in got for k in self.run.cap.outputs_of.get(output, []))

    def _apply(self, answer: dict[str, Any]) -> set[str]:
        """Apply an answer to the page's store, the components of any new layout included."""
        changed = apply_response(answer, self.store)
        for key in changed:
            if key.endswith(".children"):
                walk_layout(self.store[key], self.store, self.present)
        return changed

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
                if cid == ids.WS_STATUS and props.get("data-feed") == "down":
                    # The page's live callback lost the channel (Redis, or its queue
                    # overflowed): the page shows "reconnecting" until it is back.
                    self.rec.error("live feed down", f"{self.name}: {payload}")
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
            self.run.check_tasks(self.tasks)
            self.tasks = [t for t in self.tasks if not t.done()]
            self.tasks.append(asyncio.create_task(self.fire(changed, "live"), name=self.name))

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


def action_kinds(role: str) -> list[str]:
    """What a user may change on ``/``: a town official's town is pinned (its dropdown off)."""
    return ["village", "period"] if role == "town" else ["town", "village", "period"]


@dataclass
class Choice:
    """One user action: its kind, the value chosen and what the page offered."""

    kind: str
    value: Any  # a town or village code, or (start, end)
    offered: list[Any]


def choose(
    store: dict[str, Any], role: str, kind: str, rng: random.Random, today: dt.date
) -> Choice | None:
    """Pick what a person would on this page: only among the choices it shows, never the
    value already chosen (the dropdown then sends nothing); None when there is nothing."""
    if kind == "period":
        now = tuple(_day(store.get(f"{ids.PERIOD}.{k}")) for k in ("start_date", "end_date"))
        spans = [p for p in periods(today) if p != now]
        return Choice(kind, rng.choice(spans), list(spans)) if spans else None
    prop = ids.TOWN if kind == "town" else ids.VILLAGE
    if store.get(f"{prop}.disabled"):
        return None
    current = store.get(f"{prop}.value")
    offered = [
        o.get("value")
        for o in store.get(f"{prop}.options") or []
        if isinstance(o, dict) and not o.get("disabled") and o.get("value") not in (None, current)
    ]
    return Choice(kind, rng.choice(offered), offered) if offered else None


def _day(value: Any) -> str | None:
    """The date part of a date picker's value (None when unset)."""
    if not isinstance(value, str):
        return None
    return value[:10] or None


def period_steps(store: dict[str, Any], start: str, end: str) -> list[dict[str, Any]]:
    """The prop changes the date picker sends for a period typed into its two inputs.

    ``dcc.DatePickerRange`` (Dash 4.4, ``updatemode`` "singledate") calls ``setProps`` as
    soon as one date is set: the start first (with the end still the old one), then the end;
    the renderer passes on only the props whose value changed. So a new period is two chains
    of callbacks, or one when only one of the dates differs.
    """
    steps = []
    if _day(store.get(f"{ids.PERIOD}.start_date")) != start:
        steps.append({f"{ids.PERIOD}.start_date": start})
    if _day(store.get(f"{ids.PERIOD}.end_date")) != end:
        steps.append({f"{ids.PERIOD}.end_date": end})
    return steps


async def act(page: Page, choice: Choice, rng: random.Random) -> dict[str, Any]:
    """Make one choice on a replayed page and time it to the last answer of its chain.

    A period is two steps (start, then end, ``PICK_GAP_S`` apart, as a person picks them);
    the time is that of the last step, from its change to the last answer of its chain, as
    the Chromium tablets time theirs.
    """
    store = page.store
    if choice.kind == "period":
        start, end = choice.value
        steps = period_steps(store, start, end)
    else:
        prop = ids.TOWN if choice.kind == "town" else ids.VILLAGE
        steps = [{f"{prop}.value": choice.value}]
    answers: list[tuple[str, str]] = []
    sent: list[dict[str, Any]] = []
    pending: list[asyncio.Task[int]] = []
    ms, n = math.nan, 0
    for i, step in enumerate(steps):
        if i:
            await asyncio.sleep(rng.uniform(*PICK_GAP_S))
        store.update(step)
        changed = set(step) | mirror_filters(store, {k.rpartition(".")[0] for k in step})
        sent.append(dict(store.get(f"{ids.FILTERS}.data") or {}))
        if i < len(steps) - 1:
            pending.append(asyncio.create_task(page.fire(changed, "filter")))
            continue
        t0 = time.perf_counter()
        page.timed, page.timed_since = answers, t0
        try:
            n = await page.fire(changed, "filter")
        finally:
            page.timed = None
        ms = (time.perf_counter() - t0) * 1000
    for task in pending:  # the earlier step's answers (dropped when superseded)
        n += await task
    kinds = Counter(kind for _, kind in answers)
    return {
        "ms": ms,
        "callbacks": n,
        "answers": dict(kinds),
        "labels": sorted({name for name, _ in answers}),
        "answered": bool(kinds["answered"] + kinds["partial"])
        and set(kinds) <= {"answered", "partial", "superseded"},
        "sent": sent,
    }


async def tablet(page: Page, role: str, stop: asyncio.Event) -> None:
    """A leader on a tablet: load ``/``, then change a filter after each think time.

    The kinds of change take turns (from a random first one), so that every kind is made
    even in a short run; what is chosen comes from the page's own choices.
    """
    from datasources.periods import SHANGHAI

    rng = random.Random(page.name)
    run = page.run
    lo, hi = run.think
    await asyncio.sleep(rng.uniform(0, run.args.warmup / 2))  # people do not all start at once
    await page.load()
    kinds = action_kinds(role)
    turn = rng.randrange(len(kinds))
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), timeout=rng.uniform(lo, hi))
            return
        except TimeoutError:
            pass
        if run.max_interactions and len(run.record.interactions) >= run.max_interactions:
            return
        today = dt.datetime.now(SHANGHAI).date()
        choice = None
        for _ in kinds:
            kind = kinds[turn % len(kinds)]
            turn += 1
            choice = choose(page.store, role, kind, rng, today)
            if choice is not None:
                break
        if choice is None:
            continue
        scope = dict(page.store.get(f"{ids.FILTER_SCOPE}.data") or {})
        began = time.time()
        timed = await act(page, choice, rng)
        run.record.interactions.append(
            {
                "t": began,
                "page": page.name,
                "user": page.username,
                "role": role,
                "scope": scope,
                "kind": choice.kind,
                "value": choice.value,
                "offered": choice.offered,
                **timed,
            }
        )


def mirror_filters(store: dict[str, Any], fired: set[str]) -> set[str]:
    """Do what the page's clientside filters callback does (``callbacks/filters.py``,
    ``FILTERS_JS``) after the components ``fired`` changed; return the props it set.

    The deepest choice wins, a town official's town (a village secretary's village) is pinned
    from ``filter-scope``, a village outside the town is dropped. Dash counts every value a
    callback returns as a trigger, so ``filters-store.data`` always is one; a dropdown only
    when its value changed (the callback returns ``no_update`` otherwise).
    """
    town = store.get(f"{ids.TOWN}.value") or None
    village = store.get(f"{ids.VILLAGE}.value") or None
    grid = store.get(f"{ids.GRID}.value") or None
    f = {
        "town": town,
        "village": village,
        "grid": grid,
        "start": _day(store.get(f"{ids.PERIOD}.start_date")),
        "end": _day(store.get(f"{ids.PERIOD}.end_date")),
    }
    if ids.GRID in fired and grid:
        f["village"], f["town"] = grid[:12], grid[:9]
    elif ids.VILLAGE in fired:
        f["grid"] = None
        if village:
            f["town"] = village[:9]
    elif ids.TOWN in fired:
        f["village"] = f["grid"] = None
    elif ids.UP in fired:
        level = "grid" if f["grid"] else "village" if f["village"] else "town"
        f[level] = None
    scope = store.get(f"{ids.FILTER_SCOPE}.data") or {}
    if scope.get("village"):
        f["village"], f["town"] = scope["village"], scope["village"][:9]
    elif scope.get("town"):
        f["town"] = scope["town"]
    if f["village"] and not (f["town"] and f["village"].startswith(f["town"])):
        f["village"] = None
    if f["grid"] and not (f["village"] and f["grid"].startswith(f["village"])):
        f["grid"] = None
    store[f"{ids.FILTERS}.data"] = f
    changed = {f"{ids.FILTERS}.data"}
    for key, now, was in (
        (ids.TOWN, f["town"], town),
        (ids.VILLAGE, f["village"], village),
        (ids.GRID, f["grid"], grid),
    ):
        if now != was:
            store[f"{key}.value"] = now
            changed.add(f"{key}.value")
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

    def watch(self, coro: Any, name: str) -> asyncio.Task[Any]:
        """Start a task whose exception, if it ends with one, counts as an error of the run."""
        task = asyncio.create_task(coro, name=name)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            self.record.error("page task", f"{task.get_name()}: {type(exc).__name__}: {exc}")

    def check_tasks(self, tasks: list[asyncio.Task[Any]]) -> None:
        """Count the exceptions of finished tasks not started with ``watch``."""
        for task in tasks:
            if task.done():
                self._task_done(task)

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
        users: list[tuple[str, str, str, str | None]] = [
            (CAPTURE_USER, PASSWORD, "district", None),
            (WALL_USER, PASSWORD, "district", None),
        ]
        # The replayed tablets and the Chromium ones each have the same share of town
        # officials (the towns taken in turn), each user with its own login.
        roles: list[tuple[str, str]] = []
        browser_roles: list[tuple[str, str]] = []
        for prefix, count, out in (
            ("load-tab", args.tablets - args.browser_tablets, roles),
            ("load-btab", args.browser_tablets, browser_roles),
        ):
            n_town = round(count * args.town_share)
            for i in range(count):
                role = "town" if i < n_town else "district"
                name = f"{prefix}{i:03d}"
                area = towns[i % len(towns)] if role == "town" else None
                users.append((name, PASSWORD, role, area))
                out.append((name, role))
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
            if args.browser_walls or browser_roles:
                browser_task = run.watch(
                    chromium(run, args.browser_walls, browser_roles, stop, browsers_ready),
                    "chromium",
                )
            else:
                browsers_ready.set()
            for page in pages:
                tasks.append(run.watch(page.live(stop), page.name))
            tasks += [run.watch(wall(p, stop), p.name) for p in walls]
            tasks += [
                run.watch(tablet(p, role, stop), p.name)
                for p, (_, role) in zip(tablets, roles, strict=True)
            ]
            log(
                f"warming up {args.warmup:g} s ({len(tablets)} replayed and "
                f"{len(browser_roles)} Chromium tablets, {len(walls)} socket walls, "
                f"{args.browser_walls} Chromium walls, {args.rate:g} events/s) ..."
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
            tasks.append(run.watch(run.channel_loop(redis_server.url, channel, stop), "channel"))
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
            for page in pages:
                run.check_tasks(page.tasks)
            result["log_errors"] = stack.log_errors(warnings=True)
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


# What a Chromium tablet reads of its page: the props of the filters in Dash's store.
PROPS_JS = """
(names) => {
  const st = window.store && window.store.getState();
  const out = {};
  for (const id of names) {
    const path = st && st.paths && st.paths.strs && st.paths.strs[id];
    if (!path) continue;
    let node = st.layout;
    for (const k of path) node = node && node[k];
    if (node && node.props) out[id] = node.props;
  }
  return out;
}
"""

# Beside ui.py's TOWN_INIT: the filters each callback request carried, and the moment a
# typed date is sent (Enter in the picker's inputs) as the start of a period change.
SENT_INIT = """
(() => {
  window.__sent = [];
  const fetch0 = window.fetch;
  window.fetch = function (input, init) {
    const url = typeof input === 'string' ? input : (input && input.url) || '';
    if (url.includes('_dash-update-component') && init && init.body) {
      try {
        for (const i of JSON.parse(init.body).inputs || []) {
          if (i && i.id === 'FILTERS' && i.property === 'data') {
            const v = JSON.stringify(i.value);
            if (window.__sent[window.__sent.length - 1] !== v) window.__sent.push(v);
          }
        }
      } catch (e) {}
    }
    return fetch0.apply(this, arguments);
  };
  document.addEventListener('keydown', ev => {
    const s = window.__town;
    if (s && !s.clicked && ev.key === 'Enter' && ev.target.closest &&
        ev.target.closest('#PERIOD-wrapper'))
      s.clicked = performance.timeOrigin + performance.now();
  }, true);
})();
""".replace("FILTERS", ids.FILTERS).replace("PERIOD", ids.PERIOD)


async def chromium(
    run: Run,
    walls: int,
    tablets: list[tuple[str, str]],
    stop: asyncio.Event,
    ready: asyncio.Event,
) -> dict[str, dict[str, float]]:
    """K real Chromium ``/wall`` tabs and the Chromium tablets, each in its own browser
    context (its own login, cookies and cache, as separate screens have); return probe id ->
    DOM time per wall tab. The tablets record into ``run.record.browser_interactions``."""
    from browser import CHROMIUM, CHROMIUM_ARGS
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        users = [
            run.watch(browser_tablet(run, browser, name, role, stop), name)
            for name, role in tablets
        ]
        try:
            pages = []
            for _ in range(walls):
                context = await browser.new_context(viewport={"width": 1920, "height": 1080})
                page = await context.new_page()
                await login_page(page, run.base, WALL_USER)
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
            if users:
                await asyncio.wait(users, timeout=60)
            out = {}
            probe_ids = list(run.record.probes)
            for i, page in enumerate(pages):
                times = await page.evaluate(
                    "ids => ids.map(i => window.__seen.get(i) ?? null)", probe_ids
                )
                out[f"chromium{i}"] = {
                    e: t / 1000 for e, t in zip(probe_ids, times, strict=True) if t
                }
            return out
        finally:
            ready.set()  # also on failure: the caller then reads the task's exception
            for task in users:
                task.cancel()
            await browser.close()


async def browser_tablet(run: Run, browser: Any, name: str, role: str, stop: asyncio.Event) -> None:
    """A leader on a real tablet: ``/`` in its own context, the same kinds of change as the
    replayed tablets (``action_kinds``, ``choose``) made with the real controls, each timed
    to the last answer (network) and to the last panel drawn (``benchmarks/ui.py``)."""
    from datasources.periods import SHANGHAI

    rng = random.Random(name)
    lo, hi = run.think
    context = await browser.new_context(viewport={"width": 1366, "height": 1024})
    try:
        page = await context.new_page()
        await page.add_init_script(TOWN_INIT)
        await page.add_init_script(SENT_INIT)
        await asyncio.sleep(rng.uniform(0, run.args.warmup / 2))
        await login_page(page, run.base, name)
        await page.goto(f"{run.base}/")
        for ready_js in (
            "document.querySelector('#kpi-tiles .tile .value span')",
            "document.querySelectorAll('.dash-graph').length > 0 && "
            "document.querySelectorAll('.js-plotly-plot').length >= "
            "document.querySelectorAll('.dash-graph').length",
            "document.querySelectorAll('#grid-map path.grid-cell').length > 0",
        ):
            await page.wait_for_function(ready_js, timeout=60_000)
        kinds = action_kinds(role)
        turn = rng.randrange(len(kinds))
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), timeout=rng.uniform(lo, hi))
                return
            except TimeoutError:
                pass
            props = await page.evaluate(PROPS_JS, [ids.TOWN, ids.VILLAGE, ids.PERIOD])
            store = {f"{cid}.{k}": v for cid, ps in props.items() for k, v in ps.items()}
            today = dt.datetime.now(SHANGHAI).date()
            choice = None
            for _ in kinds:
                kind = kinds[turn % len(kinds)]
                turn += 1
                choice = choose(store, role, kind, rng, today)
                if choice is not None:
                    break
            if choice is None:
                continue
            began = time.time()
            timed = await browser_act(page, store, choice, rng)
            run.record.browser_interactions.append(
                {
                    "t": began,
                    "page": name,
                    "user": name,
                    "role": role,
                    "kind": choice.kind,
                    "value": choice.value,
                    **timed,
                }
            )
    finally:
        await context.close()


async def browser_act(
    page: Any, store: dict[str, Any], choice: Choice, rng: random.Random
) -> dict[str, Any]:
    """Make one choice with the page's controls; time its last step as ``act`` does."""
    await page.evaluate("window.__sent = []")
    if choice.kind == "period":
        start, end = choice.value
        steps = [
            ("#" + ids.PERIOD if k.endswith(".start_date") else f"#{ids.PERIOD}-end-date", v)
            for step in period_steps(store, start, end)
            for k, v in step.items()
        ]
    else:
        steps = [(f"#{ids.TOWN if choice.kind == 'town' else ids.VILLAGE}", choice.value)]
    panels: dict[str, Any] = {}
    for i, (selector, value) in enumerate(steps):
        if i:
            await asyncio.sleep(rng.uniform(*PICK_GAP_S))
        if i == len(steps) - 1:
            # Armed before the last step: ui.py's hooks then time it from its pointerdown
            # (a dropdown option) or Enter (a typed date), to the last panel drawn.
            panels = await page.evaluate(TOWN_ARM, ["", ""])
            await page.evaluate("window.__town.title = 0; window.__town.tile = 0")
        if choice.kind == "period":
            await page.fill(selector, value)
            await page.press(selector, "Enter")
        else:
            await page.click(selector)
            await page.click(f".dash-dropdown-option:has(input[value='{value}'])")
    wanted = [("chart", c) for c in panels.get("charts", [])]
    wanted += [("table", t) for t in panels.get("tables", [])]
    if panels.get("map"):
        wanted.append(("map", "map"))
    deadline = time.monotonic() + 30
    while True:
        state, answers, now = await page.evaluate(
            "[window.__town, window.__answers, performance.timeOrigin + performance.now()]"
        )
        done = {}
        if state.get("clicked"):
            done = {p: panel_done(state, answers, p[0], p[1], now) for p in wanted}
            if answers and all(done.values()) and all(a["body"] for a in answers):
                break
        if time.monotonic() > deadline:
            raise TimeoutError(f"{choice.kind} {choice.value} was not drawn in 30 s: {state}")
        await asyncio.sleep(0.05)
    if choice.kind == "period":
        await page.keyboard.press("Escape")  # close the calendar the typed dates opened
    clicked = state["clicked"]
    sent = await page.evaluate("window.__sent")
    last = max(a["body"] for a in answers)
    return {
        # As the replay times it: from the first request of the step to its last answer.
        "ms": last - min(a["sent"] for a in answers),
        # What the person waits for: from the click (or Enter) to the last answer, and to the
        # last panel drawn (the page's own work before sending and after answers included).
        "click_ms": last - clicked,
        "drawn_ms": max(t for t, _ in filter(None, done.values())) - clicked,
        "callbacks": len(answers),
        "sent": [json.loads(v) for v in sent],
    }


# --- Report ------------------------------------------------------------------------------------


def summarize(result: dict[str, Any]) -> dict[str, Any]:
    """Turn the raw record into the reported figures (only what happened in the window)."""
    rec: Record = result["record"]
    t0, t1 = result["window"]
    probes = {i: t for i, t in rec.probes.items() if t0 <= t <= t1}
    calls = [c for c in rec.calls if t0 <= c[0] <= t1]
    by_tag: dict[str, list[float]] = defaultdict(list)
    by_label: dict[str, list[float]] = defaultdict(list)
    answer_kinds: dict[str, Counter[str]] = defaultdict(Counter)
    for _, tag, name, ms, _status, kind in calls:
        answer_kinds[tag][kind] += 1
        if kind in ("answered", "partial"):  # a 204 (no_update) is no answer to time
            by_tag[tag].append(ms)
            by_label[name].append(ms)
    inter_all = [i for i in rec.interactions if t0 <= i["t"] <= t1]
    inter = [i for i in inter_all if i["answered"]]
    browser_inter = [i for i in rec.browser_interactions if t0 <= i["t"] <= t1]
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
    # A town official's (a village secretary's) page offers only its own area.
    outside = [
        i
        for i in rec.interactions
        if i["kind"] != "period"
        and (
            i["value"] not in i["offered"]
            or not str(i["value"]).startswith((i["scope"] or {}).get("town") or "")
        )
    ]
    if outside:
        errors["choice outside the page's choices"] += len(outside)
    compare = _agreement(inter, browser_inter)
    if compare and not compare["ok"]:
        errors["replayed and Chromium tablets disagree (p95 to last answer)"] += 1
    if result["config"].get("browser_tablets") and not browser_inter:
        errors["no Chromium tablet change in the window"] += 1
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
        "answer_kinds": {k: dict(v) for k, v in answer_kinds.items()},
        "interactions": _stat([i["ms"] for i in inter]),
        "interactions_by_kind": {
            k: _stat([i["ms"] for i in inter if i["kind"] == k])
            for k in sorted({i["kind"] for i in inter})
        },
        "interactions_refused": len(inter_all) - len(inter),
        "interaction_calls": sum(i["callbacks"] for i in inter) / max(len(inter), 1),
        "browser_interactions": _stat([i["ms"] for i in browser_inter]),
        "browser_click": _stat([i["click_ms"] for i in browser_inter]),
        "browser_drawn": _stat([i["drawn_ms"] for i in browser_inter]),
        "browser_interaction_calls": sum(i["callbacks"] for i in browser_inter)
        / max(len(browser_inter), 1),
        "agreement": compare,
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


def _agreement(
    replayed: list[dict[str, Any]], chromium: list[dict[str, Any]]
) -> dict[str, Any] | None:
    """Compare the p95s to the last answer: the replay is honest when it is within 20 % of
    the Chromium tablets' or 50 ms of it (None when one side has no figure)."""
    if not replayed or not chromium:
        return None
    a = pct([i["ms"] for i in replayed], 95)
    b = pct([i["ms"] for i in chromium], 95)
    return {
        "replayed_p95": a,
        "chromium_p95": b,
        "ok": abs(a - b) <= max(AGREE_SHARE * b, AGREE_MS),
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
            f"{cfg['tablets']} tablets ({cfg.get('browser_tablets', 0)} in Chromium), "
            f"{cfg['walls']} walls ({cfg['browser_walls']} in Chromium), {cfg['rate']:g} events/s, "
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
        if tag in s["by_tag"] or tag in s["answer_kinds"]:
            st = s["by_tag"].get(tag) or _stat([])
            kinds = s["answer_kinds"].get(tag, {})
            rows.append(
                [
                    f"callbacks from {tag} (n={st['n']} answered; "
                    + ", ".join(f"{k} {v}" for k, v in sorted(kinds.items()))
                    + ")",
                    trio(st),
                    "",
                ]
            )
    if cfg["tablets"]:
        st = s["interactions"]
        rows.append(
            [
                f"filter change → last answer, replayed tablets (n={st['n']}, "
                f"{s['interaction_calls']:.1f} callbacks each; not the drawing)",
                trio(st),
                "",
            ]
        )
        for kind, st in s["interactions_by_kind"].items():
            rows.append([f"  {kind} (n={st['n']})", trio(st), ""])
        rows.append(
            [
                "  changes not answered (a 204, an error or no callback in the chain)",
                str(s["interactions_refused"]),
                "0",
            ]
        )
    if cfg.get("browser_tablets"):
        st = s["browser_interactions"]
        rows.append(
            [
                f"filter change → last answer, Chromium tablets (n={st['n']}, "
                f"{s['browser_interaction_calls']:.1f} callbacks each; first request to last "
                "answer, as replayed)",
                trio(st),
                "",
            ]
        )
        rows.append(
            [
                "  Chromium: click (or Enter) → last answer",
                trio(s["browser_click"]),
                "",
            ]
        )
        rows.append(
            [
                "  Chromium: click (or Enter) → last panel drawn (benchmarks/ui.py)",
                trio(s["browser_drawn"]),
                "",
            ]
        )
        agree = s["agreement"]
        rows.append(
            [
                "p95 to last answer: replayed vs Chromium",
                "–"
                if agree is None
                else f"{fmt_ms(agree['replayed_p95'])} vs {fmt_ms(agree['chromium_p95'])} "
                + ("(agree)" if agree["ok"] else "(DISAGREE)"),
                f"within {AGREE_SHARE:.0%} or {AGREE_MS:g} ms",
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
    p.add_argument(
        "--browser-tablets",
        type=int,
        default=0,
        help="how many of the tablets are real Chromium tabs (each in its own context)",
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
    if args.browser_tablets > args.tablets:
        p.error("--browser-tablets cannot exceed --tablets")
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
                "browser_interactions": rec.browser_interactions,
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
