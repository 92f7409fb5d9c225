"""Periodic jobs of the worker: call alerts, SLA escalation, device watch, rollups.

Jobs are plain functions that take their dependencies (and ``now``) as arguments; each run is
guarded by a Redis lock (``SET lock:<job> NX PX``) so that several workers do not run it at once.
``start_scheduler`` is called by the worker entry point only, never at import.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any, cast

from apscheduler.schedulers.background import BackgroundScheduler
from redis import Redis
from sqlalchemy import Engine, select, update

from dashboard import metrics
from dashboard.settings import Settings
from datasources.live import LiveKeys, local_day, raise_alert, release_lock
from datasources.models import Device, Ticket

# Imported with the worker, not in the first minute's rollup job: importing it (pandas, ~0.3 s)
# there holds the GIL beside the consumer loop while events arrive.
from datasources.rollups import rebuild_rollups
from datasources.sla import DEFAULT_DEADLINES, Deadline, deadline_for
from datasources.stream import publish

log = logging.getLogger("wushi.scheduler")

CALL_ANSWER_WINDOW = dt.timedelta(minutes=5)
_NEXT_LEVEL = {None: "village", "village": "town", "town": "district", "district": "district"}


def parse_deadlines(text: str) -> dict[str, Deadline]:
    """Return the deadline table: the defaults with the JSON overrides of ``WUSHI_DEADLINES``."""
    table = dict(DEFAULT_DEADLINES)
    if text.strip():
        for category, value in json.loads(text).items():
            base = table.get(category, DEFAULT_DEADLINES["other"])
            table[category] = Deadline(
                float(value.get("arrive_hours", base.arrive_hours)),
                float(value.get("close_hours", base.close_hours)),
            )
    return table


def run_locked(redis: Redis, district: str, job: str, ttl_ms: int, fn: Callable[[], Any]) -> bool:
    """Run ``fn`` only if this process takes the job's lock; return whether it ran."""
    name = LiveKeys(district).lock(job)
    token = uuid.uuid4().hex
    if not redis.set(name, token, nx=True, px=ttl_ms):
        return False
    try:
        fn()
    finally:
        release_lock(redis, name, token)
    return True


def alert_unanswered_calls(redis: Redis, district: str, now: dt.datetime) -> list[str]:
    """Raise an alert for each green-key call unanswered for 5 minutes; return the new ones."""
    keys = LiveKeys(district)
    cutoff = (now - CALL_ANSWER_WINDOW).timestamp()
    # Calls older than a day leave the live state (the KPI counts them from SQL): the set, their
    # details and their alerts, so the "unanswered" tile and the map's pulse forget them too.
    # (redis's annotations allow (member, score) pairs, which only withscores=True returns.)
    old = [
        m.decode() if isinstance(m, bytes) else m
        for m in cast(
            list[bytes | str],
            redis.zrangebyscore(keys.unanswered, "-inf", (now - dt.timedelta(days=1)).timestamp()),
        )
    ]
    if old:
        pipe = redis.pipeline()
        pipe.zrem(keys.unanswered, *old)
        pipe.hdel(keys.unanswered_info, *old)
        pipe.hdel(keys.alerts, *(f"call:{call_id}" for call_id in old))
        pipe.execute()
    raised = []
    for member in cast(list[bytes | str], redis.zrangebyscore(keys.unanswered, "-inf", cutoff)):
        call_id = member.decode() if isinstance(member, bytes) else member
        info_raw = redis.hget(keys.unanswered_info, call_id)
        info = json.loads(info_raw) if info_raw else {}
        areas = (info.get("grid"), info.get("village"), info.get("town"))
        if raise_alert(
            redis,
            district,
            f"call:{call_id}",
            "unanswered_call",
            now,
            areas,
        ):
            raised.append(call_id)
    return raised


def _escalation_id(ticket: str, stage: str) -> str:
    return "esc-" + hashlib.sha1(f"{ticket}/{stage}".encode()).hexdigest()[:32]


def escalate_overdue_tickets(
    engine: Engine,
    redis: Redis,
    district: str,
    now: dt.datetime,
    *,
    deadlines: dict[str, Deadline] | None = None,
    stream_maxlen: int = 2_000_000,
) -> list[tuple[str, str]]:
    """Publish a ``ticket.escalated`` event for tickets past a deadline, once per stage."""
    table = deadlines or DEFAULT_DEADLINES
    keys = LiveKeys(district)
    shortest = min(min(d.arrive_hours for d in table.values()), 0.5)
    t = Ticket.__table__.c
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                t.id,
                t.grid_code,
                t.category,
                t.priority,
                t.created_at,
                t.arrived_at,
                t.escalation_level,
            ).where(t.status != "closed", t.created_at < now - dt.timedelta(hours=shortest))
        ).all()
    events: list[dict[str, Any]] = []
    stages: list[tuple[str, str]] = []
    for tid, grid, category, priority, created, arrived, level in rows:
        limit = deadline_for(category, priority, table)
        due = []
        if arrived is None and now - created > dt.timedelta(hours=limit.arrive_hours):
            due.append("arrival")
        if now - created > dt.timedelta(hours=limit.close_hours):
            due.append("closure")
        for stage in due:
            # The set makes it once per ticket and stage; the event id makes a repeat harmless.
            if not redis.sadd(keys.escalated, f"{tid}/{stage}"):
                continue
            to = _NEXT_LEVEL.get(level, "district")
            level = to
            events.append(
                {
                    "v": 1,
                    "id": _escalation_id(tid, stage),
                    "kind": "ticket.escalated",
                    "ts": now.isoformat(),
                    "grid": grid,
                    "ticket": tid,
                    "to": to,
                    "reason": f"overdue_{stage}",
                }
            )
            stages.append((tid, stage))
    if events:
        try:
            publish(redis, keys.events, events, stream_maxlen, now=now)
        except Exception:
            redis.srem(keys.escalated, *[f"{tid}/{stage}" for tid, stage in stages])
            raise
        for (tid, stage), event in zip(stages, events, strict=True):
            raise_alert(
                redis,
                district,
                f"ticket:{tid}:{stage}",
                f"overdue_{stage}",
                now,
                (event["grid"], None, None),
                ticket=tid,
            )
    return stages


def mark_offline_devices(
    engine: Engine, redis: Redis, district: str, now: dt.datetime, *, hours: float = 24.0
) -> list[str]:
    """Mark callers silent for ``hours`` offline and raise an alert; return those newly marked."""
    cutoff = now - dt.timedelta(hours=hours)
    d = Device.__table__.c
    with engine.begin() as conn:
        silent = conn.execute(
            select(d.id, d.grid_code, d.village_code, d.town_code, d.online).where(
                (d.last_heartbeat_at < cutoff) | d.last_heartbeat_at.is_(None)
            )
        ).all()
        newly = [row.id for row in silent if row.online]
        for start in range(0, len(newly), 500):
            conn.execute(
                update(Device).where(Device.id.in_(newly[start : start + 500])).values(online=False)
            )
    for row in silent:
        raise_alert(
            redis,
            district,
            f"device:{row.id}",
            "device_offline",
            now,
            (row.grid_code, row.village_code, row.town_code),
            {"hours": f"{hours:g}"},
        )
    return newly


def rebuild_recent_rollups(engine: Engine, now: dt.datetime, deadlines=None) -> bool:
    """Rebuild today's and yesterday's rollups (True once done)."""
    today = local_day(now)
    rebuild_rollups(engine, today - dt.timedelta(days=1), today, deadlines)
    return True


def refresh_figures(
    engine: Engine, redis: Redis, district: str, now: dt.datetime, deadlines=None
) -> bool:
    """Rebuild the recent rollups, then tell the open pages their figures moved.

    An empty batch on the live channel: each page's live callback then pushes its headline
    tiles and map again, even if no event arrives in the next minutes.
    """
    if not rebuild_recent_rollups(engine, now, deadlines):
        return False
    redis.publish(LiveKeys(district).channel, "[]")
    return True


def start_scheduler(settings: Settings, engine: Engine, redis_factory: Callable[[], Redis]) -> Any:
    """Start the background scheduler with the worker's jobs; return it (call ``shutdown``)."""
    redis = redis_factory()
    district = settings.district_code
    deadlines = parse_deadlines(settings.deadlines)

    def now() -> dt.datetime:
        return dt.datetime.now(dt.UTC)

    def guarded(job: str, ttl_ms: int, fn: Callable[[], Any]) -> Callable[[], None]:
        m = metrics.worker()

        def run() -> None:
            try:
                ran = run_locked(redis, district, job, ttl_ms, fn)
            except Exception:
                m.job_runs.labels(job).inc()
                m.job_failures.labels(job).inc()
                log.exception("job %s failed", job, extra={"event": "job", "job": job})
                return
            if ran:
                m.job_runs.labels(job).inc()
                m.job_last_success.labels(job).set(time.time())
            else:
                m.job_skipped.labels(job).inc()

        return run

    scheduler = BackgroundScheduler(timezone="UTC")
    scheduler.add_job(
        guarded("calls", 4_000, lambda: alert_unanswered_calls(redis, district, now())),
        "interval",
        seconds=5,
        max_instances=1,
        coalesce=True,
    )
    scheduler.add_job(
        guarded(
            "escalation",
            4_000,
            lambda: escalate_overdue_tickets(
                engine,
                redis,
                district,
                now(),
                deadlines=deadlines,
                stream_maxlen=settings.stream_maxlen,
            ),
        ),
        "interval",
        seconds=5,
        max_instances=1,
        coalesce=True,
    )
    scheduler.add_job(
        guarded(
            "devices",
            4_000,
            lambda: mark_offline_devices(
                engine, redis, district, now(), hours=settings.device_offline_hours
            ),
        ),
        "interval",
        seconds=5,
        max_instances=1,
        coalesce=True,
    )
    scheduler.add_job(
        guarded(
            "rollups", 55_000, lambda: refresh_figures(engine, redis, district, now(), deadlines)
        ),
        "interval",
        seconds=60,
        max_instances=1,
        coalesce=True,
    )
    scheduler.start()
    return scheduler
