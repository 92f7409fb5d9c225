"""The live page loop (callbacks/live.py): its schedule, its retries and its pushes.

No browser, no server, no Redis: ``PageSchedule`` is pure and is driven with made-up clocks;
``LivePage`` runs against a fake socket, hub and figures.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest
import redis.asyncio as aioredis
from dash.exceptions import PreventUpdate
from sqlalchemy.exc import OperationalError

from callbacks import live, livehub
from callbacks.live import (
    FEED_SHOWN,
    FLUSH_S,
    MAP_EVERY_S,
    PROBE_EVERY_S,
    RETRY_MAX_S,
    SELECTION_EVERY_S,
    SLOW_EVERY_S,
    TODAY_EVERY_S,
    Backoff,
    LivePage,
    LiveProcess,
    PageSchedule,
    merged,
)
from layouts import ids

EPS = 1e-9


def drive(clock: PageSchedule, arrivals: list[float], until: float, step: float = 0.01):
    """Run the loop's feed part on a made-up clock: a batch of the page's area at each of
    ``arrivals``; return the times of the flushes and of today's tiles."""
    flushes: list[float] = []
    today: list[float] = []
    due = sorted(arrivals)
    now = 0.0
    while now <= until + EPS:
        came = False
        while due and due[0] <= now + EPS:
            due.pop(0)
            came = True
        if came:
            clock.arrived(now, mine=True)
        if clock.flush_due(now):
            flushes.append(now)
            if clock.flushed(now):
                today.append(now)
        now = round(now + step, 6)
    return flushes, today


def gaps(times: list[float]) -> list[float]:
    return [b - a for a, b in zip(times, times[1:], strict=False)]


def test_an_event_after_a_quiet_spell_is_flushed_at_once():
    clock = PageSchedule.start(0.0)
    assert clock.wait_s(3.0) is None  # idle: wait for a batch
    clock.arrived(3.0, mine=True)
    assert clock.flush_due(3.0)
    clock.flushed(3.0)
    assert clock.wait_s(3.0) is None and not clock.flush_due(3.1)


def test_the_feed_is_flushed_no_more_often_than_flush_s():
    clock = PageSchedule.start(0.0)
    arrivals = [5.0 + i * 0.01 for i in range(200)]  # 100 batches a second for two seconds
    flushes, _today = drive(clock, arrivals, until=8.0)
    assert flushes[0] == pytest.approx(5.0)
    assert min(gaps(flushes)) >= FLUSH_S - EPS
    assert len(flushes) <= 2.0 / FLUSH_S + 2
    # The last batch is flushed too, within FLUSH_S of its arrival.
    assert arrivals[-1] <= flushes[-1] <= arrivals[-1] + FLUSH_S + 0.01
    # While a flush is pending the page sleeps until it is due, then takes all queued at once.
    clock.arrived(9.0, mine=True)
    clock.flushed(9.0)
    clock.arrived(9.05, mine=True)
    assert clock.wait_s(9.05) == pytest.approx(FLUSH_S - 0.05)
    assert not clock.flush_due(9.1) and clock.flush_due(9.0 + FLUSH_S)


def test_batches_of_other_areas_flush_nothing():
    clock = PageSchedule.start(0.0)
    clock.arrived(1.0, mine=False)
    assert not clock.flush_due(1.0) and clock.wait_s(1.0) is None


def test_todays_tiles_go_with_a_flush_at_most_every_today_every_s():
    clock = PageSchedule.start(0.0)
    arrivals = [1.0 + i * 0.02 for i in range(150)]
    flushes, today = drive(clock, arrivals, until=5.0)
    assert set(today) <= set(flushes)
    assert today and min(gaps(today)) >= TODAY_EVERY_S - EPS
    # While flushes go on, today's tiles follow within a flush interval of being due.
    assert max(gaps(today)) <= TODAY_EVERY_S + FLUSH_S + 0.02
    assert len(today) < len(flushes)


def test_the_map_is_due_only_when_something_moved_and_map_every_s_passed():
    clock = PageSchedule.start(0.0)
    assert not clock.map_due(10.0)  # nothing arrived
    clock.arrived(10.0, mine=False)  # any batch moves the figures (the minute's empty one too)
    assert clock.map_due(10.0)
    clock.map_pushed(10.0)
    assert not clock.map_due(30.0)  # nothing arrived since
    clock.arrived(10.5, mine=True)
    assert not clock.map_due(10.0 + MAP_EVERY_S - 0.01)
    assert clock.map_due(10.0 + MAP_EVERY_S)


def test_the_selection_slow_pushes_and_probe_have_their_own_periods():
    clock = PageSchedule.start(0.0)
    for due, done, every in (
        (clock.selection_due, clock.selection_read, SELECTION_EVERY_S),
        (clock.slow_due, clock.slow_pushed, SLOW_EVERY_S),
        (clock.probe_due, clock.probed, PROBE_EVERY_S),
    ):
        assert not due(every - 0.01)
        assert due(every)
        done(every)
        assert not due(2 * every - 0.01)
        assert due(2 * every)


def test_another_area_chosen_flushes_its_feed_at_once():
    clock = PageSchedule.start(0.0)
    clock.arrived(0.01, mine=True)
    assert not clock.flush_due(0.05)  # within FLUSH_S of the first push
    clock.area_changed(0.05)
    assert clock.flush_due(0.05)
    clock.area_changed(7.0)  # also when nothing was pending
    assert clock.flush_due(7.0)


def test_a_burst_keeps_urgent_entries_first_newest_first_without_repeats():
    shown = [{"id": f"old{i}", "kind": "points.earned"} for i in range(FEED_SHOWN)]
    pending = [{"id": str(i), "kind": "ticket.dispatched"} for i in range(50)]
    pending[40] = {"id": "40", "kind": "petition.filed"}
    pending[45] = {"id": "45", "kind": "call.key", "key": "call"}
    pending.append(shown[0])  # already shown: not again
    feed = merged(shown, pending)
    assert len(feed) == FEED_SHOWN
    assert {"40", "45"} <= {e["id"] for e in feed}
    assert all(not e["id"].startswith("old") for e in feed)
    assert [int(e["id"]) for e in feed] == sorted(int(e["id"]) for e in feed)
    # A quiet flush keeps what was shown under the new entries.
    assert merged(shown, pending[:2]) == pending[:2] + shown[: FEED_SHOWN - 2]


def test_backoff_doubles_up_to_retry_max_s_and_starts_over():
    backoff = Backoff()
    waits = [backoff.next() for _ in range(5)]
    assert waits == [0.5, 1.0, 2.0, 2.0, 2.0]
    assert max(waits) <= RETRY_MAX_S
    backoff.reset()
    assert backoff.next() == 0.5


class FakeSocket:
    def __init__(self, selection: dict[str, Any]) -> None:
        self.is_shutdown = False
        self.selection = selection
        self.reads = 0

    async def get_prop(self, component_id: str, prop: str) -> Any:
        self.reads += 1
        assert (component_id, prop) == (ids.LIVE_SELECTION, "data")
        return dict(self.selection)


class Recorder:
    def __init__(self) -> None:
        self.props: list[tuple[str, dict[str, Any]]] = []
        self.waits: list[float] = []

    def push(self, cid: str, props: dict[str, Any]) -> None:
        self.props.append((cid, props))

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)


class ScriptedPage(LivePage):
    """A page whose ``serve`` follows a script: raise each exception in turn, then return."""

    def __init__(self, script: list[Any], ws: FakeSocket, rec: Recorder) -> None:
        sources = SimpleNamespace(district="341000", redis_url="redis://unused")
        super().__init__(LiveProcess(sources), ws, push=rec.push, sleep=rec.sleep)  # type: ignore[arg-type]
        self.script = script
        self.served = 0

    async def serve(self) -> None:
        self.served += 1
        step = self.script.pop(0)
        if step == "subscribed":
            self.subscribed = True
            step = self.script.pop(0)
        if isinstance(step, BaseException):
            raise step


def test_redis_lost_marks_the_feed_down_and_retries_with_backoff():
    rec = Recorder()
    lost = aioredis.ConnectionError("gone")
    script: list[Any] = [lost, lost, lost, lost, "subscribed", lost, None]
    page = ScriptedPage(script, FakeSocket({}), rec)
    asyncio.run(page.run())
    assert page.served == 6
    assert rec.waits == [0.5, 1.0, 2.0, 2.0, 0.5]  # after a subscription, quick again
    assert max(rec.waits) <= RETRY_MAX_S
    assert rec.props.count((ids.WS_STATUS, {"data-feed": "down"})) == 5
    assert rec.props.count((ids.DATA_AS_OF, {"className": "asof stale"})) == 5


def test_a_database_down_before_the_area_is_known_retries_after_retry_max_s():
    rec = Recorder()
    down = OperationalError("select 1", {}, Exception("down"))
    page = ScriptedPage([down, None], FakeSocket({}), rec)
    asyncio.run(page.run())
    assert rec.waits == [RETRY_MAX_S] and page.served == 2
    assert (ids.WS_STATUS, {"data-feed": "down"}) not in rec.props


def test_a_page_gone_stops_the_stream():
    rec = Recorder()
    page = ScriptedPage([live._PageGone(), None], FakeSocket({}), rec)
    with pytest.raises(PreventUpdate):
        asyncio.run(page.run())
    assert page.served == 1 and rec.waits == []


def test_an_unexpected_error_stops_the_stream_without_its_text():
    rec = Recorder()
    page = ScriptedPage([RuntimeError("secret detail"), None], FakeSocket({}), rec)
    with pytest.raises(PreventUpdate) as raised:
        asyncio.run(page.run())
    assert "secret" not in str(raised.value) and page.served == 1


def test_a_shut_socket_ends_the_stream():
    rec = Recorder()
    ws = FakeSocket({})
    ws.is_shutdown = True
    page = ScriptedPage([None], ws, rec)
    with pytest.raises(PreventUpdate):
        asyncio.run(page.run())
    assert page.served == 0


def test_next_batch_takes_everything_queued_newest_first_and_down_wins(monkeypatch):
    monkeypatch.setattr(live, "IDLE_WAIT_S", 0.01)

    async def main():
        queue: asyncio.Queue[Any] = asyncio.Queue()
        idle = await LivePage.next_batch(queue, None)
        for batch in ([{"id": "1"}], [{"id": "3"}, {"id": "2"}]):
            queue.put_nowait(batch)
        both = await LivePage.next_batch(queue, None)
        queue.put_nowait([{"id": "4"}])
        queue.put_nowait(livehub.DOWN)
        queue.put_nowait([{"id": "5"}])
        down = await LivePage.next_batch(queue, 0.0)
        return idle, both, down

    idle, both, down = asyncio.run(main())
    assert idle is None
    assert [e["id"] for e in both] == ["3", "2", "1"]
    assert down is livehub.DOWN


class FakeHub:
    def __init__(self) -> None:
        self.queue: asyncio.Queue[Any] = asyncio.Queue()
        self.redis = None
        self.left = False

    async def join(self) -> asyncio.Queue[Any]:
        return self.queue

    def leave(self, queue: asyncio.Queue[Any]) -> None:
        self.left = True


class FakeLive(LiveProcess):
    """The figures of a page without Redis or SQL: each names what it was built from."""

    def __init__(self) -> None:
        sources = SimpleNamespace(
            district="341000",
            redis_url="redis://unused",
            stale_since=lambda: None,
            check_database=lambda: True,
        )
        super().__init__(sources)  # type: ignore[arg-type]
        self.fake_hub = FakeHub()
        self.feeds = {"T1": [{"id": "a1"}], "T2": [{"id": "b1"}]}

    def hub(self) -> Any:
        return self.fake_hub

    def area(self, filters: dict[str, Any], current: Any) -> Any:
        return SimpleNamespace(code=filters.get("town") or "341000")

    async def shown(self, r: Any, code: str) -> list[dict[str, Any]]:
        return list(self.feeds.get(code, []))

    async def feed(self, shown: list[dict[str, Any]], lang: str) -> livehub.Frozen:
        return livehub.freeze([e["id"] for e in shown])

    async def today(self, r: Any, code: str, lang: str) -> livehub.Frozen:
        return livehub.freeze(f"today {code}")

    async def alerts(self, r: Any, code: str, lang: str) -> livehub.Frozen:
        return livehub.freeze(f"alerts {code}")

    async def as_of(self, r: Any) -> float | None:
        return None

    async def pulse(self, r: Any, code: str) -> list[str]:
        return []

    async def panels(self, sel: Any, pulse: list[str]) -> Any:
        code = sel.filters.get("town")
        return tuple(livehub.freeze(f"{part} {code}") for part in ("tiles", "hideout", "legend"))


def test_a_page_gets_everything_then_its_events_and_another_area_at_once(monkeypatch):
    """The whole loop on fakes: the first push, events of its area (others' are not shown),
    a town chosen (that town's feed at once, without waiting for an event), and the end."""
    monkeypatch.setattr(live, "SELECTION_EVERY_S", 0.2)
    monkeypatch.setattr(live, "IDLE_WAIT_S", 0.05)
    sent: list[tuple[float, str, str, Any]] = []

    def record(ws: Any, cid: str, prop: str, frozen: livehub.Frozen) -> None:
        sent.append((asyncio.get_running_loop().time(), cid, prop, frozen.value))

    monkeypatch.setattr(livehub, "send", record)
    rec = Recorder()
    fake = FakeLive()
    ws = FakeSocket({"filters": {"town": "T1"}, "lang": "zh", "path": "/", "metric": "calls"})
    page = LivePage(fake, ws, push=rec.push)

    def feeds() -> list[Any]:
        return [value for _t, cid, _p, value in sent if cid == ids.FEED_HTML]

    async def main() -> None:
        task = asyncio.create_task(page.serve())
        await asyncio.sleep(0.05)
        assert feeds() == [["a1"]]
        assert (ids.TILES_HTML, "tiles T1") in [(c, v) for _t, c, _p, v in sent]
        assert (ids.WS_STATUS, {"data-feed": "up"}) in rec.props
        assert page.subscribed
        fake.fake_hub.queue.put_nowait([{"id": "x1", "area": "T2"}])  # not T1's
        fake.fake_hub.queue.put_nowait([{"id": "a2", "grid": "T1001001"}])
        await asyncio.sleep(FLUSH_S + 0.1)
        ws.selection = {"filters": {"town": "T2"}, "lang": "zh", "path": "/", "metric": "calls"}
        await asyncio.sleep(0.4)
        ws.is_shutdown = True
        await asyncio.wait_for(task, 2)

    monkeypatch.setattr(
        live.live_view, "in_area", lambda e, code, district: e.get("grid", "").startswith(code)
    )
    asyncio.run(main())
    assert feeds()[:2] == [["a1"], ["a2", "a1"]]
    assert feeds()[-1] == ["b1"]  # the town chosen: its feed, with no event of it arriving
    assert all("x1" not in f for f in feeds())
    assert fake.fake_hub.left
