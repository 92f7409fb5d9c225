"""The simulator: realistic, valid events that the worker stores without dead letters."""

from __future__ import annotations

import json
import time
from collections import Counter

from eventfactory import make_settings
from sqlalchemy import func, select

from dashboard.worker import Worker
from datasources.events import load_registry, parse_event
from datasources.models import CallEvent, Ticket, TicketEvent
from datasources.simulator import Simulator, load_world, run_simulation
from datasources.stream import redis_client


def test_simulated_events_are_valid_and_varied(seeded_engine, test_district):
    sim = Simulator(load_world(seeded_engine), speed=200_000, seed=1)
    registry = load_registry(seeded_engine, test_district)
    events = []
    for _ in range(30):
        events += sim.next_events(100)
        time.sleep(0.02)
    ids = [e["id"] for e in events]
    assert len(set(ids)) == len(ids)
    kinds = Counter(e["kind"] for e in events)
    assert {"call.key", "device.heartbeat", "ticket.created", "points.earned"} <= set(kinds)
    assert kinds["ticket.closed"] > 0 and kinds["ticket.dispatched"] > 0
    for event in events:
        parsed = parse_event(json.dumps(event))
        assert registry.check(parsed) == [], event


def test_simulate_then_work_stores_everything(
    tmp_path, seeded_engine, seeded_url, redis_url, test_district
):
    settings = make_settings(tmp_path, test_district, seeded_url, redis_url)
    redis = redis_client(redis_url)
    worker = Worker(settings, seeded_engine, redis, consumer="sim")
    worker.start()
    sent = run_simulation(
        seeded_engine, redis, settings.stream_key(), rate=2000, speed=20_000, duration=1.5, seed=2
    )
    assert sent >= 2000
    while entries := worker.read_new():
        worker.process(entries)
    worker.drain_own_pending()
    assert redis.xlen(worker.keys.deadletter) == 0
    with seeded_engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(CallEvent)) > 0
        assert conn.scalar(select(func.count()).select_from(Ticket)) > 0
        assert conn.scalar(select(func.count()).select_from(TicketEvent)) > 0
    redis.close()
