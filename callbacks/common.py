"""What every callback needs: the logged-in user and the area they asked for, checked."""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
from collections.abc import Awaitable, Callable
from typing import Any

from dash.exceptions import PreventUpdate

from dashboard.sources import Sources
from datasources.identity import (
    AREA_KEYS,
    CURRENT_ADDRESS,
    CURRENT_USER,
    SessionUser,
    area_filters,
    clamp_area,
)
from datasources.kpi import AreaRef, UnknownArea
from datasources.periods import Period, local_day


def off_loop(fn: Callable[..., Any]) -> Callable[..., Awaitable[Any]]:
    """Run a plain callback in a worker thread instead of on the server's event loop.

    Dash's FastAPI backend runs a sync callback on the event loop itself: one that queries the
    database stalls every open page's live socket meanwhile (seen under load, docs/performance.md).
    The thread gets a copy of the request's context (the logged-in user, Dash's ``ctx``).
    """

    @functools.wraps(fn)
    async def run(*args: Any) -> Any:
        return await asyncio.to_thread(fn, *args)

    return run


def user() -> SessionUser:
    """Return the logged-in user of this request or socket; no user means no update."""
    current = CURRENT_USER.get()
    if current is None:
        raise PreventUpdate
    return current


def address() -> str | None:
    """Return the client's address of this request or socket (for audit entries)."""
    return CURRENT_ADDRESS.get()


def scoped_area(sources: Sources, filters: dict[str, Any] | None) -> AreaRef | None:
    """Return the area the filters name if the user may see it, else None.

    The filters come from the browser and may be forged: the user's own area is enforced here,
    on the server, whatever the dropdowns offered (``datasources.identity.clamp_area``). A
    database outage is not an answer: it raises, like in every other callback.
    """
    f = filters or {}
    who = user()
    wanted = tuple(f.get(key) if isinstance(f.get(key), str) else None for key in AREA_KEYS)

    def clamp() -> AreaRef | None:
        # A refusal is an answer (None), not an exception: OutOfScope is a PermissionError, an
        # OSError, which Sources.cached takes for "database unavailable" (it would mark every
        # page of the process stale because one user asked for another town).
        try:
            return clamp_area(who, sources.engine, *wanted, district_code=sources.district)
        except (PermissionError, UnknownArea, LookupError):
            return None

    # Cached per scope and request (areas hardly change), so a page does not query the
    # database for it on every callback, and keeps working from the cache while it is down.
    return sources.cached(("clamp", who.role, who.area_code, wanted), clamp, long=True)


def area(sources: Sources, filters: dict[str, Any] | None) -> AreaRef:
    """Return the area the filters name, if the user may see it; otherwise no update."""
    found = scoped_area(sources, filters)
    if found is None:
        raise PreventUpdate
    return found


def pinned_filters(sources: Sources, filters: dict[str, Any] | None) -> dict[str, Any]:
    """Return the filters pinned to what the user may see: an area out of scope (a forged or
    stale request, a shared link to another town) gives the user's own area instead."""
    found = scoped_area(sources, filters) or area(sources, {})
    return area_filters(found, filters)


def default_period(today: dt.date) -> Period:
    """Return the default period: this year so far."""
    return Period(dt.date(today.year, 1, 1), today)


def period(sources: Sources, filters: dict[str, Any] | None) -> Period:
    """Return the period of the filters, or this year so far; bad dates mean no update."""
    f = filters or {}
    today = local_day(sources.now())
    try:
        start = dt.date.fromisoformat(str(f["start"])[:10]) if f.get("start") else None
        end = dt.date.fromisoformat(str(f["end"])[:10]) if f.get("end") else None
        if start is None and end is None:
            return default_period(today)
        return Period(start or dt.date(today.year, 1, 1), end or today)
    except ValueError:
        raise PreventUpdate from None
