"""The stream worker: read the event stream in a consumer group and store it (``wushi worker``).

Per batch: validate each entry, dead-letter the bad ones, store the good ones in SQL in one
transaction (with the live-state delta in an outbox row), then apply the delta and XACK the
entries in one Lua call. See docs/pipeline.md for the guarantees.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
import signal
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy import Engine
from sqlalchemy.exc import DataError, IntegrityError, InterfaceError, OperationalError

from dashboard import metrics
from dashboard.embedded_redis import redis_from_settings, redis_server_for
from dashboard.scheduler import start_scheduler
from dashboard.settings import Settings
from datasources.db import make_engine, upgrade
from datasources.events import (
    EVENT_KINDS,
    Event,
    InvalidEvent,
    Registry,
    load_registry,
    parse_event,
)
from datasources.ingest import BatchOutcome
from datasources.kinds import rebuild_live, store_batch
from datasources.live import (
    LiveKeys,
    LiveState,
    LiveStateMissing,
    apply_pending_outbox,
    delete_outbox,
)

log = logging.getLogger("wushi.worker")

GROUP = "workers"
DEADLETTER_MAXLEN = 1_000_000
MAX_BACKOFF_S = 30.0
PENDING_RETRY_S = 2.0
_TRANSIENT = (OperationalError, InterfaceError, RedisConnectionError, RedisTimeoutError, OSError)

Entry = tuple[Any, Any]


@dataclass
class BatchStats:
    """Counts of one processed batch."""

    entries: int = 0
    new: int = 0
    dead: int = 0
    parked: int = 0
    ms: float = 0.0


def _s(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _kind_of(raw: bytes | str) -> str:
    """Return the kind of a raw event for the metrics: a known kind, else ``invalid``."""
    try:
        kind = json.loads(raw).get("kind")
    except (ValueError, AttributeError):
        return "invalid"
    return kind if kind in EVENT_KINDS else "invalid"


def ensure_group(redis: Redis, stream: str, group: str = GROUP) -> None:
    """Create the consumer group (and the stream) unless it exists."""
    try:
        # From id 0: a group created after producers started must not skip their events.
        redis.xgroup_create(stream, group, id="0", mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


class Worker:
    """One consumer of the event stream; call ``run(stop)`` or ``process(entries)``."""

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        redis: Redis,
        *,
        consumer: str | None = None,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.redis = redis
        self.keys = LiveKeys(settings.district_code)
        self.consumer = consumer or settings.worker_consumer or socket.gethostname()
        self.clock = clock
        self.live = LiveState(redis, settings.district_code, GROUP)
        self.registry: Registry | None = None
        self._reloading = threading.Event()  # a background reload of the registry under way
        self.totals = BatchStats()

    # --- setup -------------------------------------------------------------------------------

    def refresh_registry(self, force: bool = False) -> Registry:
        """Return the registry, reloaded now if there is none or ``force``; one older than the
        refresh interval is reloaded in a background thread and swapped in when ready.

        Loading it (23,000 callers, 74,000 households) takes ~0.2 s, 0.3–0.6 s under load: in
        the consumer loop that paused every page's feed once a minute. The loop keeps the old
        registry meanwhile; an unknown code still forces a reload before it is dead-lettered.
        """
        if self.registry is None or force:
            self.registry = load_registry(self.engine, self.settings.district_code)
            return self.registry
        age = time.monotonic() - self.registry.loaded_at
        if age > self.settings.registry_refresh_s and not self._reloading.is_set():
            self._reloading.set()
            threading.Thread(
                target=self._reload_registry, name="wushi-registry", daemon=True
            ).start()
        return self.registry

    def _reload_registry(self) -> None:
        try:
            # One assignment: the loop sees the old registry or the whole new one.
            self.registry = load_registry(self.engine, self.settings.district_code)
        except Exception:
            log.exception("reloading the registry failed; keeping the one loaded before")
            if self.registry is not None:
                # Try again after another interval, not on the next batch.
                self.registry.loaded_at = time.monotonic()
        finally:
            self._reloading.clear()

    def start(self) -> None:
        """Create the group, rebuild missing live state and apply left-over outbox rows."""
        ensure_group(self.redis, self.keys.events)
        self.refresh_registry(force=True)
        if not self.live.is_built():
            rebuild_live(self.engine, self.redis, self.settings.district_code)
        self._apply_outbox()

    def _apply_outbox(self) -> None:
        try:
            apply_pending_outbox(self.engine, self.live)
        except LiveStateMissing:
            rebuild_live(self.engine, self.redis, self.settings.district_code)
            apply_pending_outbox(self.engine, self.live)

    # --- one batch ---------------------------------------------------------------------------

    def process(self, entries: Sequence[Entry], retried: bool = False) -> BatchStats:
        """Validate, store, apply and acknowledge one batch of stream entries."""
        started = time.perf_counter()
        stats = BatchStats(entries=len(entries))
        if not entries:
            return stats
        now = self.clock()
        registry = self.refresh_registry()
        dead: list[tuple[str, bytes | str, str]] = []
        good: list[tuple[str, Event]] = []
        suspect: list[tuple[str, bytes | str, Event]] = []
        for entry_id, fields in entries:
            eid = _s(entry_id)
            if not fields:
                continue  # trimmed or deleted while pending: nothing left to store
            raw = fields.get(b"event", fields.get("event"))
            if raw is None:
                blob = json.dumps({_s(k): _s(v) for k, v in fields.items()}, ensure_ascii=False)
                dead.append((eid, blob, "entry: has no 'event' field"))
                continue
            try:
                event = parse_event(raw, now)
            except InvalidEvent as exc:
                dead.append((eid, raw, "; ".join(exc.errors)))
                continue
            (
                suspect.append((eid, raw, event))
                if registry.check(event)
                else good.append((eid, event))
            )
        if suspect:
            # An unknown code may be a device or area added since the last load: reload once.
            if time.monotonic() - registry.loaded_at > 5:
                registry = self.refresh_registry(force=True)
            for eid, raw, event in suspect:
                errors = registry.check(event)
                if errors:
                    dead.append((eid, raw, "; ".join(errors)))
                else:
                    good.append((eid, event))
        outcome = self._store(good, registry, now, dead)
        parked_entries = [(eid, e) for eid, e in good if e.id in outcome.parked]
        still_parked = self._park(parked_entries, outcome.parked, dead)
        if dead:
            self._dead_letter(dead)
        ack = [_s(eid) for eid, _ in entries if _s(eid) not in still_parked]
        self._apply(outcome.outbox_id, outcome.payload, ack)
        if retried and ack:
            self.redis.hdel(self.keys.parked, *ack)
        stats.new = len(outcome.new_ids)
        stats.dead = len(dead)
        stats.parked = len(still_parked)
        stats.ms = (time.perf_counter() - started) * 1000
        for name in ("entries", "new", "dead", "parked"):
            setattr(self.totals, name, getattr(self.totals, name) + getattr(stats, name))
        self._observe(stats, good, outcome.new_ids, dead)
        return stats

    def _observe(
        self,
        stats: BatchStats,
        good: list[tuple[str, Event]],
        new_ids: set[str],
        dead: list[tuple[str, bytes | str, str]],
    ) -> None:
        """Count the batch in the metrics and write its one log line (counts only, no data)."""
        kinds: Counter[str] = Counter(event.kind for _, event in good if event.id in new_ids)
        dead_kinds = Counter(_kind_of(raw) for _, raw, _ in dead)
        m = metrics.worker()
        m.entries.inc(stats.entries)
        m.batch_seconds.observe(stats.ms / 1000)
        for kind, n in kinds.items():
            m.ingested.labels(kind).inc(n)
        for kind, n in dead_kinds.items():
            m.dead_lettered.labels(kind).inc(n)
        log.info(
            "batch entries=%d new=%d dead_lettered=%d parked=%d ms=%.0f",
            stats.entries,
            stats.new,
            stats.dead,
            stats.parked,
            stats.ms,
            extra={
                "event": "batch",
                "entries": stats.entries,
                "new": stats.new,
                "kinds": dict(kinds),
                "dead_lettered": stats.dead,
                "dead_kinds": dict(dead_kinds),
                "parked": stats.parked,
                "ms": round(stats.ms, 1),
            },
        )

    def _store(
        self,
        good: list[tuple[str, Event]],
        registry: Registry,
        now: dt.datetime,
        dead: list[tuple[str, bytes | str, str]],
    ) -> BatchOutcome:
        """Store the batch; if SQL refuses it as a whole, store one by one and dead-letter."""
        try:
            return store_batch(self.engine, [e for _, e in good], registry, now=now)
        except (IntegrityError, DataError) as exc:
            log.error("batch refused by the database (%s); storing events one by one", exc)
        merged = BatchOutcome()
        for eid, event in good:
            try:
                one = store_batch(self.engine, [event], registry, now=now)
            except (IntegrityError, DataError) as exc:
                dead.append((eid, event.model_dump_json(), f"storage: {exc.orig}"[:500]))
                continue
            merged.new_ids |= one.new_ids
            merged.parked |= one.parked
            if one.outbox_id:
                self._apply(one.outbox_id, one.payload, [])
        return merged

    def _park(
        self,
        parked: list[tuple[str, Event]],
        reasons: dict[str, str],
        dead: list[tuple[str, bytes | str, str]],
    ) -> set[str]:
        """Keep parked entries pending until their park time runs out; return those kept."""
        if not parked:
            return set()
        now = time.time()
        pipe = self.redis.pipeline(transaction=False)
        for eid, _ in parked:
            pipe.hsetnx(self.keys.parked, eid, now)
        for eid, _ in parked:
            pipe.hget(self.keys.parked, eid)
        firsts = pipe.execute()[len(parked) :]
        kept: set[str] = set()
        expired: list[str] = []
        for (eid, event), first in zip(parked, firsts, strict=True):
            if now - float(first or now) > self.settings.park_timeout_s:
                dead.append((eid, event.model_dump_json(), reasons[event.id]))
                expired.append(eid)
            else:
                kept.add(eid)
        if expired:
            self.redis.hdel(self.keys.parked, *expired)
        return kept

    def _dead_letter(self, dead: list[tuple[str, bytes | str, str]]) -> None:
        pipe = self.redis.pipeline(transaction=False)
        for eid, raw, reason in dead:
            pipe.xadd(
                self.keys.deadletter,
                {"entry_id": eid, "event": raw, "reason": reason[:1000]},
                maxlen=DEADLETTER_MAXLEN,
                approximate=True,
            )
        pipe.hincrby(self.keys.stats, "deadlettered", len(dead))
        pipe.execute()

    def _apply(self, outbox_id: str | None, payload: str, ack: list[str]) -> None:
        if outbox_id is None:
            self._with_group(lambda: self.live.ack(ack))
            return
        try:
            self._with_group(lambda: self.live.apply(outbox_id, payload, ack))
        except LiveStateMissing:
            rebuild_live(self.engine, self.redis, self.settings.district_code)
            self._with_group(lambda: self.live.apply(outbox_id, payload, ack))
        delete_outbox(self.engine, outbox_id)
        self.live.forget(outbox_id)

    def _with_group(self, action: Callable[[], Any]) -> Any:
        """Run a Redis action, recreating the group if Redis lost it (e.g. after a restart)."""
        try:
            return action()
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            ensure_group(self.redis, self.keys.events)
            return action()

    # --- reading -----------------------------------------------------------------------------

    def read_new(self) -> list[Entry]:
        """Read up to a batch of new entries, blocking up to the configured time."""
        reply = self._with_group(
            lambda: self.redis.xreadgroup(
                GROUP,
                self.consumer,
                {self.keys.events: ">"},
                count=self.settings.worker_batch,
                block=self.settings.worker_block_ms,
            )
        )
        return list(reply[0][1]) if reply else []

    def drain_own_pending(self, stop: threading.Event | None = None) -> int:
        """Process this consumer's pending entries (a crash's leftovers and parked events)."""
        start = "0"
        done = 0
        while stop is None or not stop.is_set():
            reply = self._with_group(
                functools.partial(
                    self.redis.xreadgroup,
                    GROUP,
                    self.consumer,
                    {self.keys.events: start},
                    count=self.settings.worker_batch,
                )
            )
            entries = list(reply[0][1]) if reply else []
            if not entries:
                break
            self.process(entries, retried=True)
            done += len(entries)
            start = _s(entries[-1][0])
        return done

    def reclaim(self, stop: threading.Event | None = None) -> int:
        """Claim and process entries idle longer than the reclaim time (dead consumers)."""
        cursor = "0-0"
        done = 0
        while stop is None or not stop.is_set():
            reply = self._with_group(
                functools.partial(
                    self.redis.xautoclaim,
                    self.keys.events,
                    GROUP,
                    self.consumer,
                    min_idle_time=self.settings.reclaim_idle_ms,
                    start_id=cursor,
                    count=self.settings.worker_batch,
                )
            )
            cursor, entries = _s(reply[0]), list(reply[1])
            if entries:
                self.process(entries, retried=True)
                done += len(entries)
            if cursor == "0-0":
                break
        return done

    # --- the loop ----------------------------------------------------------------------------

    def _reachable(self) -> bool:
        try:
            self.redis.ping()
            with self.engine.connect() as conn:
                conn.exec_driver_sql("select 1")
        except Exception:
            return False
        return True

    def _wait_until_reachable(self, stop: threading.Event, delay: float) -> None:
        """Wait up to ``delay``, but retry as soon as SQL and Redis answer again (probed each s)."""
        deadline = time.monotonic() + delay
        while not stop.wait(min(1.0, max(0.0, deadline - time.monotonic()))):
            if time.monotonic() >= deadline or self._reachable():
                return

    def run(self, stop: threading.Event) -> None:
        """Process the stream until ``stop`` is set; back off while SQL or Redis is down."""
        failures = 0
        next_reclaim = 0.0
        next_pending = 0.0
        started = False
        held: list[Entry] = []
        while not stop.is_set():
            try:
                if not started:
                    self.start()
                    started = True
                    next_pending = 0.0
                if held:
                    self.process(held)
                    held = []
                now = time.monotonic()
                if now >= next_pending:
                    self.drain_own_pending(stop)
                    next_pending = now + PENDING_RETRY_S
                if now >= next_reclaim:
                    self.reclaim(stop)
                    next_reclaim = now + self.settings.reclaim_interval_s
                if stop.is_set():
                    break
                held = self.read_new()
                if held:
                    self.process(held)
                    held = []
                failures = 0
            except _TRANSIENT as exc:
                # Keep what we hold (un-acked), wait and retry: nothing is lost.
                failures += 1
                metrics.worker().backoffs.inc()
                delay = min(MAX_BACKOFF_S, 0.25 * 2**failures)
                log.warning("backing off %.1fs after %s: %s", delay, type(exc).__name__, exc)
                # Redo the start steps afterwards: a connection lost during a COMMIT that did
                # happen leaves an outbox row whose live deltas only start() applies.
                started = False
                self._wait_until_reachable(stop, delay)
        log.info(
            "worker %s stopped: %d entries, %d new, %d dead-lettered",
            self.consumer,
            self.totals.entries,
            self.totals.new,
            self.totals.dead,
        )


def run_worker(
    settings: Settings,
    *,
    consumer: str | None = None,
    with_scheduler: bool = True,
    stop: threading.Event | None = None,
) -> None:
    """Run the worker (and its scheduler) until SIGTERM/SIGINT; the ``wushi worker`` entry point."""
    stop = stop or threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    engine = make_engine(settings.resolved_database_url)
    upgrade(engine)
    metrics_server = metrics.start_worker_metrics_server(settings)
    with redis_server_for(settings) as url:
        redis = redis_from_settings(settings, url)
        scheduler = None
        if with_scheduler:
            scheduler = start_scheduler(
                settings, engine, lambda: redis_from_settings(settings, url)
            )
        try:
            Worker(settings, engine, redis, consumer=consumer).run(stop)
        finally:
            if scheduler is not None:
                scheduler.shutdown(wait=False)
            if metrics_server is not None:
                metrics_server.shutdown()
                metrics_server.server_close()
            redis.close()
            engine.dispose()
