"""Push live updates over Dash's WebSocket: feed, today's tiles, alerts, headline tiles, map.

One persistent async callback per open page. It subscribes to the worker's pub/sub channel
(``wushi:{district}:live``, one message per stored batch), keeps the area from the logged-in
user (never from the client), and pushes with ``set_props``. The headline tiles and the map's
colours are pushed too (at most every ``MAP_EVERY_S`` while events arrive), computed once per
area and shared by all pages: the page's own HTTP callbacks only answer the user's choices.
After a reconnect Dash restarts it; it then re-reads the feed list, so nothing shown is lost
across server or Redis restarts.

Faults (docs/reliability.md): when its Redis subscription fails, it marks ``#ws-status`` with
``data-feed="down"`` (the page then shows "重新连接中… / Reconnecting…" although the socket is
up), retries every 0.5–2 s and clears the mark once subscribed again. It probes the database
every two seconds through ``Sources`` and shows or hides the "data stale" badge.

The parts: ``LiveProcess`` (one per web process: the hub and the figures its pages share),
``LivePage`` (one per open page: what it shows, what it was sent, its loop and retries) and
``PageSchedule`` (pure: when each push is due, from the monotonic clock and what arrived).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from html import escape
from typing import Any

import redis.asyncio as aioredis
from dash import ClientsideFunction, Dash, Input, Output, ctx, set_props
from dash.exceptions import PreventUpdate, WebsocketDisconnected

from callbacks import common, livehub, map_, panels
from dashboard.sources import DB_UNAVAILABLE as DB_DOWN
from dashboard.sources import Sources
from datasources import live_view
from datasources.kpi import AreaRef
from datasources.live import LiveKeys
from datasources.periods import SHANGHAI
from layouts import ids
from layouts.components import (
    alert_item,
    feed_html,
    feed_item,
    stale_badge_props,
    today_tiles,
)
from layouts.i18n import normal_lang, t

log = logging.getLogger("wushi.live")

FEED_SHOWN = 30
# Feed entries kept first when more arrive in one flush than the feed shows: a green-key call
# (someone waiting for the secretary), a petition, an escalation; then the rest of the urgent
# ones (other key presses, a call returned, a reopened ticket, a supervision item).
FIRST_KINDS = frozenset({"ticket.escalated"})
URGENT_PREFIXES = ("call.", "petition.")
URGENT_KINDS = frozenset({"ticket.escalated", "ticket.reopened", "supervision.posted"})
# The headline tiles and the map's colours: at most one push each 2 s while events arrive (their
# values come from SQL; the map is restyled in place, so it could go faster).
MAP_EVERY_S = 2.0
SLOW_EVERY_S = 5.0  # alerts, open tickets and the freshness mark
STALE_AFTER_S = 60
# The feed: at most one browser update per 150 ms, on every page. (Half a second off the wall
# cut the server's work under load but put the overview's event -> screen p95 at ~500 ms,
# over the 250 ms target: docs/performance.md.)
FLUSH_S = 0.15
TODAY_EVERY_S = 0.5  # today's tiles (counters): at most two updates a second
SELECTION_EVERY_S = 1.0  # how often the page's filters and language are read back
PROBE_EVERY_S = 2.0  # how often the database is probed for the "data stale" badge
RETRY_MAX_S = 2.0  # longest wait between attempts to subscribe again after losing Redis


class _PageGone(Exception):
    """The page stopped answering (closed, or a socket Dash no longer routes replies to)."""


@dataclass(frozen=True)
class Selection:
    """What the page shows: filters, language, and (where it has a map) path, metric, focus."""

    filters: dict[str, Any]
    lang: str
    path: str | None = None
    metric: str | None = None
    focus: str | None = None

    @property
    def has_map(self) -> bool:
        """Whether the page told its path and metric, so its tiles and map can be pushed."""
        return self.path is not None and self.metric is not None


async def _selection(ws: Any) -> Selection:
    try:
        mirrored = await ws.get_prop(ids.LIVE_SELECTION, "data")
        if not isinstance(mirrored, dict):
            # A page without the map (the audit page) or not drawn yet: the feed's area only.
            mirrored = {
                "filters": await ws.get_prop(ids.FILTERS, "data"),
                "lang": await ws.get_prop(ids.LANG, "data"),
            }
    except (TimeoutError, WebsocketDisconnected):
        # A get_prop unanswered for 30 s: the page is gone or its replies go to another socket.
        raise _PageGone from None
    filters = mirrored.get("filters")
    path, metric, focus = (mirrored.get(k) for k in ("path", "metric", "focus"))
    return Selection(
        filters=filters if isinstance(filters, dict) else {},
        lang=normal_lang(mirrored.get("lang")),
        path=path if isinstance(path, str) else None,
        metric=metric if isinstance(metric, str) else None,
        focus=focus if isinstance(focus, str) else None,
    )


def urgent(entry: dict[str, Any]) -> bool:
    """Whether a feed entry is one a person must not miss: a call, a petition, an escalation."""
    kind = str(entry.get("kind", ""))
    return kind.startswith(URGENT_PREFIXES) or kind in URGENT_KINDS


def rank(entry: dict[str, Any]) -> int:
    """Return how soon a feed entry must be shown: 0 first (a green-key call, a petition, an
    escalation), 1 the other urgent ones, 2 the routine ones."""
    kind = str(entry.get("kind", ""))
    if (
        (kind == "call.key" and entry.get("key") == "call")
        or kind.startswith("petition.")
        or kind in FIRST_KINDS
    ):
        return 0
    return 1 if urgent(entry) else 2


def first_to_show(fresh: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return the entries of one flush the feed shows, newest first.

    The feed holds FEED_SHOWN entries. When more arrive in one flush (a district at 200 events
    a second sends about 30 per 150 ms; after a pause of the worker, a few times that), the
    green-key calls, petitions and escalations are kept first, then the other urgent ones, and
    the routine ones (ticket stages, points, votes) fill the rest; the order stays newest first.
    """
    if len(fresh) <= FEED_SHOWN:
        return fresh
    ranked = sorted(range(len(fresh)), key=lambda i: (rank(fresh[i]), i))
    keep = sorted(ranked[:FEED_SHOWN])
    return [fresh[i] for i in keep]


IDLE_WAIT_S = 1.0  # longest an idle page waits for a batch before its housekeeping
RETRY_FIRST_S = 0.5  # first wait before subscribing again after losing Redis


class Backoff:
    """The waits between attempts to subscribe again: 0.5 s, doubling up to ``RETRY_MAX_S``.

    ``reset`` after a subscription succeeded, so the next loss is retried quickly again.
    """

    def __init__(self) -> None:
        self.wait_s = RETRY_FIRST_S

    def next(self) -> float:
        """Return how long to wait now, and lengthen the next wait."""
        wait_s = self.wait_s
        self.wait_s = min(wait_s * 2, RETRY_MAX_S)
        return wait_s

    def reset(self) -> None:
        self.wait_s = RETRY_FIRST_S


@dataclass
class PageSchedule:
    """When each of a live page's pushes is due, from the monotonic clock and what arrived.

    Pure (no I/O, no clock of its own): ``LivePage`` asks it with ``now`` and tells it what it
    did. The times are those of the last push of each kind:

    - the feed (``flush_at``): an event after a quiet spell is flushed at once, later ones at
      most every ``FLUSH_S``; a changed area flushes at once;
    - today's tiles go with a flush, at most every ``TODAY_EVERY_S``;
    - the headline tiles and the map (``moved``): only when a batch arrived since their last
      push and ``MAP_EVERY_S`` passed;
    - the page's selection is read every ``SELECTION_EVERY_S``, the slow pushes (alerts, the
      freshness mark) go every ``SLOW_EVERY_S``, the database is probed every ``PROBE_EVERY_S``.
    """

    last_flush: float
    last_today: float
    last_map: float
    last_selection: float
    last_slow: float
    last_probe: float
    flush_at: float | None = None  # when the pending feed entries are due; None: nothing pending
    moved: bool = False  # batches arrived since the map and headline tiles were last pushed

    @classmethod
    def start(cls, now: float) -> PageSchedule:
        """Return the schedule of a page that was sent everything at ``now``."""
        return cls(now, now, now, now, now, now)

    def wait_s(self, now: float) -> float | None:
        """Return how long to sleep before taking the queued batches at once, or None when
        idle (then the page waits for the next batch, at most ``IDLE_WAIT_S``)."""
        return None if self.flush_at is None else max(0.0, self.flush_at - now)

    def map_due(self, now: float) -> bool:
        return self.moved and now - self.last_map >= MAP_EVERY_S

    def map_pushed(self, now: float) -> None:
        self.last_map, self.moved = now, False

    def selection_due(self, now: float) -> bool:
        return now - self.last_selection >= SELECTION_EVERY_S

    def selection_read(self, now: float) -> None:
        self.last_selection = now

    def area_changed(self, now: float) -> None:
        """The page shows another area: its feed is due at once."""
        self.flush_at = now

    def arrived(self, now: float, mine: bool) -> None:
        """A batch arrived; ``mine`` if it holds entries of the page's area."""
        self.moved = True
        if mine and self.flush_at is None:
            # Leading edge: an event after a quiet spell shows at once.
            self.flush_at = max(now, self.last_flush + FLUSH_S)

    def flush_due(self, now: float) -> bool:
        return self.flush_at is not None and now >= self.flush_at

    def flushed(self, now: float) -> bool:
        """Record the feed's flush; return whether today's tiles go with it."""
        today = now - self.last_today >= TODAY_EVERY_S
        if today:
            self.last_today = now
        self.flush_at, self.last_flush = None, now
        return today

    def slow_due(self, now: float) -> bool:
        return now - self.last_slow >= SLOW_EVERY_S

    def slow_pushed(self, now: float) -> None:
        self.last_slow = now

    def probe_due(self, now: float) -> bool:
        return now - self.last_probe >= PROBE_EVERY_S

    def probed(self, now: float) -> None:
        self.last_probe = now


class LiveProcess:
    """What the live pages of one web process share: the hub and the figures they show.

    Every figure is computed once per area (and language) for all pages showing it
    (``livehub.Shared`` for the Redis ones, ``Sources.cached`` for the SQL ones) and frozen
    once; a page only sends it.
    """

    def __init__(self, sources: Sources) -> None:
        self.sources = sources
        self.district = sources.district
        self.channel = LiveKeys(sources.district).channel
        self.shared = livehub.Shared()
        self._hubs: dict[asyncio.AbstractEventLoop, livehub.Hub] = {}  # one per event loop
        self._frozen: dict[int, tuple[Any, livehub.Frozen]] = {}

    def hub(self) -> livehub.Hub:
        loop = asyncio.get_running_loop()
        if loop not in self._hubs:
            self._hubs.clear()  # a new loop (tests start servers one after another)
            self._hubs[loop] = livehub.Hub(self.sources.redis_url, self.channel)
        return self._hubs[loop]

    def area(self, filters: dict[str, Any], current: AreaRef | None) -> AreaRef:
        """Return the area of the filters; while the database is down, keep the current one."""
        try:
            return common.area(self.sources, filters)
        except PreventUpdate:
            # A filter the user may not see (forged, or a stale link): keep showing what the
            # page showed, or the user's own area; never end the page's live stream over it.
            return current if current is not None else common.area(self.sources, {})
        except DB_DOWN:
            if current is None:
                raise
            return current

    async def shown(self, r: aioredis.Redis, code: str) -> list[dict[str, Any]]:
        """Return the area's feed list as Redis keeps it (newest first)."""
        return await live_view.feed(r, self.district, code, FEED_SHOWN)

    async def feed(self, shown: list[dict[str, Any]], lang: str) -> livehub.Frozen:
        """Return the feed; pages showing the same entries share one rendering of them."""

        async def build() -> livehub.Frozen:
            names = self.sources.names().of(lang)
            items = [feed_item(e, names, lang) for e in shown]
            return livehub.freeze(feed_html(items, t("no_events", lang)))

        key = ("feed", lang, tuple(str(e.get("id")) for e in shown))
        return await self.shared.get(key, 10.0, build)

    async def today(self, r: aioredis.Redis, code: str, lang: str) -> livehub.Frozen:
        """Return today's tiles of an area, shared by its pages for one flush interval."""
        district = self.district

        async def build() -> livehub.Frozen:
            counts = await live_view.today_counts(r, district, code, self.sources.now())
            tallies = await self.shared.get(
                ("tallies",), FLUSH_S / 2, lambda: live_view.open_tallies(r, district)
            )
            snap = live_view.tallied(tallies, district, code)
            return livehub.freeze(today_tiles(counts, snap, lang))

        return await self.shared.get(("today", code, lang), FLUSH_S / 2, build)

    async def alerts(self, r: aioredis.Redis, code: str, lang: str) -> livehub.Frozen:
        """Return the area's active alerts as HTML."""
        district = self.district

        async def build() -> livehub.Frozen:
            names = self.sources.names().of(lang)
            every = await self.shared.get(
                ("alerts",), 1.0, lambda: live_view.all_alerts(r, district)
            )
            active = live_view.alerts_in(every, code, district)
            return livehub.freeze(
                "".join(alert_item(a, names, lang) for a in active) or escape(t("no_alerts", lang))
            )

        return await self.shared.get(("alerts", code, lang), 1.0, build)

    async def as_of(self, r: aioredis.Redis) -> float | None:
        """Return the time of the newest stored event (the freshness mark)."""
        district = self.district
        return await self.shared.get(("as_of",), 1.0, lambda: live_view.data_as_of(r, district))

    async def pulse(self, r: aioredis.Redis, code: str) -> list[str]:
        """Return the area's grids with an unanswered call."""
        district = self.district
        every = await self.shared.get(
            ("pulse",), 1.0, lambda: live_view.all_unanswered_grids(r, district)
        )
        return live_view.grids_in(every, code, district)

    async def panels(
        self, sel: Selection, pulse: list[str]
    ) -> tuple[livehub.Frozen, livehub.Frozen, livehub.Frozen] | None:
        """Return the headline tiles, the map's hideout and its legend for the page's choices,
        or None when it has no map or keeps what it shows.

        Both are computed once per area, metric and language and shared by every page that
        shows them (``Sources.cached``): a push costs the server one serialisation per page,
        not one HTTP callback per page (docs/performance.md, "Load").
        """
        if not sel.has_map:
            return None
        try:
            head, style = await asyncio.gather(
                asyncio.to_thread(
                    panels.headline_tiles, self.sources, sel.filters, sel.lang, sel.path
                ),
                asyncio.to_thread(
                    map_.map_style,
                    self.sources,
                    sel.filters,
                    sel.metric,
                    sel.lang,
                    pulse,
                    sel.focus,
                    sel.path,
                ),
            )
        except PreventUpdate:
            return None  # a filter this user may not see: the page keeps what it shows
        except DB_DOWN:
            return None  # a database down with nothing cached: the stale badge says why
        tiles, _title = head
        hideout, legend = style
        return self.frozen_once(tiles), self.frozen_once(hideout), self.frozen_once(legend)

    def frozen_once(self, value: Any) -> livehub.Frozen:
        """Return the frozen form of a shared value (the same object for every page)."""
        hit = self._frozen.get(id(value))
        if hit is not None and hit[0] is value:
            return hit[1]
        if len(self._frozen) > 256:
            self._frozen.clear()
        converted = livehub.freeze(value)
        self._frozen[id(value)] = (value, converted)
        return converted


SetProps = Callable[[str, dict[str, Any]], None]
Sleep = Callable[[float], Awaitable[None]]


class LivePage:
    """One open page's live stream: its state, and the loop that pushes to it.

    States: *connecting* (joining the hub, reading the page's selection and sending it
    everything), *live* (``serve``'s loop, timed by ``PageSchedule``), *down* (Redis lost:
    ``#ws-status`` gets ``data-feed="down"`` and the page tries again after ``Backoff``'s wait;
    or the database was down before the area was first known: again after ``RETRY_MAX_S``),
    and the end: the socket shut (``run`` returns) or the page gone (``PreventUpdate``).
    """

    def __init__(
        self,
        live: LiveProcess,
        ws: Any,
        push: SetProps = set_props,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.live = live
        self.ws = ws
        self.push = push
        self.sleep = sleep
        self.subscribed = False  # whether the page was subscribed since the last loss of Redis
        self.sent: dict[str, str] = {}  # what this page was last sent, by component (digests)
        self.refresh: asyncio.Task[None] | None = None  # the tiles' and map's push under way

    async def run(self) -> None:
        """Serve the page until its socket shuts, starting again after Redis or the database
        was lost; a page gone ends it with ``PreventUpdate``."""
        backoff = Backoff()
        while not self.ws.is_shutdown:
            try:
                await self.serve()
                return
            except _PageGone:
                raise PreventUpdate from None
            except (aioredis.ConnectionError, aioredis.TimeoutError, OSError) as exc:
                log.warning("live: redis unavailable (%s); retrying", type(exc).__name__)
                self.feed_state("down")
                self.push(ids.DATA_AS_OF, {"className": "asof stale"})
                if self.subscribed:
                    backoff.reset()
                    self.subscribed = False
                await self.sleep(backoff.next())
            except DB_DOWN as exc:
                # Only before the page's area is first known (then the last one is kept).
                log.warning("live: database unavailable (%s); retrying", type(exc).__name__)
                await self.sleep(RETRY_MAX_S)
            except (PreventUpdate, asyncio.CancelledError):
                raise
            except Exception:
                # Never let an exception's text reach the client (Dash sends it over the socket).
                log.exception("live callback failed")
                raise PreventUpdate from None
        raise PreventUpdate

    async def serve(self) -> None:
        """Subscribe, send the page everything, then push what is due until the socket shuts."""
        live = self.live
        hub = live.hub()
        queue = await hub.join()  # first: no batch is missed between the feed's read and this
        r = hub.redis
        self.sent.clear()
        try:
            sel = await _selection(self.ws)
            area = live.area(sel.filters, None)
            shown = await live.shown(r, area.code)
            await self.send_feed(shown, sel.lang)
            await self.send_slow(r, area.code, sel.lang)
            pulse = await self.send_pulse(r, area.code)
            await self.send_panels(sel, pulse)
            self.subscribed = True
            stale = self.send_stale(sel.lang, None, force=True)
            clock = PageSchedule.start(time.monotonic())
            pending: list[dict[str, Any]] = []
            while not self.ws.is_shutdown:
                batch = await self.next_batch(queue, clock.wait_s(time.monotonic()))
                if batch is livehub.DOWN:
                    raise aioredis.ConnectionError("live channel lost")
                now = time.monotonic()
                map_due = clock.map_due(now)
                if clock.selection_due(now):
                    # The page's choices are read now and then, not per message: every read is
                    # a round trip to a browser that may be busy drawing.
                    new = await _selection(self.ws)
                    clock.selection_read(now)
                    if new.lang != sel.lang:
                        stale = self.send_stale(new.lang, stale, force=True)
                    if (new.lang, new.path) != (sel.lang, sel.path):
                        self.sent.clear()  # the page was drawn anew: nothing of it is current
                    sel = new
                    new_area = live.area(sel.filters, area)
                    if new_area.code != area.code:
                        area = new_area
                        shown = await live.shown(r, area.code)
                        pending = []
                        clock.area_changed(now)
                if batch is not None:
                    mine = [e for e in batch if live_view.in_area(e, area.code, live.district)]
                    if mine:
                        pending = mine + pending  # each batch is newest first, and newer
                    clock.arrived(now, bool(mine))
                if clock.flush_due(now):
                    # Many batches a second become one update: the browser redraws at most
                    # every FLUSH_S, however fast events come.
                    shown = merged(shown, pending)
                    pending = []
                    await self.send_feed(shown, sel.lang)
                    if clock.flushed(now):
                        self.send(ids.TODAY_HTML, "html", await live.today(r, area.code, sel.lang))
                if clock.slow_due(now):
                    await self.send_slow(r, area.code, sel.lang)
                    clock.slow_pushed(now)
                if map_due and (self.refresh is None or self.refresh.done()):
                    # Beside the feed, not in its way: computing the tiles and the map's
                    # colours (SQL in threads) must not hold back the next flush.
                    self.refresh = asyncio.create_task(self.refresh_panels(r, area.code))
                    clock.map_pushed(now)
                if clock.probe_due(now):
                    await asyncio.to_thread(live.sources.check_database)
                    stale = self.send_stale(sel.lang, stale)
                    clock.probed(now)
        finally:
            hub.leave(queue)
            if self.refresh is not None:
                self.refresh.cancel()
                self.refresh = None

    @staticmethod
    async def next_batch(queue: asyncio.Queue[Any], wait_s: float | None) -> Any:
        """Return every batch queued after waiting ``wait_s`` (None: for the first one, at most
        ``IDLE_WAIT_S``) as one batch, newest first; ``livehub.DOWN`` if the channel was lost,
        None if nothing came.

        A flush that is due sleeps until then and takes what came meanwhile at once, rather
        than waking for each of the 10–20 batches a second the worker publishes (with a
        hundred pages open, those wake-ups were the cost); a page that fell behind (a busy
        server) catches up in one step instead of one batch per turn.
        """
        batch: Any = None
        if wait_s is None:
            try:
                batch = await asyncio.wait_for(queue.get(), timeout=IDLE_WAIT_S)
            except TimeoutError:
                pass
        else:
            await asyncio.sleep(wait_s)
        while batch is not livehub.DOWN and not queue.empty():
            newer = queue.get_nowait()
            batch = newer if newer is livehub.DOWN or batch is None else newer + batch
        return batch

    async def refresh_panels(self, r: aioredis.Redis, code: str) -> None:
        """Push the tiles and map for the page's choices, read first: a push never paints
        over a choice the user has just made."""
        try:
            sel = await _selection(self.ws)
            pulse = await self.send_pulse(r, code)
            await self.send_panels(sel, pulse)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the feed's loop sees a lost page or Redis itself
            log.debug("live: panels refresh skipped (%s)", type(exc).__name__)

    def feed_state(self, state: str) -> None:
        """Tell the page whether its live feed is subscribed ("up") or not ("down")."""
        self.push(ids.WS_STATUS, {"data-feed": state})

    def send(self, cid: str, prop: str, frozen: livehub.Frozen) -> None:
        """Push ``frozen`` unless this page was already sent exactly that."""
        key = f"{cid}.{prop}"
        if self.sent.get(key) != frozen.digest:
            livehub.send(self.ws, cid, prop, frozen)
            self.sent[key] = frozen.digest

    def send_stale(self, lang: str, shown: float | None, force: bool = False) -> float | None:
        """Show or hide the "data stale" badge when the database's state changed."""
        since = self.live.sources.stale_since()
        if force or since != shown:
            self.push(ids.DB_STALE, stale_badge_props(since, lang))
        return since

    async def send_feed(self, shown: list[dict[str, Any]], lang: str) -> None:
        livehub.send(self.ws, ids.FEED_HTML, "html", await self.live.feed(shown, lang))

    async def send_slow(self, r: aioredis.Redis, code: str, lang: str) -> None:
        """Push the alerts, the freshness mark and today's tiles, and the feed's "up" mark."""
        live = self.live
        livehub.send(self.ws, ids.ALERTS_HTML, "html", await live.alerts(r, code, lang))
        as_of = await live.as_of(r)
        # The wall's clock turns the mark red by itself once the data is STALE_AFTER_S old.
        freshness = {"as_of": as_of, "lang": lang, "stale_s": STALE_AFTER_S}
        self.push(ids.FRESHNESS, {"data": freshness})
        self.push(ids.DATA_AS_OF, as_of_props(as_of, lang, time.time()))
        livehub.send(self.ws, ids.TODAY_HTML, "html", await live.today(r, code, lang))
        self.feed_state("up")  # again now and then: a re-rendered page starts without the mark

    async def send_pulse(self, r: aioredis.Redis, code: str) -> list[str]:
        """Keep the page's list of grids with an unanswered call (the map callback reads it)."""
        pulse = await self.live.pulse(r, code)
        self.push(ids.LIVE_VERSION, {"data": {"t": time.time(), "pulse": pulse}})
        return pulse

    async def send_panels(self, sel: Selection, pulse: list[str]) -> None:
        """Push the headline tiles and the map's colours for the page's current choices."""
        found = await self.live.panels(sel, pulse)
        if found is None:
            return
        tiles, hideout, legend = found
        # Only what changed since this page's last push: the figures move with the minute's
        # rollups and the pulse with calls, not with every batch.
        self.send(ids.TILES_HTML, "html", tiles)
        self.send(ids.GRID_STYLE, "data", hideout)
        self.send(ids.LEGEND_HTML, "html", legend)


def merged(shown: list[dict[str, Any]], pending: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Return the feed after a flush: the entries not shown yet (``first_to_show``), then the
    ones shown, newest first, at most ``FEED_SHOWN``."""
    seen = {e["id"] for e in shown}
    fresh = first_to_show([e for e in pending if e.get("id") not in seen])
    return (fresh + shown)[:FEED_SHOWN]


def as_of_props(as_of: float | None, lang: str, now: float) -> dict[str, Any]:
    """Return the "data as of" mark's text and class (red once the data is a minute old)."""
    stale = as_of is None or now - as_of > STALE_AFTER_S
    stamp = (
        "—" if as_of is None else dt.datetime.fromtimestamp(as_of, SHANGHAI).strftime("%H:%M:%S")
    )
    return {
        "children": f"{t('data_as_of', lang)} {stamp}"
        + (f" ({t('stale', lang)})" if stale else ""),
        "className": "asof stale" if stale else "asof",
    }


def register(app: Dash, sources: Sources) -> None:
    """Register the persistent live callback and the store it reads the page's choices from."""
    live = LiveProcess(sources)

    app.clientside_callback(
        ClientsideFunction(namespace="wushi", function_name="liveSelection"),
        Output(ids.LIVE_SELECTION, "data"),
        Input(ids.FILTERS, "data"),
        Input(ids.LANG, "data"),
        Input(ids.URL, "pathname"),
        Input(ids.METRIC, "value"),
        Input(ids.WALL_FOCUS, "data"),
    )

    @app.callback(persistent=True, websocket=True)
    async def stream_live() -> None:
        common.user()
        await LivePage(live, ctx.websocket).run()
