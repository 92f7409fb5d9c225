"""The web process's one live subscription and the figures its pages share (callbacks/livehub.py).

Real Redis (embedded and system), real pub/sub; no browser.
"""

from __future__ import annotations

import asyncio
import json
import time

import pytest
import redis.asyncio as aioredis
from browser import free_port

from callbacks.livehub import DOWN, Hub, Shared, freeze


def run(coro):
    return asyncio.run(coro)


def test_shared_computes_once_for_many_askers_and_again_when_old():
    calls = []

    async def compute():
        calls.append(time.monotonic())
        await asyncio.sleep(0.05)
        return {"n": len(calls)}

    async def main():
        shared = Shared()
        first = await asyncio.gather(*(shared.get("k", 0.2, compute) for _ in range(50)))
        again = await shared.get("k", 0.2, compute)
        await asyncio.sleep(0.25)
        later = await shared.get("k", 0.2, compute)
        return first, again, later

    first, again, later = run(main())
    assert {f["n"] for f in first} == {1}
    assert again == {"n": 1}
    assert later == {"n": 2}
    assert len(calls) == 2


def test_shared_gives_every_asker_the_error_and_survives_a_cancelled_asker():
    async def boom():
        await asyncio.sleep(0.05)
        raise ConnectionError("redis gone")

    async def slow():
        await asyncio.sleep(0.1)
        return 7

    async def main():
        shared = Shared()
        errors = await asyncio.gather(
            *(shared.get("e", 1.0, boom) for _ in range(3)), return_exceptions=True
        )
        # One asker gives up (its page closed): the others still get the answer.
        quitter = asyncio.create_task(shared.get("s", 1.0, slow))
        stayer = asyncio.create_task(shared.get("s", 1.0, slow))
        await asyncio.sleep(0.02)
        quitter.cancel()
        return errors, await stayer, quitter.cancelled()

    errors, value, cancelled = run(main())
    assert all(isinstance(e, ConnectionError) for e in errors)
    assert value == 7 and cancelled


def test_frozen_value_is_what_dash_sends():
    from dash import html

    assert freeze([html.Li("x", className="c")]).value == [
        {
            "props": {"children": "x", "className": "c"},
            "type": "Li",
            "namespace": "dash_html_components",
        }
    ]


def test_the_hub_parses_each_message_once_for_every_page(redis_url, test_district):
    channel = f"wushi:{{{test_district}}}:live"

    async def main():
        hub = Hub(redis_url, channel)
        pages = [await hub.join() for _ in range(3)]
        sender = aioredis.from_url(redis_url)
        await sender.publish(channel, json.dumps([{"id": "b"}, {"id": "a"}]))
        await sender.publish(channel, "not json")
        await sender.publish(channel, "[]")
        got = [[await asyncio.wait_for(q.get(), 5) for _ in range(2)] for q in pages]
        hub.leave(pages[0])
        await sender.publish(channel, json.dumps([{"id": "c"}]))
        after = [await asyncio.wait_for(q.get(), 5) for q in pages[1:]]
        left_empty = pages[0].empty()
        await sender.aclose()
        await hub.close()
        return got, after, left_empty

    got, after, left_empty = run(main())
    for batches in got:
        assert batches == [[{"id": "b"}, {"id": "a"}], []]  # the non-JSON message is skipped
    assert after == [[{"id": "c"}], [{"id": "c"}]]
    assert left_empty


def test_joining_without_redis_fails_within_seconds_and_pages_learn_of_a_lost_channel(
    redis_url, test_district
):
    async def unreachable():
        hub = Hub(f"redis://127.0.0.1:{free_port()}/0", "nowhere")
        t0 = time.monotonic()
        with pytest.raises(aioredis.ConnectionError):
            await hub.join()
        took = time.monotonic() - t0
        await hub.close()
        return took

    assert run(unreachable()) < 5

    async def lost():
        channel = f"wushi:{{{test_district}}}:live"
        hub = Hub(redis_url, channel)
        queue = await hub.join()
        admin = aioredis.from_url(redis_url)
        # Drop the hub's subscriber connection, as a Redis restart does.
        for client in await admin.client_list():
            if int(client.get("sub", 0)) and client.get("name", "") == "":
                await admin.client_kill_filter(_id=client["id"])
        item = await asyncio.wait_for(queue.get(), 10)
        queue2 = await hub.join()  # subscribed again
        await admin.publish(channel, "[]")
        again = await asyncio.wait_for(queue2.get(), 5)
        await admin.aclose()
        await hub.close()
        return item, again

    item, again = run(lost())
    assert item is DOWN
    assert again == []


def test_a_flood_keeps_calls_and_escalations_in_the_feed_newest_first():
    from callbacks.live import FEED_SHOWN, first_to_show

    kinds = ["points.earned", "ticket.dispatched", "call.key", "supervision.voted"] * 20
    kinds[7] = "ticket.escalated"
    fresh = [{"id": str(i), "kind": k} for i, k in enumerate(kinds)]  # newest first
    shown = first_to_show(fresh)
    assert len(shown) == FEED_SHOWN
    urgent_ids = [e["id"] for e in fresh if e["kind"] in ("call.key", "ticket.escalated")]
    assert set(urgent_ids) <= {e["id"] for e in shown}  # all 21 urgent ones kept
    assert [int(e["id"]) for e in shown] == sorted(int(e["id"]) for e in shown)
    # The rest are the newest routine ones.
    routine = [e["id"] for e in shown if e["id"] not in urgent_ids]
    assert routine == [e["id"] for e in fresh if e["id"] not in urgent_ids][: len(routine)]
    assert first_to_show(fresh[:5]) == fresh[:5]


def test_after_a_pause_green_key_calls_come_before_other_key_presses():
    """A burst of 100 (the worker paused half a second at 200 events/s) with 40 key presses:
    every green-key call and the petition stay in the 30 shown, thumbs and hang-ups fill in."""
    from callbacks.live import FEED_SHOWN, first_to_show

    fresh: list[dict[str, str]] = []
    for i in range(100):  # newest first
        if i % 5 == 0:
            entry = {"kind": "call.key", "key": "call"}  # 20 green-key calls
        elif i % 5 == 1:
            entry = {"kind": "call.key", "key": "satisfied" if i % 2 else "hangup"}
        else:
            entry = {"kind": "device.heartbeat"}
        fresh.append({"id": str(i), **entry})
    fresh[63] = {"id": "63", "kind": "petition.filed"}
    shown = first_to_show(fresh)
    assert len(shown) == FEED_SHOWN
    ids_shown = {e["id"] for e in shown}
    green = {e["id"] for e in fresh if e.get("key") == "call"}
    assert green | {"63"} <= ids_shown  # all 20 green-key calls and the petition
    others = [e for e in shown if e["kind"] == "call.key" and e.get("key") != "call"]
    assert len(others) == FEED_SHOWN - 21  # the newest other key presses fill the rest
    assert [e["id"] for e in others] == [
        e["id"] for e in fresh if e["kind"] == "call.key" and e.get("key") != "call"
    ][: len(others)]
    assert [int(e["id"]) for e in shown] == sorted(int(e["id"]) for e in shown)


def test_open_tallies_answer_every_area_from_one_read(redis_url, test_district):
    from redis import Redis

    from datasources import live_view
    from datasources.live import LiveKeys

    d = test_district
    keys = LiveKeys(d)
    town, village, grid = d + "001", d + "001002", d + "001002003"
    other_grid = d + "002001001"
    with Redis.from_url(redis_url) as r:
        r.hset(
            keys.open_tickets,
            mapping={
                "t1": json.dumps({"grid": grid}),
                "t2": json.dumps({"grid": other_grid}),
                "t3": json.dumps({"village": village}),  # a village-level ticket
            },
        )
        r.hset(keys.unanswered_info, mapping={"c1": json.dumps({"grid": grid})})
        r.hset(
            keys.alerts,
            mapping={
                "a1": json.dumps({"id": "a1", "kind": "device_offline", "grid": other_grid}),
                "a2": json.dumps({"id": "a2", "kind": "unanswered_call", "grid": grid}),
            },
        )

    async def main():
        r = aioredis.from_url(redis_url)
        tallies = await live_view.open_tallies(r, d)
        got = {
            area: live_view.tallied(tallies, d, area)
            for area in (d, None, town, village, grid, other_grid, d + "003")
        }
        snap = await live_view.snapshot(r, d, village)
        pulse = await live_view.unanswered_grids(r, d, town)
        alerts = [a["id"] for a in await live_view.alerts(r, d, d)]
        town_alerts = [a["id"] for a in await live_view.alerts(r, d, town)]
        await r.aclose()
        return got, snap, pulse, alerts, town_alerts

    got, snap, pulse, alerts, town_alerts = run(main())
    assert got[d] == got[None] == {"open": 3, "unanswered": 1}
    assert got[town] == got[village] == {"open": 2, "unanswered": 1}
    assert got[grid] == {"open": 1, "unanswered": 1}
    assert got[other_grid] == {"open": 1, "unanswered": 0}
    assert got[d + "003"] == {"open": 0, "unanswered": 0}
    assert snap == got[village]
    assert pulse == [grid]
    assert alerts == ["a2", "a1"]  # an unanswered call before an offline device
    assert town_alerts == ["a2"]


def test_send_writes_the_message_dash_would_from_text_serialised_once():
    import queue
    from types import SimpleNamespace

    from dash import html
    from dash._utils import to_json

    from callbacks.livehub import freeze, send

    outbound = SimpleNamespace(sync_q=queue.Queue())
    ws = SimpleNamespace(
        is_shutdown=False, _renderer_id="r-1", _get_outbound_queue=lambda: outbound
    )
    frozen = freeze([html.Li("通话 call", className="c", **{"data-event-id": "e1"})])
    send(ws, "live-feed", "children", frozen)
    sent = json.loads(outbound.sync_q.get_nowait())
    # What DashWebsocketCallback.set_prop_sync queues for the same value (Dash 4.4).
    expected = {
        "type": "set_props",
        "rendererId": "r-1",
        "payload": {"componentId": "live-feed", "props": {"children": frozen.value}},
    }
    assert sent == json.loads(to_json(expected))
    ws.is_shutdown = True
    send(ws, "live-feed", "children", frozen)
    assert outbound.sync_q.empty()
