"""The Redis event stream: append validated events (the producer side of docs/contract.md §1)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

from redis import Redis

from datasources.events import (
    Event,
    InvalidEvent,
    Registry,
    check_events,
    event_json,
)

DEFAULT_SOCKET_TIMEOUT = 10.0


def redis_client(url: str, *, socket_timeout: float = DEFAULT_SOCKET_TIMEOUT) -> Redis:
    """Return a client for ``url`` whose socket timeout outlasts the worker's XREADGROUP BLOCK."""
    return Redis.from_url(
        url, socket_timeout=socket_timeout, socket_connect_timeout=5, health_check_interval=30
    )


def key(district_code: str, name: str) -> str:
    """Return a Redis key of a district, hash-tagged so one district stays on one shard."""
    return f"wushi:{{{district_code}}}:{name}"


def append_events(redis: Redis, stream_key: str, events: Sequence[Event], maxlen: int) -> list[str]:
    """Append already-validated events with ``XADD key MAXLEN ~ N * event <json>``."""
    if not events:
        return []
    pipe = redis.pipeline(transaction=False)
    for event in events:
        pipe.xadd(stream_key, {"event": event_json(event)}, maxlen=maxlen, approximate=True)
    return [i.decode() if isinstance(i, bytes) else str(i) for i in pipe.execute()]


def publish(
    redis: Redis,
    stream_key: str,
    events: Iterable[Any],
    maxlen: int,
    *,
    now: dt.datetime | None = None,
    registry: Registry | None = None,
) -> list[str]:
    """Validate events (dicts or models) and append them all; return their entry ids.

    Nothing is appended if any event is invalid: ``InvalidEvent`` names the first bad one.
    """
    valid, rejected = check_events(list(events), now=now, registry=registry)
    if rejected:
        first = rejected[0]
        raise InvalidEvent([f"event {first.index}: {e}" for e in first.errors], event_id=first.id)
    return append_events(redis, stream_key, [e for _, e in valid], maxlen)
