"""One live subscription per web process, and live figures computed once for all its pages.

With a subscription per open page, every page parsed every batch the worker published and
built its own feed, today's tiles and alerts from Redis: at 120 open pages and 200 events/s one
web process spent its whole core on that and answered nothing else (docs/performance.md,
"Load"). Here the process subscribes once, parses each message once and hands the parsed batch
to every page's queue; what pages of the same area and language show is computed once
(``Shared``) and each page only serialises and sends it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis
from dash import set_props
from dash._utils import to_json
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

log = logging.getLogger("wushi.live")

QUEUE_MAX = 2_000  # batches a page may fall behind before it is told to start over
DOWN = object()  # put in every page's queue when the subscription is lost
SUBSCRIBE_WAIT_S = 3.0
RETRY_MAX_S = 2.0


def connect(redis_url: str) -> aioredis.Redis:
    """Return an async Redis client that fails at once instead of retrying silently."""
    return aioredis.from_url(
        redis_url,
        socket_connect_timeout=2,
        health_check_interval=10,
        retry=Retry(NoBackoff(), 0),
    )


class Hub:
    """The process's subscription to the live channel, fanned out to the pages' queues.

    A page ``join``s (an ``asyncio.Queue`` of parsed batches, newest event first) and ``leave``s
    when it ends. When Redis goes away every queue gets ``DOWN`` (the page shows
    "reconnecting" and joins again); the hub keeps trying to subscribe every 0.5–2 s.
    """

    def __init__(self, redis_url: str, channel: str) -> None:
        self.redis_url = redis_url
        self.channel = channel
        self.queues: set[asyncio.Queue[Any]] = set()
        self.subscribed = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        # For the figures pages share: one pool for the process, no silent retries (a lost
        # connection must show on the pages at once).
        self.redis = connect(redis_url)

    async def join(self) -> asyncio.Queue[Any]:
        """Return a new queue of batches; raise ``ConnectionError`` if not subscribed soon."""
        if self.task is None or self.task.done():
            self.task = asyncio.create_task(self._run(), name="wushi-live-hub")
        queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=QUEUE_MAX)
        self.queues.add(queue)
        try:
            await asyncio.wait_for(self.subscribed.wait(), SUBSCRIBE_WAIT_S)
        except TimeoutError:
            self.queues.discard(queue)
            raise aioredis.ConnectionError("live channel not subscribed") from None
        return queue

    def leave(self, queue: asyncio.Queue[Any]) -> None:
        self.queues.discard(queue)

    async def close(self) -> None:
        """Stop subscribing and close the connections (the pages get ``DOWN``)."""
        if self.task is not None:
            self.task.cancel()
            try:
                await self.task
            except asyncio.CancelledError:
                pass
        await self.redis.aclose()

    def _fan_out(self, item: Any) -> None:
        for queue in list(self.queues):
            try:
                queue.put_nowait(item)
            except asyncio.QueueFull:
                # A page this far behind (a stalled browser) starts over from Redis's feed list.
                self.queues.discard(queue)
                queue.get_nowait()
                queue.put_nowait(DOWN)

    async def _run(self) -> None:
        backoff = 0.5
        while True:
            r = connect(self.redis_url)
            try:
                pubsub = r.pubsub()
                await pubsub.subscribe(self.channel)
                self.subscribed.set()
                backoff = 0.5
                while True:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if message and message.get("type") == "message":
                        try:
                            batch = json.loads(message["data"])
                        except ValueError:
                            log.warning("live: a message on %s is not JSON", self.channel)
                            continue
                        self._fan_out(batch if isinstance(batch, list) else [])
            except asyncio.CancelledError:
                raise
            except (aioredis.ConnectionError, aioredis.TimeoutError, OSError) as exc:
                log.warning("live hub: redis unavailable (%s); retrying", type(exc).__name__)
            except Exception:
                log.exception("live hub failed; subscribing again")
            finally:
                self.subscribed.clear()
                self._fan_out(DOWN)
                try:
                    await r.aclose()
                except Exception:  # noqa: BLE001 - a dead connection may fail to close
                    pass
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, RETRY_MAX_S)


class Shared:
    """An async cache in which concurrent askers of one key wait for one computation.

    The computation runs as its own task: a page that closes while waiting does not cancel it
    for the others.
    """

    def __init__(self, limit: int = 512) -> None:
        self.limit = limit
        self._data: dict[Any, tuple[float, Any]] = {}
        self._flights: dict[Any, asyncio.Future[Any]] = {}

    async def get(self, key: Any, ttl: float, compute: Callable[[], Awaitable[Any]]) -> Any:
        hit = self._data.get(key)
        if hit is not None and time.monotonic() - hit[0] < ttl:
            return hit[1]
        flight = self._flights.get(key)
        if flight is None:
            flight = asyncio.ensure_future(self._compute(key, compute))
            flight.add_done_callback(_retrieve)
            self._flights[key] = flight
        return await asyncio.shield(flight)

    async def _compute(self, key: Any, compute: Callable[[], Awaitable[Any]]) -> Any:
        try:
            value = await compute()
            if len(self._data) >= self.limit:
                self._data.clear()
            self._data[key] = (time.monotonic(), value)
            return value
        finally:
            self._flights.pop(key, None)


def _retrieve(future: asyncio.Future[Any]) -> None:
    """Mark a shared computation's error as seen (each asker gets it raised)."""
    if not future.cancelled():
        future.exception()


class Frozen:
    """A value serialised once: its JSON text, its plain form, and a digest of the text."""

    __slots__ = ("digest", "text", "value")

    def __init__(self, text: str) -> None:
        self.text = text
        self.value = json.loads(text)
        self.digest = hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def freeze(value: Any) -> Frozen:
    """Serialise ``value`` (components included) once, for every page that shows it."""
    return Frozen(to_json(value))


def send(ws: Any, component_id: str, prop: str, frozen: Frozen) -> None:
    """Push ``frozen`` to one page over its socket, without serialising it again.

    Dash's ``set_props`` serialises each message with Plotly's encoder, which encodes, decodes
    and encodes again (to replace NaN): under load that was a quarter of the web process's time.
    This writes the same ``set_props`` message Dash would, from the text serialised once. It
    uses Dash 4.4's socket internals (``_renderer_id``, ``_get_outbound_queue``); without
    them it falls back to ``set_props``.
    """
    try:
        if ws.is_shutdown:
            return
        queue = ws._get_outbound_queue()
        renderer = ws._renderer_id
    except AttributeError:
        queue = None
    if queue is None:
        set_props(component_id, {prop: frozen.value})
        return
    head = json.dumps(
        {"type": "set_props", "rendererId": renderer, "payload": {"componentId": component_id}}
    )
    # {"type": ..., "payload": {"componentId": ...}} -> insert the props before the two braces.
    text = f'{head[:-2]}, "props": {{{json.dumps(prop)}: {frozen.text}}}}}}}'
    queue.sync_q.put_nowait(text)
