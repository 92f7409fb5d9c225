"""Scheduler jobs, called with an explicit ``now`` (no sleeping), and their Redis lock."""

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest
from eventfactory import Factory, make_settings
from sqlalchemy import select, update

from dashboard.scheduler import (
    alert_unanswered_calls,
    escalate_overdue_tickets,
    mark_offline_devices,
    parse_deadlines,
    run_locked,
)
from dashboard.worker import Worker
from datasources.live import read_alerts
from datasources.models import Device, Ticket
from datasources.stream import publish, redis_client


@pytest.fixture
def pipeline(tmp_path, seeded_engine, seeded_url, redis_url, test_district):
    settings = make_settings(tmp_path, test_district, seeded_url, redis_url)
    redis = redis_client(redis_url)
    worker = Worker(settings, seeded_engine, redis, consumer="s1")
    worker.start()
    yield worker, redis, Factory.from_engine(seeded_engine, test_district)
    redis.close()


def drain(worker: Worker) -> None:
    while entries := worker.read_new():
        worker.process(entries)


def test_an_unanswered_green_call_raises_an_alert_after_five_minutes(pipeline):
    worker, redis, f = pipeline
    now = dt.datetime.now(dt.UTC)
    call, answered = f.call(ts=now - dt.timedelta(seconds=10)), f.call(ts=now)
    publish(
        redis, worker.keys.events, [call, answered, f.call_returned(answered["id"], ts=now)], 1000
    )
    drain(worker)
    assert alert_unanswered_calls(redis, f.district, now + dt.timedelta(minutes=4)) == []
    assert alert_unanswered_calls(redis, f.district, now + dt.timedelta(minutes=5)) == [call["id"]]
    assert alert_unanswered_calls(redis, f.district, now + dt.timedelta(minutes=6)) == []
    alert = read_alerts(redis, f.district)[f"call:{call['id']}"]
    assert alert["kind"] == "unanswered_call" and alert["ticket"] is None
    assert alert["grid"] == f.grid
    # A ticket for the call (source caller) clears the alert.
    ticket = f.ticket(source="caller", ts=now + dt.timedelta(seconds=20))
    publish(redis, worker.keys.events, [ticket], 1000)
    drain(worker)
    assert f"call:{call['id']}" not in read_alerts(redis, f.district)


def test_a_call_unanswered_for_a_day_leaves_the_live_state_with_its_alert(pipeline):
    import asyncio

    import redis.asyncio as aioredis

    from datasources import live_view

    worker, redis, f = pipeline
    now = dt.datetime.now(dt.UTC)
    call = f.call(ts=now - dt.timedelta(minutes=10))
    publish(redis, worker.keys.events, [call], 1000)
    drain(worker)
    assert alert_unanswered_calls(redis, f.district, now) == [call["id"]]

    async def live_figures():
        r = aioredis.from_url(worker.settings.redis_url)
        try:
            snap = await live_view.snapshot(r, f.district, f.district)
            return snap["unanswered"], await live_view.unanswered_grids(r, f.district, f.grid)
        finally:
            await r.aclose()

    assert asyncio.run(live_figures()) == (1, [f.grid])
    assert alert_unanswered_calls(redis, f.district, now + dt.timedelta(days=1)) == []
    assert asyncio.run(live_figures()) == (0, [])
    assert f"call:{call['id']}" not in read_alerts(redis, f.district)


def test_an_overdue_ticket_is_escalated_once(pipeline, seeded_engine):
    worker, redis, f = pipeline
    now = dt.datetime.now(dt.UTC)
    ticket = f.ticket(category="livelihood", ts=now - dt.timedelta(minutes=1))
    publish(redis, worker.keys.events, [ticket], 1000)
    drain(worker)
    table = parse_deadlines('{"livelihood": {"arrive_hours": 2, "close_hours": 72}}')
    later = now + dt.timedelta(hours=3)
    assert escalate_overdue_tickets(seeded_engine, redis, f.district, now, deadlines=table) == []
    assert escalate_overdue_tickets(seeded_engine, redis, f.district, later, deadlines=table) == [
        (ticket["ticket"], "arrival")
    ]
    assert escalate_overdue_tickets(seeded_engine, redis, f.district, later, deadlines=table) == []
    # The escalation goes through the stream and is stored like any event (its ts is "later").
    worker.clock = lambda: later
    drain(worker)
    with seeded_engine.connect() as conn:
        assert conn.scalar(select(Ticket.escalation_level)) == "village"
    assert f"ticket:{ticket['ticket']}:arrival" in read_alerts(redis, f.district)


def test_a_silent_device_goes_offline(pipeline, seeded_engine):
    worker, redis, f = pipeline
    now = dt.datetime.now(dt.UTC)
    with seeded_engine.begin() as conn:
        conn.execute(update(Device).values(last_heartbeat_at=now, online=True))
        conn.execute(
            update(Device)
            .where(Device.id == f.device)
            .values(last_heartbeat_at=now - dt.timedelta(hours=25))
        )
    assert mark_offline_devices(seeded_engine, redis, f.district, now) == [f.device]
    assert mark_offline_devices(seeded_engine, redis, f.district, now) == []
    with seeded_engine.connect() as conn:
        assert conn.scalar(select(Device.online).where(Device.id == f.device)) is False
    assert read_alerts(redis, f.district)[f"device:{f.device}"]["kind"] == "device_offline"
    # A heartbeat brings it back and clears the alert.
    publish(redis, worker.keys.events, [f.heartbeat(ts=now)], 1000)
    drain(worker)
    with seeded_engine.connect() as conn:
        assert conn.scalar(select(Device.online).where(Device.id == f.device)) is True
    assert f"device:{f.device}" not in read_alerts(redis, f.district)


def test_two_schedulers_do_not_run_a_job_at_once(redis_url, test_district):
    redis = redis_client(redis_url)
    running, runs = [], []
    barrier = threading.Barrier(4)

    def job() -> None:
        running.append(1)
        assert len(running) == 1
        time.sleep(0.3)
        runs.append(1)
        running.pop()

    def scheduler() -> None:
        barrier.wait()
        run_locked(redis, test_district, "test-job", 5_000, job)

    threads = [threading.Thread(target=scheduler) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert runs == [1]
    assert run_locked(redis, test_district, "test-job", 5_000, job)  # released afterwards
    redis.close()
