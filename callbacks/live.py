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
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from dataclasses import dataclass
from html import escape
from typing import Any

import redis.asyncio as aioredis
from dash import Input, Output, ctx, set_props
from dash.exceptions import PreventUpdate, WebsocketDisconnected

from callbacks import common, livehub, map_, panels
from dashboard.sources import DB_UNAVAILABLE as DB_DOWN
from datasources import live_view
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


# Mirrors what the live callback needs into one store, so it is read in one round trip.
SELECTION_JS = """
function(filters, lang, path, metric, focus) {
    return {filters: filters || {}, lang: lang, path: path, metric: metric, focus: focus};
}
"""


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


def _feed_state(state: str) -> None:
    """Tell the page whether its live feed is subscribed ("up") or not ("down")."""
    set_props(ids.WS_STATUS, {"data-feed": state})


def register(app: Any, sources: Any) -> None:
    """Register the persistent live callback."""
    district = sources.district
    keys = LiveKeys(district)

    app.clientside_callback(
        SELECTION_JS,
        Output(ids.LIVE_SELECTION, "data"),
        Input(ids.FILTERS, "data"),
        Input(ids.LANG, "data"),
        Input(ids.URL, "pathname"),
        Input(ids.METRIC, "value"),
        Input(ids.WALL_FOCUS, "data"),
    )

    hubs: dict[Any, livehub.Hub] = {}  # one per event loop (one per web process)
    shared = livehub.Shared()

    def hub() -> livehub.Hub:
        loop = asyncio.get_running_loop()
        if loop not in hubs:
            hubs.clear()  # a new loop (tests start servers one after another)
            hubs[loop] = livehub.Hub(sources.redis_url, keys.channel)
        return hubs[loop]

    @app.callback(persistent=True, websocket=True)
    async def stream_live() -> None:
        common.user()
        ws = ctx.websocket
        backoff = 0.5
        progress = {"subscribed": False}
        while not ws.is_shutdown:
            try:
                await _serve(ws, hub(), progress)
                return
            except _PageGone:
                raise PreventUpdate from None
            except (aioredis.ConnectionError, aioredis.TimeoutError, OSError) as exc:
                log.warning("live: redis unavailable (%s); retrying", type(exc).__name__)
                _feed_state("down")
                set_props(ids.DATA_AS_OF, {"className": "asof stale"})
                if progress["subscribed"]:
                    backoff, progress["subscribed"] = 0.5, False
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, RETRY_MAX_S)
            except DB_DOWN as exc:
                # Only before the page's area is first known (then the last one is kept).
                log.warning("live: database unavailable (%s); retrying", type(exc).__name__)
                await asyncio.sleep(RETRY_MAX_S)
            except (PreventUpdate, asyncio.CancelledError):
                raise
            except Exception:
                # Never let an exception's text reach the client (Dash sends it over the socket).
                log.exception("live callback failed")
                raise PreventUpdate from None
        raise PreventUpdate

    def _area(filters: dict[str, Any], current: Any) -> Any:
        """Return the area of the filters; while the database is down, keep the current one."""
        try:
            return common.area(sources, filters)
        except PreventUpdate:
            # A filter the user may not see (forged, or a stale link): keep showing what the
            # page showed, or the user's own area; never end the page's live stream over it.
            return current if current is not None else common.area(sources, {})
        except DB_DOWN:
            if current is None:
                raise
            return current

    async def _serve(ws: Any, h: livehub.Hub, progress: dict[str, bool]) -> None:
        queue = await h.join()  # first: no batch is missed between the feed's read and this
        r = h.redis
        sent: dict[str, str] = {}  # what this page was last sent, by component (digests)
        refresh: asyncio.Task[None] | None = None  # the tiles' and map's push under way
        try:
            sel = await _selection(ws)
            area = _area(sel.filters, None)
            shown = await live_view.feed(r, district, area.code, FEED_SHOWN)
            await _push_feed(shown, sel.lang)
            await _push_slow(r, area.code, sel.lang)
            pulse = await _push_pulse(r, area.code)
            await _push_panels(sel, pulse, sent)
            progress["subscribed"] = True
            stale = _push_stale(sel.lang, None, force=True)
            last_map = last_slow = last_selection = last_flush = last_probe = time.monotonic()
            last_today = last_flush
            pending: list[dict[str, Any]] = []
            flush_at: float | None = None
            moved = False  # events arrived since the map and headline tiles were last pushed
            while not ws.is_shutdown:
                batch: Any = None
                if flush_at is None:
                    try:  # idle: wake for the first batch (or a second's housekeeping)
                        batch = await asyncio.wait_for(queue.get(), timeout=1.0)
                    except TimeoutError:
                        pass
                else:
                    # A flush is due: sleep until then and take what came meanwhile at once,
                    # rather than waking for each of the 10–20 batches a second the worker
                    # publishes (with a hundred pages open, those wake-ups were the cost).
                    await asyncio.sleep(max(0.0, flush_at - time.monotonic()))
                # Everything queued is taken in one step: a page that fell behind (a busy
                # server) catches up at once instead of one batch per turn.
                while batch is not livehub.DOWN and not queue.empty():
                    newer = queue.get_nowait()
                    batch = newer if newer is livehub.DOWN or batch is None else newer + batch
                if batch is livehub.DOWN:
                    raise aioredis.ConnectionError("live channel lost")
                now = time.monotonic()
                map_due = moved and now - last_map >= MAP_EVERY_S
                if now - last_selection >= SELECTION_EVERY_S:
                    # The page's choices are read now and then, not per message: every read is
                    # a round trip to a browser that may be busy drawing.
                    new = await _selection(ws)
                    last_selection = now
                    if new.lang != sel.lang:
                        stale = _push_stale(new.lang, stale, force=True)
                    if (new.lang, new.path) != (sel.lang, sel.path):
                        sent.clear()  # the page was drawn anew: nothing of it is current
                    sel = new
                    new_area = _area(sel.filters, area)
                    if new_area.code != area.code:
                        area = new_area
                        shown = await live_view.feed(r, district, area.code, FEED_SHOWN)
                        pending, flush_at = [], now
                if batch is not None:
                    moved = True
                    mine = [e for e in batch if live_view.in_area(e, area.code, district)]
                    if mine:
                        pending = mine + pending  # each batch is newest first, and newer
                        # Leading edge: an event after a quiet spell shows at once.
                        flush_at = flush_at or max(now, last_flush + FLUSH_S)
                if flush_at is not None and now >= flush_at:
                    # Many batches a second become one update: the browser redraws at most
                    # every FLUSH_S, however fast events come.
                    seen = {e["id"] for e in shown}
                    fresh = first_to_show([e for e in pending if e.get("id") not in seen])
                    shown = (fresh + shown)[:FEED_SHOWN]
                    await _push_feed(shown, sel.lang)
                    if now - last_today >= TODAY_EVERY_S:
                        _send(sent, ids.TODAY_HTML, "html", await _today(r, area.code, sel.lang))
                        last_today = now
                    pending, flush_at, last_flush = [], None, now
                if now - last_slow >= SLOW_EVERY_S:
                    await _push_slow(r, area.code, sel.lang)
                    last_slow = now
                if map_due and (refresh is None or refresh.done()):
                    # Beside the feed, not in its way: computing the tiles and the map's
                    # colours (SQL in threads) must not hold back the next flush.
                    refresh = asyncio.create_task(_refresh_panels(ws, r, area.code, sent))
                    last_map, moved = now, False
                if now - last_probe >= PROBE_EVERY_S:
                    await asyncio.to_thread(sources.check_database)
                    stale = _push_stale(sel.lang, stale)
                    last_probe = now
        finally:
            h.leave(queue)
            if refresh is not None:
                refresh.cancel()

    async def _refresh_panels(ws: Any, r: aioredis.Redis, code: str, sent: dict[str, str]) -> None:
        """Push the tiles and map for the page's choices, read first: a push never paints
        over a choice the user has just made."""
        try:
            sel = await _selection(ws)
            pulse = await _push_pulse(r, code)
            await _push_panels(sel, pulse, sent)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - the feed's loop sees a lost page or Redis itself
            log.debug("live: panels refresh skipped (%s)", type(exc).__name__)

    def _push_stale(lang: str, shown: float | None, force: bool = False) -> float | None:
        """Show or hide the "data stale" badge when the database's state changed."""
        since = sources.stale_since()
        if force or since != shown:
            set_props(ids.DB_STALE, stale_badge_props(since, lang))
        return since

    async def _today(r: aioredis.Redis, code: str, lang: str) -> livehub.Frozen:
        """Return today's tiles of an area, shared by its pages for one flush interval."""

        async def build() -> Any:
            counts = await live_view.today_counts(r, district, code, sources.now())
            tallies = await shared.get(
                ("tallies",), FLUSH_S / 2, lambda: live_view.open_tallies(r, district)
            )
            snap = live_view.tallied(tallies, district, code)
            return livehub.freeze(today_tiles(counts, snap, lang))

        return await shared.get(("today", code, lang), FLUSH_S / 2, build)  # type: ignore[no-any-return]

    def _send(sent: dict[str, str], cid: str, prop: str, frozen: livehub.Frozen) -> None:
        """Push ``frozen`` unless this page was already sent exactly that."""
        key = f"{cid}.{prop}"
        if sent.get(key) != frozen.digest:
            livehub.send(ctx.websocket, cid, prop, frozen)
            sent[key] = frozen.digest

    async def _push_feed(shown: list[dict[str, Any]], lang: str) -> None:
        """Push the feed; pages showing the same entries share one rendering of them."""

        async def build() -> Any:
            names = sources.names().of(lang)
            items = [feed_item(e, names, lang) for e in shown]
            return livehub.freeze(feed_html(items, t("no_events", lang)))

        key = ("feed", lang, tuple(str(e.get("id")) for e in shown))
        livehub.send(ctx.websocket, ids.FEED_HTML, "html", await shared.get(key, 10.0, build))

    async def _push_slow(r: aioredis.Redis, code: str, lang: str) -> None:
        async def build_alerts() -> Any:
            names = sources.names().of(lang)
            every = await shared.get(("alerts",), 1.0, lambda: live_view.all_alerts(r, district))
            active = live_view.alerts_in(every, code, district)
            return livehub.freeze(
                "".join(alert_item(a, names, lang) for a in active) or escape(t("no_alerts", lang))
            )

        alerts = await shared.get(("alerts", code, lang), 1.0, build_alerts)
        livehub.send(ctx.websocket, ids.ALERTS_HTML, "html", alerts)
        as_of = await shared.get(("as_of",), 1.0, lambda: live_view.data_as_of(r, district))
        set_props(ids.FRESHNESS, {"data": {"as_of": as_of, "lang": lang}})
        stale = as_of is None or time.time() - as_of > STALE_AFTER_S
        stamp = (
            "—"
            if as_of is None
            else dt.datetime.fromtimestamp(as_of, SHANGHAI).strftime("%H:%M:%S")
        )
        set_props(
            ids.DATA_AS_OF,
            {
                "children": f"{t('data_as_of', lang)} {stamp}"
                + (f" ({t('stale', lang)})" if stale else ""),
                "className": "asof stale" if stale else "asof",
            },
        )
        livehub.send(ctx.websocket, ids.TODAY_HTML, "html", await _today(r, code, lang))
        _feed_state("up")  # again now and then: a re-rendered page starts without the mark

    async def _push_pulse(r: aioredis.Redis, code: str) -> list[str]:
        """Keep the page's list of grids with an unanswered call (the map callback reads it)."""
        every = await shared.get(
            ("pulse",), 1.0, lambda: live_view.all_unanswered_grids(r, district)
        )
        pulse = live_view.grids_in(every, code, district)
        set_props(ids.LIVE_VERSION, {"data": {"t": time.time(), "pulse": pulse}})
        return pulse

    async def _push_panels(sel: Selection, pulse: list[str], sent: dict[str, str]) -> None:
        """Push the headline tiles and the map's colours for the page's current choices.

        Both are computed once per area, metric and language and shared by every page that
        shows them (``Sources.cached``): a push costs the server one serialisation per page,
        not one HTTP callback per page (docs/performance.md, "Load").
        """
        if not sel.has_map:
            return
        try:
            head, style = await asyncio.gather(
                asyncio.to_thread(panels.headline_tiles, sources, sel.filters, sel.lang, sel.path),
                asyncio.to_thread(
                    map_.map_style,
                    sources,
                    sel.filters,
                    sel.metric,
                    sel.lang,
                    pulse,
                    sel.focus,
                    sel.path,
                ),
            )
        except (PreventUpdate, *DB_DOWN):
            # A filter this user may not see, or a database down with nothing cached: the page
            # keeps what it shows (the stale badge says why).
            return
        tiles, _title = head
        hideout, legend = style
        # Only what changed since this page's last push: the figures move with the minute's
        # rollups and the pulse with calls, not with every batch.
        _send(sent, ids.TILES_HTML, "html", frozen_once(tiles))
        _send(sent, ids.GRID_STYLE, "data", frozen_once(hideout))
        _send(sent, ids.LEGEND_HTML, "html", frozen_once(legend))

    frozen: dict[int, tuple[Any, livehub.Frozen]] = {}

    def frozen_once(value: Any) -> livehub.Frozen:
        """Return the frozen form of a shared value (the same object for every page)."""
        hit = frozen.get(id(value))
        if hit is not None and hit[0] is value:
            return hit[1]
        if len(frozen) > 256:
            frozen.clear()
        converted = livehub.freeze(value)
        frozen[id(value)] = (value, converted)
        return converted
