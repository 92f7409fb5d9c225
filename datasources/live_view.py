"""The web's read side of the live state (``datasources.live`` is the worker's write side).

Async functions over ``redis.asyncio`` for the persistent WebSocket callback; every reader takes
an area code and returns only what lies inside it (codes nest: a grid code starts with its
village code, which starts with its town code).
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections import Counter
from typing import Any

from redis.asyncio import Redis as AsyncRedis

from datasources.live import METRICS, LiveKeys
from datasources.periods import local_day

ALERT_ORDER = {
    "unanswered_call": 0,
    "overdue_arrival": 1,
    "overdue_closure": 2,
    "device_offline": 3,
}


def in_area(entry: dict[str, Any], area_code: str | None, district: str) -> bool:
    """Return True if a feed entry, alert or open ticket lies inside ``area_code``."""
    if not area_code or area_code == district:
        return True
    code = entry.get("grid") or entry.get("village") or entry.get("town") or ""
    return str(code).startswith(area_code)


def _field(info: dict[Any, Any], name: str) -> Any:
    """Read a field of an XINFO reply, whether the client decodes responses or not."""
    return info.get(name, info.get(name.encode(), 0))


def _json(raw: str | bytes) -> dict[str, Any]:
    value = json.loads(raw)
    return value if isinstance(value, dict) else {}


async def feed(
    r: AsyncRedis, district: str, area_code: str | None, n: int = 30
) -> list[dict[str, Any]]:
    """Return the newest ``n`` feed entries inside the area, newest first."""
    raw = await r.lrange(LiveKeys(district).feed, 0, 199)
    entries = [_json(x) for x in raw]
    return [e for e in entries if e.get("id") and in_area(e, area_code, district)][:n]


async def today_counts(
    r: AsyncRedis, district: str, area_code: str | None, now: dt.datetime
) -> dict[str, int]:
    """Return today's counters (Asia/Shanghai day) of the area."""
    code = area_code or district
    values = await r.hmget(
        LiveKeys(district).counts(local_day(now)), [f"{code}|{m}" for m in METRICS]
    )
    return {m: int(v) for m, v in zip(METRICS, values, strict=True) if v is not None}


async def open_tallies(r: AsyncRedis, district: str) -> dict[str, Counter[str]]:
    """Return the open tickets and unanswered green-key calls counted per area code.

    Each entry counts for the district and for its town, village and grid (codes of 9, 12 and
    15 digits): one pass over Redis's hashes answers every area, so the web process reads and
    parses them once per refresh, not once per open page.
    """
    keys = LiveKeys(district)
    out = {}
    for name, key in (("open", keys.open_tickets), ("unanswered", keys.unanswered_info)):
        tally: Counter[str] = Counter()
        for raw in await r.hvals(key):
            entry = _json(raw)
            tally[district] += 1
            code = str(entry.get("grid") or entry.get("village") or entry.get("town") or "")
            for digits in (9, 12, 15):
                if len(code) >= digits:
                    tally[code[:digits]] += 1
        out[name] = tally
    return out


def tallied(tallies: dict[str, Counter[str]], district: str, area_code: str | None) -> dict:
    """Return the open tickets and unanswered calls of one area from ``open_tallies``."""
    code = area_code or district
    return {name: int(tally.get(code, 0)) for name, tally in tallies.items()}


async def snapshot(r: AsyncRedis, district: str, area_code: str | None) -> dict[str, int]:
    """Return the open tickets and unanswered green-key calls inside the area now."""
    return tallied(await open_tallies(r, district), district, area_code)


async def all_unanswered_grids(r: AsyncRedis, district: str) -> list[str]:
    """Return every grid of the district with a green-key call not yet answered, sorted."""
    calls = [_json(x) for x in await r.hvals(LiveKeys(district).unanswered_info)]
    return sorted({str(c["grid"]) for c in calls if c.get("grid")})


def grids_in(grids: list[str], area_code: str | None, district: str) -> list[str]:
    """Return the grids (from ``all_unanswered_grids``) inside the area."""
    if not area_code or area_code == district:
        return list(grids)
    return [g for g in grids if g.startswith(area_code)]


async def unanswered_grids(r: AsyncRedis, district: str, area_code: str | None) -> list[str]:
    """Return the grids with a green-key call not yet answered (they pulse on the map)."""
    return grids_in(await all_unanswered_grids(r, district), area_code, district)


async def all_alerts(r: AsyncRedis, district: str) -> list[dict[str, Any]]:
    """Return every active alert of the district, in the order a person should act on them."""
    items = [_json(x) for x in await r.hvals(LiveKeys(district).alerts)]
    inside = [a for a in items if a.get("id")]
    # Newest first within each kind, the kinds a person must act on first.
    inside.sort(key=lambda a: str(a.get("ts", "")), reverse=True)
    inside.sort(key=lambda a: ALERT_ORDER.get(str(a.get("kind")), len(ALERT_ORDER)))
    return inside


def alerts_in(
    items: list[dict[str, Any]], area_code: str | None, district: str, n: int = 20
) -> list[dict[str, Any]]:
    """Return the first ``n`` alerts (from ``all_alerts``) inside the area."""
    return [a for a in items if in_area(a, area_code, district)][:n]


async def alerts(
    r: AsyncRedis, district: str, area_code: str | None, n: int = 20
) -> list[dict[str, Any]]:
    """Return the active alerts inside the area, newest first within each kind."""
    return alerts_in(await all_alerts(r, district), area_code, district, n)


async def data_as_of(r: AsyncRedis, district: str) -> float | None:
    """Return when the live state was last known current, as epoch seconds.

    The worker's consumers report how long ago each last asked the stream for entries; if one
    asked within its blocking read and nothing is pending, the data is current as of then.
    """
    keys = LiveKeys(district)
    try:
        consumers = await r.xinfo_consumers(keys.events, "workers")
    except Exception:
        return None
    if not consumers:
        return None
    idle_ms = min(int(_field(c, "idle")) for c in consumers)
    pending = sum(int(_field(c, "pending")) for c in consumers)
    if pending > 10_000:
        # A backlog: the screens lag the stream, so report the data as older.
        idle_ms += 60_000
    return time.time() - idle_ms / 1000
