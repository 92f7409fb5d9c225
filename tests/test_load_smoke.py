"""``benchmarks/load.py`` in a tiny configuration, so that the load script cannot rot, and the
replay's honesty rules on their own.

The smoke run: two tablets (one a town official) and two socket walls for a few seconds at 20
events/s against a copy of the session's seeded SQLite database: the real web server, worker,
simulator and an embedded Redis, the protocol captured from a real Chromium. Takes about 40 s;
the full run is a separate command (docs/performance.md, "Load and soak").
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import math
import os
import random
import subprocess
import sys
from argparse import Namespace
from pathlib import Path

import httpx
from browser import require_chromium

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import load  # noqa: E402

TOWN = "341504001"
TODAY = dt.date(2026, 12, 4)


def town_official_store() -> dict:
    """The props a town official's ``/`` has after its own router answer."""
    return {
        "filter-town.value": TOWN,
        "filter-town.disabled": True,
        "filter-town.options": [
            {"label": "A", "value": TOWN},
            {"label": "B", "value": "341504002"},
        ],
        "filter-village.value": None,
        "filter-village.options": [
            {"label": "a", "value": f"{TOWN}001"},
            {"label": "b", "value": f"{TOWN}002"},
        ],
        "filter-grid.value": None,
        "filter-period.start_date": "2026-01-01",
        "filter-period.end_date": "2026-12-04",
        "filter-scope.data": {"town": TOWN, "village": None},
    }


def test_a_town_official_chooses_only_inside_its_town():
    """Choices come from the page's own options; the clientside pin keeps the town."""
    rng = random.Random(1)
    assert load.action_kinds("town") == ["village", "period"]
    store = town_official_store()
    assert load.choose(store, "town", "town", rng, TODAY) is None  # its dropdown is off
    for _ in range(20):
        choice = load.choose(store, "town", "village", rng, TODAY)
        assert choice is not None and choice.value.startswith(TOWN)
        assert choice.value in choice.offered and choice.value != store["filter-village.value"]
    # A forged or stale town in the dropdown is pinned back, as FILTERS_JS does.
    store["filter-town.value"] = "341504002"
    store["filter-village.value"] = "341504002001"
    changed = load.mirror_filters(store, {"filter-village"})
    assert store["filters-store.data"]["town"] == TOWN
    assert store["filters-store.data"]["village"] is None  # not inside the pinned town
    assert {"filters-store.data", "filter-town.value", "filter-village.value"} <= changed


def test_a_period_is_the_date_pickers_two_changes():
    """The picker sends the start as soon as it is set, then the end: two chains."""
    store = town_official_store()
    assert load.period_steps(store, "2025-01-01", "2025-12-31") == [
        {"filter-period.start_date": "2025-01-01"},
        {"filter-period.end_date": "2025-12-31"},
    ]
    assert load.period_steps(store, "2026-01-01", "2026-06-30") == [
        {"filter-period.end_date": "2026-06-30"}
    ]
    # The current period is never offered again (the picker would send nothing).
    choice = load.choose(store, "district", "period", random.Random(2), TODAY)
    assert choice is not None and ("2026-01-01", "2026-12-04") not in choice.offered


def fake_run(templates: dict, by_input: dict, outputs_of: dict, inputs_of: dict) -> load.Run:
    run = load.Run(Namespace(think="1:2", max_interactions=0))
    run.base = "http://127.0.0.1:9"
    run.cap = load.Captured(
        templates={"/": templates},
        order={"/": list(templates)},
        first_changed={"/": {k: [] for k in templates}},
        query={},
        store={"/": {}},
        persistent={"/": []},
        by_input=by_input,
        inputs_of=inputs_of,
        outputs_of=outputs_of,
    )
    return run


def test_a_triggered_callback_without_template_fails_the_run():
    """A server callback the graph names for a change, but never captured, is an error."""
    run = fake_run(
        templates={"tiles.html": {"output": "tiles.html", "inputs": []}},
        by_input={"filters-store.data": ["tiles.html", "lazy.figure"]},
        outputs_of={"tiles.html": ["tiles.html"], "lazy.figure": ["lazy.figure"]},
        inputs_of={"tiles.html": ["filters-store.data"], "lazy.figure": ["filters-store.data"]},
    )
    page = load.Page(run, "tab", "/", "someone")
    page.present = {"tiles", "lazy", "filters-store"}
    page.loaded = True
    assert page.dependents({"filters-store.data"}, None) == ["tiles.html"]
    assert run.record.errors["callback without template"] == 1
    # Not on this page: the renderer would not run it, no error.
    page.present.discard("lazy")
    page.dependents({"filters-store.data"}, None)
    assert run.record.errors["callback without template"] == 1
    asyncio.run(page.close())


def test_a_204_is_not_counted_as_answered():
    """A chain with a 204 is no answered filter change; a 204 is not a timed callback."""
    rec = load.Record()
    t = 1000.0
    rec.calls += [
        (t, "filter", "tiles", 50.0, 200, "answered"),
        (t, "filter", "map", 5.0, 204, "no_update"),
    ]
    base = {"page": "p", "user": "u", "role": "town", "scope": {"town": TOWN}, "sent": []}
    rec.interactions += [
        {
            **base,
            "t": t,
            "kind": "village",
            "value": f"{TOWN}001",
            "offered": [f"{TOWN}001"],
            "ms": 60.0,
            "callbacks": 2,
            "answers": {"answered": 1, "no_update": 1},
            "labels": ["map", "tiles"],
            "answered": False,
        },
        {
            **base,
            "t": t,
            "kind": "period",
            "value": ["2025-01-01", "2025-12-31"],
            "offered": [],
            "ms": 80.0,
            "callbacks": 2,
            "answers": {"answered": 2},
            "labels": ["map", "tiles"],
            "answered": True,
        },
    ]
    result = {"record": rec, "window": [t - 1, t + 1], "config": {"browser_tablets": 0}}
    s = load.summarize(result)
    assert s["interactions"]["n"] == 1 and s["interactions"]["p50"] == 80.0
    assert s["interactions_refused"] == 1
    assert s["by_tag"]["filter"]["n"] == 1
    assert s["answer_kinds"]["filter"] == {"answered": 1, "no_update": 1}
    assert s["errors"] == {}


def test_the_replay_must_agree_with_chromium():
    """p95s to the last answer within 20 % or 50 ms, else an error of the run."""
    same = [{"ms": 100.0}]
    assert load._agreement(same, [{"ms": 140.0}])["ok"]
    assert not load._agreement([{"ms": 400.0}], [{"ms": 200.0}])["ok"]
    assert load._agreement([], same) is None


def test_load_script_runs_clean(seeded_templates, tmp_path):
    """Filter changes and live pushes are answered, every probe reaches both walls, no errors;
    the town official's page chooses inside its town and gets its own panels."""
    require_chromium()
    out = tmp_path / "load.json"
    cmd = [
        sys.executable,
        str(ROOT / "benchmarks" / "load.py"),
        "--db",
        f"sqlite:///{seeded_templates['sqlite']}",
        "--tablets",
        "2",
        "--town-share",
        "0.5",
        "--walls",
        "2",
        "--rate",
        "20",
        "--warmup",
        "3",
        "--duration",
        "6",
        "--drain",
        "5",
        "--think",
        "0.5:1.5",
        "--json",
        str(out),
    ]
    proc = subprocess.run(
        cmd, capture_output=True, text=True, timeout=240, cwd=tmp_path, env=dict(os.environ)
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "| figure | value | target |" in proc.stdout
    assert "filter change → last answer" in proc.stdout
    raw = json.loads(out.read_text())
    summary = raw["summary"]
    assert summary["errors"] == {}
    assert summary["by_tag"]["filter"]["n"] > 0
    assert summary["interactions_refused"] == 0
    # Live pushes carry the feed, tiles and map over the socket and trigger no HTTP callback.
    assert "live" not in summary["by_tag"]
    pushes = summary["pushes"]
    for pushed in (
        "/ live-feed-html",
        "/wall live-feed-html",
        "/ kpi-tiles-html",
        "/ grid-style",
        "/wall grid-style",
    ):
        assert pushes.get(pushed, 0) > 0, (pushed, pushes)
    assert summary["interactions"]["n"] > 0
    ws = summary["event_ws"]
    assert ws["expected"] > 0 and ws["seen"] == ws["expected"]
    assert {"web", "worker", "redis", "simulator"} <= set(summary["memory"])

    changes = raw["result"]["record"]["interactions"]
    town = [i for i in changes if i["role"] == "town"]
    assert town, changes
    for i in town:
        area = i["scope"]["town"]
        assert area
        if i["kind"] == "village":
            assert i["value"].startswith(area) and i["value"] in i["offered"]
            assert all(str(v).startswith(area) for v in i["offered"])
        # 200 answers only, with the page's own panels (the tiles' and the map's callbacks).
        assert set(i["answers"]) <= {"answered", "partial"}, i
        assert {"tiles", "map"} <= set(i["labels"]), i
        assert all(sent["town"] == area for sent in i["sent"]), i
    for i in changes:
        if i["kind"] != "period":
            continue
        start, end = i["value"]
        # What the picker sends: the start with the old end, then the end (one step when only
        # one date changes).
        assert 1 <= len(i["sent"]) <= 2, i
        assert (i["sent"][-1]["start"], i["sent"][-1]["end"]) == (start, end), i
        if len(i["sent"]) == 2:
            assert i["sent"][0]["start"] == start and i["sent"][0]["end"] != end, i
        assert not math.isnan(i["ms"])


ROUTER = "page-content.children"
PANELS = "tiles.html"


def own_state_run() -> load.Run:
    """A captured ``/`` of two callbacks: the router, and a panel on the filters."""
    run = fake_run(
        templates={
            ROUTER: {"output": ROUTER, "inputs": [{"id": "url", "property": "pathname"}]},
            PANELS: {"output": PANELS, "inputs": [{"id": "filters-store", "property": "data"}]},
        },
        by_input={"url.pathname": [ROUTER], "filters-store.data": [PANELS]},
        outputs_of={ROUTER: [ROUTER], PANELS: [PANELS]},
        inputs_of={ROUTER: ["url.pathname"], PANELS: ["filters-store.data"]},
    )
    run.cap.first_changed["/"] = {ROUTER: ["url.pathname"], PANELS: ["filters-store.data"]}
    run.cap.browser_props = {"/": {"url.pathname": "/"}}
    return run


def component(cid: str, **props) -> dict:
    return {"type": "X", "namespace": "x", "props": {"id": cid, **props}}


def town_page() -> list[dict]:
    """What the router answers a town official: its town pinned, its villages only."""
    store = town_official_store()
    return [
        component(cid, **{k.partition(".")[2]: v for k, v in store.items() if k.startswith(cid)})
        for cid in ("filter-town", "filter-village", "filter-grid", "filter-period", "filter-scope")
    ] + [component("tiles")]


def test_a_replayed_page_loads_its_own_page_from_its_own_answers():
    """The router first; the panels then carry the filters of the user's own page."""
    sent: list[tuple[str, dict]] = []

    def server(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            if request.url.path == "/_dash-layout":
                root = component("root", children=[component("page-content"), component("url")])
                root["props"]["children"].append(component("filters-store", data={}))
                return httpx.Response(200, json=root)
            return httpx.Response(200, json=[])
        body = json.loads(request.content)
        sent.append((body["output"], body))
        if body["output"] == ROUTER:
            return httpx.Response(
                200, json={"response": {"page-content": {"children": town_page()}}}
            )
        return httpx.Response(200, json={"response": {"tiles": {"html": "<b>1</b>"}}})

    run = own_state_run()
    page = load.Page(run, "tab", "/", "official")

    async def go() -> None:
        page.client = httpx.AsyncClient(base_url=run.base, transport=httpx.MockTransport(server))
        await page.load()
        await page.close()

    asyncio.run(go())
    assert [out for out, _ in sent] == [ROUTER, PANELS]
    filters = sent[1][1]["inputs"][0]["value"]
    assert filters["town"] == TOWN and filters["start"] == "2026-01-01"
    assert [o["value"] for o in page.store["filter-village.options"]] == [
        f"{TOWN}001",
        f"{TOWN}002",
    ]
    assert page.store["tiles.html"] == "<b>1</b>"
    assert run.record.errors == {}


def test_an_answer_overtaken_by_a_newer_request_is_dropped():
    """As the renderer: the second request goes at once, the first answer is not applied."""
    first_in = asyncio.Event()
    release = asyncio.Event()
    n = 0

    async def server(request: httpx.Request) -> httpx.Response:
        nonlocal n
        n += 1
        mine = n
        if mine == 1:
            first_in.set()
            await release.wait()
        return httpx.Response(200, json={"response": {"tiles": {"html": f"answer {mine}"}}})

    run = own_state_run()
    page = load.Page(run, "tab", "/", "someone")

    async def go() -> None:
        page.client = httpx.AsyncClient(base_url=run.base, transport=httpx.MockTransport(server))
        older = asyncio.create_task(page.call(PANELS, {"filters-store.data"}, "filter"))
        await first_in.wait()
        await page.call(PANELS, {"filters-store.data"}, "filter")  # not queued behind it
        release.set()
        await older
        await page.close()

    asyncio.run(go())
    assert [c[5] for c in run.record.calls] == ["answered", "superseded"]
    assert page.store["tiles.html"] == "answer 2"
