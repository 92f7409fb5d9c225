"""The stream worker against real SQLite/PostgreSQL and real Redis servers (no mocks)."""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from eventfactory import Factory, make_settings, new_id
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from redis import Redis
from sqlalchemy import func, select

from dashboard.worker import GROUP, Worker, ensure_group
from datasources.events import parse_event
from datasources.kinds import KINDS, rebuild_live, store_batch
from datasources.live import LiveKeys, local_day, read_counts, read_feed
from datasources.models import (
    CallEvent,
    CallReturn,
    Device,
    DeviceHeartbeat,
    JobPlacement,
    LiveOutbox,
    Mediation,
    Petition,
    PointsTransaction,
    SupervisionItem,
    SupervisionVote,
    Ticket,
    TicketEvent,
    VillageNotice,
)
from datasources.stream import append_events, publish, redis_client


@pytest.fixture
def pipeline(tmp_path, seeded_engine, seeded_url, redis_url, test_district):
    """A worker, its Redis client and an event factory on a seeded database."""
    settings = make_settings(tmp_path, test_district, seeded_url, redis_url, park_timeout_s=600)
    redis = redis_client(redis_url)
    worker = Worker(settings, seeded_engine, redis, consumer="t1")
    worker.start()
    factory = Factory.from_engine(seeded_engine, test_district)
    yield worker, redis, factory
    redis.close()


def send(worker: Worker, events: list[dict]) -> None:
    """Append events (validated) and let the worker process everything there is."""
    publish(worker.redis, worker.keys.events, events, 100_000)
    drain(worker)


def send_raw(worker: Worker, raws: list) -> None:
    pipe = worker.redis.pipeline(transaction=False)
    for raw in raws:
        pipe.xadd(worker.keys.events, raw if isinstance(raw, dict) else {"event": raw})
    pipe.execute()
    drain(worker)


def drain(worker: Worker) -> None:
    while True:
        entries = worker.read_new()
        if not entries:
            return
        worker.process(entries)


def count(engine, model, *where) -> int:
    with engine.connect() as conn:
        return conn.scalar(select(func.count()).select_from(model).where(*where)) or 0


def deadletters(redis: Redis, keys: LiveKeys) -> list[dict[str, str]]:
    return [
        {k.decode(): v.decode(errors="replace") for k, v in fields.items()}
        for _, fields in redis.xrange(keys.deadletter)
    ]


def test_every_event_kind_is_stored(pipeline, seeded_engine):
    worker, redis, f = pipeline
    now = dt.datetime.now(dt.UTC)
    call = f.call(ts=now - dt.timedelta(minutes=3))
    other_call = f.call(ts=now - dt.timedelta(minutes=2))
    ticket = f.ticket(source="caller", ts=now - dt.timedelta(minutes=1))
    tid = ticket["ticket"]
    item = "SV" + new_id()[:8]
    events = [
        call,
        other_call,
        f.call("satisfied"),
        f.heartbeat(battery=42, ts=now),
        ticket,
        f.stage("ticket.dispatched", tid),
        f.stage("ticket.arrived", tid),
        f.stage("ticket.resolved", tid, level="village"),
        f.stage("ticket.rated", tid),
        f.stage("ticket.closed", tid),
        f.stage("ticket.escalated", tid, to="town"),
        f.petition(persons=4),
        f.mediation(),
        f.points("earned"),
        f.points("redeemed"),
        f.job("urban"),
        f.supervision_posted(item),
        f.notice(),
    ]
    send(worker, events)
    send(worker, [f.call_returned(other_call["id"]), f.supervision_voted(item, 30, 2)])
    send(worker, [f.stage("ticket.reopened", tid)])
    assert count(seeded_engine, CallEvent) == 3
    assert count(seeded_engine, DeviceHeartbeat) == 1
    assert count(seeded_engine, CallReturn) == 1
    assert count(seeded_engine, TicketEvent, TicketEvent.ticket_id == tid) == 8
    assert count(seeded_engine, Petition) == 1
    assert count(seeded_engine, Mediation) == 1
    assert count(seeded_engine, PointsTransaction) == 2
    assert count(seeded_engine, JobPlacement) == 1
    assert count(seeded_engine, SupervisionItem) == 1
    assert count(seeded_engine, SupervisionVote) == 1
    assert count(seeded_engine, VillageNotice) == 1
    assert count(seeded_engine, LiveOutbox) == 0
    with seeded_engine.connect() as conn:
        t = conn.execute(select(Ticket).where(Ticket.id == tid)).one()
        answered = dict(conn.execute(select(CallEvent.id, CallEvent.answered_at)).all())
        linked = conn.scalar(select(CallEvent.ticket_id).where(CallEvent.id == call["id"]))
        device = conn.execute(select(Device).where(Device.id == f.device)).one()
        votes = conn.execute(select(SupervisionItem.approve, SupervisionItem.reject)).one()
    assert t.status == "reopened" and t.reopened_count == 1
    assert t.closed_at is None and t.resolved_at is None
    assert t.dispatched_at and t.arrived_at and t.rating == "satisfied"
    assert t.escalation_level == "town" and t.call_id == call["id"]
    assert linked == tid and answered[call["id"]] is not None
    assert answered[other_call["id"]] is not None
    assert device.battery == 42 and device.online
    assert tuple(votes) == (30, 2)
    counts = read_counts(redis, f.district, local_day(now), f.grid)
    assert counts["calls"] == 2 and counts["thumbs_up"] == 1
    assert counts["calls_answered"] == 2 and counts["requests"] == 1
    assert counts["closed"] == 1 and counts["reopened"] == 1
    district = read_counts(redis, f.district, local_day(now))
    assert district["petition_persons"] == 4 and district["points_earned"] == 5
    feed = read_feed(redis, f.district, 5)
    assert feed[0]["kind"] == "ticket.reopened" and feed[0]["grid"] == f.grid
    assert redis.zcard(worker.keys.unanswered) == 0
    assert redis.hexists(worker.keys.open_tickets, tid)
    assert redis.xpending(worker.keys.events, GROUP)["pending"] == 0


def test_every_event_kind_is_reflected_in_wushi_kpi(pipeline, seeded_url, test_district):
    """After the worker stores them and the rollups catch up, `wushi kpi` counts the events."""
    from click.testing import CliRunner

    from dashboard.cli import main

    worker, _redis, f = pipeline
    now = dt.datetime.now(dt.UTC)
    today = local_day(now).isoformat()
    env = {"WUSHI_DATABASE_URL": seeded_url, "WUSHI_DISTRICT_CODE": test_district}

    def kpi() -> dict:
        runner = CliRunner()
        rebuilt = runner.invoke(
            main, ["rollups", "rebuild", "--from", today, "--to", today], env=env
        )
        assert rebuilt.exit_code == 0, rebuilt.output
        result = runner.invoke(main, ["kpi", "--from", today, "--to", today, "--json"], env=env)
        assert result.exit_code == 0, result.output
        return json.loads(result.output)

    before = kpi()
    call = f.call(ts=now - dt.timedelta(minutes=3))
    ticket = f.ticket(source="caller", ts=now - dt.timedelta(minutes=2))
    tid = ticket["ticket"]
    item = "SV" + new_id()[:8]
    send(
        worker,
        [
            call,
            f.call("satisfied"),
            ticket,
            f.stage("ticket.dispatched", tid),
            f.stage("ticket.arrived", tid),
            f.stage("ticket.resolved", tid, level="grid"),
            f.stage("ticket.rated", tid),
            f.stage("ticket.closed", tid),
            f.petition(persons=4),
            f.mediation(),
            f.points("earned"),
            f.points("redeemed"),
            f.job("urban"),
            f.job("doorstep"),
            f.supervision_posted(item),
        ],
    )
    after = kpi()
    assert after["requests"] == before["requests"] + 1
    assert after["closed"] == before["closed"] + 1
    assert after["calls"] == before["calls"] + 1
    assert after["call_answer_rate"] == 1.0
    assert after["satisfaction_rate"] == 1.0
    assert after["resolution_levels"]["grid"] == 1.0
    assert after["response_minutes"]["median"] is not None
    district = after["petitions"]["district"]
    assert (district["batches"], district["persons"]) == (
        before["petitions"]["district"]["batches"] + 1,
        before["petitions"]["district"]["persons"] + 4,
    )
    assert after["mediations"] == before["mediations"] + 1
    assert after["points"]["earned"] == before["points"]["earned"] + 5
    assert after["points"]["redeemed"] == before["points"]["redeemed"] + 5
    assert after["employment"]["urban"] == before["employment"]["urban"] + 1
    assert after["employment"]["doorstep"] == before["employment"]["doorstep"] + 1
    assert after["supervision"]["posted"] == before["supervision"]["posted"] + 1


def test_the_same_event_twice_is_stored_once(pipeline, seeded_engine):
    worker, redis, f = pipeline
    petition = f.petition()
    ticket = f.ticket()
    closed = f.stage("ticket.closed", ticket["ticket"])
    send(worker, [petition, ticket, closed, petition])
    send(worker, [petition, ticket, closed])
    assert count(seeded_engine, Petition) == 1
    assert count(seeded_engine, Ticket) == 1
    assert count(seeded_engine, TicketEvent) == 2
    counts = read_counts(redis, f.district, local_day(dt.datetime.now(dt.UTC)))
    assert counts["petitions"] == 1 and counts["requests"] == 1 and counts["closed"] == 1


def test_an_old_registry_is_reloaded_beside_the_loop_not_in_it(
    pipeline, seeded_engine, monkeypatch
):
    """The minute's reload of the registry (~0.2-0.6 s) runs in a thread: the batch that finds
    it old is stored at once with the registry it has, and the new one is swapped in after."""
    from dashboard import worker as worker_module

    worker, _redis, f = pipeline
    old = worker.registry
    assert old is not None and old.devices
    started, release = threading.Event(), threading.Event()
    real = worker_module.load_registry

    loads: list[str] = []

    def held_load(engine, district):
        loads.append(district)
        started.set()
        release.wait(10)
        return real(engine, district)

    monkeypatch.setattr(worker_module, "load_registry", held_load)
    old.loaded_at -= worker.settings.registry_refresh_s + 1
    began = time.perf_counter()
    send(worker, [f.petition()])
    assert time.perf_counter() - began < 5  # not waiting for the held reload
    assert started.wait(5) and worker.registry is old
    assert count(seeded_engine, Petition) == 1
    send(worker, [f.petition()])  # a second old-registry batch starts no second reload
    release.set()
    deadline = time.monotonic() + 10
    while worker.registry is old and time.monotonic() < deadline:
        time.sleep(0.05)
    assert worker.registry is not old and worker.registry.devices == old.devices
    assert count(seeded_engine, Petition) == 2 and len(loads) == 1


def test_a_mixed_batch_stores_the_valid_and_dead_letters_the_rest(pipeline, seeded_engine):
    worker, redis, f = pipeline
    good = [f.petition(), f.mediation()]
    bad_persons = f.petition(persons=0)
    bad_grid = f.ticket(grid=f.district + "999999999")
    future = f.petition(ts=dt.datetime.now(dt.UTC) + dt.timedelta(hours=1))
    raws = [
        json.dumps(good[0]),
        "not json",
        json.dumps(bad_persons),
        json.dumps(good[1]),
        json.dumps(bad_grid),
        json.dumps({**f.petition(), "kind": "no.such"}),
        json.dumps(future),
        {"wrong": "field"},
    ]
    send_raw(worker, raws)
    assert count(seeded_engine, Petition) == 1 and count(seeded_engine, Mediation) == 1
    letters = deadletters(redis, worker.keys)
    reasons = [d["reason"] for d in letters]
    assert len(letters) == 6
    assert "event: invalid JSON" in reasons
    assert "persons: must be >= 1" in reasons
    assert any(r.startswith("grid: unknown grid") for r in reasons)
    assert any(r.startswith("kind: unknown kind") for r in reasons)
    assert "ts: more than 10 minutes in the future" in reasons
    assert "entry: has no 'event' field" in reasons
    assert all(d["entry_id"] and "event" in d for d in letters)
    assert int(redis.hget(worker.keys.stats, "deadlettered")) == 6
    assert redis.xpending(worker.keys.events, GROUP)["pending"] == 0


def test_a_stage_event_before_its_ticket_is_parked_then_stored(pipeline, seeded_engine):
    worker, redis, f = pipeline
    ticket = f.ticket()
    dispatched = f.stage("ticket.dispatched", ticket["ticket"])
    send(worker, [dispatched])
    assert count(seeded_engine, TicketEvent) == 0
    assert redis.xpending(worker.keys.events, GROUP)["pending"] == 1
    send(worker, [ticket])
    worker.drain_own_pending()
    assert count(seeded_engine, TicketEvent) == 2
    assert redis.xpending(worker.keys.events, GROUP)["pending"] == 0
    with seeded_engine.connect() as conn:
        assert conn.scalar(select(Ticket.status)) == "dispatched"
    # Past the park time, an orphan stage event is dead-lettered as "unknown ticket".
    worker.settings.park_timeout_s = 0.0
    send(worker, [f.stage("ticket.closed", "T-never")])
    time.sleep(0.01)
    worker.drain_own_pending()
    assert [d["reason"] for d in deadletters(redis, worker.keys)] == ["unknown ticket"]
    assert redis.xpending(worker.keys.events, GROUP)["pending"] == 0


def test_a_crash_after_the_commit_applies_the_outbox_once(pipeline, seeded_engine):
    worker, redis, f = pipeline
    events = [parse_event(json.dumps(f.petition(persons=2))) for _ in range(3)]
    # The SQL transaction commits (with its outbox row), then the process "dies".
    store_batch(seeded_engine, events, worker.registry, now=dt.datetime.now(dt.UTC))
    assert count(seeded_engine, LiveOutbox) == 1
    day = local_day(dt.datetime.now(dt.UTC))
    assert read_counts(redis, f.district, day).get("petitions", 0) == 0
    again = Worker(worker.settings, seeded_engine, redis, consumer="t2")
    again.start()
    again.start()
    assert count(seeded_engine, LiveOutbox) == 0
    assert read_counts(redis, f.district, day)["petitions"] == 3
    assert read_counts(redis, f.district, day)["petition_persons"] == 6
    # Once its outbox row is gone a batch's applied marker is dropped: Redis does not keep one
    # key per batch (the soak measured +82% RSS in 10 min before).
    send(again, [f.petition() for _ in range(4)])
    assert read_counts(redis, f.district, day)["petitions"] == 7
    assert count(seeded_engine, LiveOutbox) == 0
    assert list(redis.scan_iter(match=again.live.keys.applied("*"), count=1000)) == []


def test_lost_live_state_is_rebuilt_from_sql(pipeline, seeded_engine):
    worker, redis, f = pipeline
    ticket = f.ticket()
    send(worker, [f.petition(), f.call(), ticket, f.points()])
    day = local_day(dt.datetime.now(dt.UTC))
    before = read_counts(redis, f.district, day)
    feed = read_feed(redis, f.district)
    for name in redis.scan_iter(match=f"wushi:{{{f.district}}}:live:*"):
        redis.delete(name)
    send(worker, [f.mediation()])
    after = read_counts(redis, f.district, day)
    assert after == before | {"mediations": 1}
    assert [e["id"] for e in read_feed(redis, f.district)][1:] == [e["id"] for e in feed]
    assert redis.hexists(worker.keys.open_tickets, ticket["ticket"])
    assert redis.zcard(worker.keys.unanswered) == 1


def test_arriving_events_and_the_rebuild_from_sql_project_a_mix_of_kinds_alike(
    pipeline, seeded_engine
):
    """Every kind's one projection serves both paths: the live state after the worker stored a
    mix of kinds equals the live state rebuilt from SQL (counters, feed entries, open tickets)."""
    worker, redis, f = pipeline
    answered, unanswered, returned = f.call(), f.call(), f.call()
    ticket = f.ticket(source="caller")
    rated = f.ticket()
    item = "SV" + new_id()[:10]
    send(worker, [answered, unanswered, returned, f.call("satisfied"), f.call("hangup")])
    send(
        worker,
        [
            ticket,
            rated,
            f.call_returned(returned["id"]),
            f.heartbeat(),
            f.petition(),
            f.mediation(),
            f.points(),
            f.points("redeemed"),
            f.job("public_welfare"),
            f.supervision_posted(item),
            f.notice(title="村民代表大会通知"),
        ],
    )
    send(
        worker,
        [f.stage(k, ticket["ticket"]) for k in ("ticket.dispatched", "ticket.arrived")]
        + [f.stage(k, rated["ticket"]) for k in ("ticket.resolved", "ticket.rated")]
        + [
            f.stage("ticket.escalated", rated["ticket"]),
            f.stage("ticket.closed", rated["ticket"]),
            f.stage("ticket.reopened", rated["ticket"]),
            f.supervision_voted(item, 9, 1),
        ],
    )
    keys = worker.keys
    day = local_day(dt.datetime.now(dt.UTC))

    def state() -> tuple:
        return (
            redis.hgetall(keys.counts(day)),
            # By id: events of one second in different batches are in batch order on arrival.
            sorted((json.loads(x) for x in redis.lrange(keys.feed, 0, -1)), key=lambda e: e["id"]),
            redis.hgetall(keys.open_tickets),
            redis.zrange(keys.unanswered, 0, -1, withscores=True),
        )

    arrived = state()
    # Every kind with a feed entry is in the feed, as a code with parameters (no text).
    assert {k for k in KINDS if k != "device.heartbeat"} <= {e["kind"] for e in arrived[1]}
    assert all(e["code"] == e["kind"] and "text" not in e for e in arrived[1][:20])
    for name in redis.scan_iter(match=f"wushi:{{{f.district}}}:live:*"):
        redis.delete(name)
    assert rebuild_live(seeded_engine, redis, f.district)
    assert state() == arrived


@st.composite
def malformed(draw, factory: Factory):
    """An entry that must fail: bad JSON, a wrong type, a bad value, an unknown reference."""
    base = draw(
        st.sampled_from(
            [factory.petition(), factory.call(), factory.ticket(), factory.points(), factory.job()]
        )
    )
    choice = draw(st.integers(0, 6))
    if choice == 0:
        return draw(st.binary(max_size=60))
    if choice == 1:
        event = dict(base)
        event.pop(draw(st.sampled_from(sorted(event))))
        return json.dumps(event)
    if choice == 2:
        event = dict(base)
        field = draw(st.sampled_from(sorted(k for k in event if k != "v")))
        event[field] = draw(
            st.one_of(
                st.none(),
                st.lists(st.integers(), max_size=2),
                st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
            )
        )
        return json.dumps(event)
    if choice == 3:
        return json.dumps(draw(st.one_of(st.integers(), st.text(max_size=20), st.lists(st.none()))))
    if choice == 4:
        event = dict(base, v=draw(st.integers().filter(lambda v: v != 1)))
        return json.dumps(event)
    if choice == 5:
        event = dict(
            base,
            ts=draw(
                st.sampled_from(
                    [
                        "2020-12-31T23:00:00+08:00",
                        "yesterday",
                        "2026-01-01T00:00:00",
                        "2999-01-01T00:00:00Z",
                    ]
                )
            ),
        )
        return json.dumps(event)
    code = "grid" if "grid" in base else "village"
    return json.dumps(dict(base, **{code: draw(st.from_regex(r"9[0-9]{14}", fullmatch=True))}))


def test_random_malformed_entries_never_crash_the_worker(pipeline, seeded_engine):
    worker, redis, f = pipeline
    entries: list = []

    @hsettings(max_examples=1200, deadline=None, suppress_health_check=list(HealthCheck))
    @given(malformed(f))
    def collect(raw):
        entries.append(raw)

    collect()
    assert len(entries) >= 1000
    send_raw(worker, entries)
    assert redis.xlen(worker.keys.deadletter) == len(entries)
    assert redis.xpending(worker.keys.events, GROUP)["pending"] == 0
    send(worker, [f.petition()])
    assert count(seeded_engine, Petition) == 1


def _worker_env(tmp_path: Path, district: str, database_url: str, redis_url: str) -> dict:
    env = dict(os.environ)
    env.update(
        WUSHI_VAR_DIR=str(tmp_path / "var"),
        WUSHI_DATABASE_URL=database_url,
        WUSHI_REDIS_URL=redis_url,
        WUSHI_DISTRICT_CODE=district,
        WUSHI_WORKER_BLOCK_MS="200",
        WUSHI_RECLAIM_IDLE_MS="2000",
        WUSHI_LOG_LEVEL="WARNING",
    )
    return env


def _start_worker(env: dict, consumer: str) -> subprocess.Popen:
    log = Path(env["WUSHI_VAR_DIR"]) / "worker.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as err:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "dashboard.cli",
                "worker",
                "--consumer",
                consumer,
                "--no-scheduler",
            ],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )


def _log_tail(env: dict) -> str:
    return (Path(env["WUSHI_VAR_DIR"]) / "worker.log").read_text(errors="replace")[-3000:]


def _wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _village_events(f: Factory, n: int) -> list[dict]:
    events = []
    for i in range(n):
        village = f.villages[i % len(f.villages)]
        events.append(f.petition(village=village) if i % 2 else f.points(village=village))
    return events


def _kill_run(tmp_path, engine, url, redis_url, district, total: int, kills: int) -> None:
    f = Factory.from_engine(engine, district)
    redis = redis_client(redis_url)
    keys = LiveKeys(district)
    ensure_group(redis, keys.events)
    env = _worker_env(tmp_path, district, url, redis_url)
    events = _village_events(f, total)
    parsed = [parse_event(json.dumps(e)) for e in events]
    rng = random.Random(total)
    chunk = max(1, total // (kills + 2) // 20)
    position = 0
    proc = _start_worker(env, "killme")
    try:
        for _ in range(kills):
            # Feed part of the events while the worker runs, then kill it mid-flight.
            target = position + total // (kills + 1)
            deadline = time.monotonic() + rng.uniform(1.5, 3.0)
            while time.monotonic() < deadline:
                if position < target:
                    append_events(redis, keys.events, parsed[position : position + chunk], 10**7)
                    position = min(target, position + chunk)
                time.sleep(0.01)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            proc = _start_worker(env, "killme")
        append_events(redis, keys.events, parsed[position:], 10**7)
        _wait_for(
            lambda: (
                count(engine, Petition) + count(engine, PointsTransaction) == total
                and redis.xpending(keys.events, GROUP)["pending"] == 0
            ),
            180,
            f"{total} rows: {_log_tail(env)}",
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0, _log_tail(env)
    assert count(engine, Petition) + count(engine, PointsTransaction) == total
    day = local_day(dt.datetime.now(dt.UTC))
    live = read_counts(redis, district, day)
    assert live["petitions"] == total // 2
    assert redis.xlen(keys.deadletter) == 0
    redis.close()


def test_a_killed_worker_loses_nothing(
    tmp_path, seeded_engine, seeded_url, redis_url, test_district
):
    """SIGKILL the worker process 3 times while 10,000 events flow: exactly 10,000 rows."""
    _kill_run(tmp_path, seeded_engine, seeded_url, redis_url, test_district, 10_000, 3)


@pytest.mark.slow
def test_a_worker_killed_five_times_loses_nothing_of_100k(
    tmp_path, seeded_engine, seeded_url, redis_url, test_district
):
    """SIGKILL the worker process 5 times while 100,000 events flow: exactly 100,000 rows."""
    _kill_run(tmp_path, seeded_engine, seeded_url, redis_url, test_district, 100_000, 5)


def test_a_restarted_redis_loses_no_acknowledged_data(
    tmp_path, seeded_engine, seeded_url, test_district
):
    """Restart the Redis server under a running worker: it reconnects and rebuilds live state."""
    from dashboard.embedded_redis import EmbeddedRedis, free_port

    port = free_port()
    server = EmbeddedRedis(tmp_path / "redis", port=port).start()
    env = _worker_env(tmp_path, test_district, seeded_url, server.url)
    f = Factory.from_engine(seeded_engine, test_district)
    keys = LiveKeys(test_district)
    proc = _start_worker(env, "r1")
    try:
        redis = redis_client(server.url)
        publish(redis, keys.events, [f.petition() for _ in range(300)], 10**6)
        _wait_for(lambda: count(seeded_engine, Petition) == 300, 60, "first 300")
        redis.close()
        server.stop()
        server = EmbeddedRedis(tmp_path / "redis", port=port).start()
        redis = redis_client(server.url)
        assert redis.xlen(keys.events) == 0  # the restart lost the stream (no persistence)
        publish(redis, keys.events, [f.petition() for _ in range(200)], 10**6)
        _wait_for(lambda: count(seeded_engine, Petition) == 500, 60, "next 200")
        day = local_day(dt.datetime.now(dt.UTC))
        _wait_for(
            lambda: read_counts(redis, test_district, day).get("petitions") == 500, 30, "live"
        )
        assert redis.exists(keys.built)
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(30)
        server.stop()
    assert code == 0, _log_tail(env)
