"""What every callback needs: the logged-in user and the area they asked for, checked."""

from __future__ import annotations

import datetime as dt
from typing import Any

from dash.exceptions import PreventUpdate

from dashboard.auth import CURRENT_USER, SessionUser, clamp_area
from datasources.kpi import AreaRef, UnknownArea
from datasources.periods import Period, local_day


def user() -> SessionUser:
    """Return the logged-in user of this request or socket; no user means no update."""
    current = CURRENT_USER.get()
    if current is None:
        raise PreventUpdate
    return current


def area(sources: Any, filters: dict[str, Any] | None) -> AreaRef:
    """Return the area the filters name, if the user may see it; otherwise no update.

    The filters come from the browser and may be forged: the user's own area is enforced here,
    on the server, whatever the dropdowns offered.
    """
    f = filters or {}
    try:
        return clamp_area(
            user(),
            sources.engine,
            town=f.get("town"),
            village=f.get("village"),
            grid=f.get("grid"),
            district_code=sources.district,
        )
    except (PermissionError, UnknownArea, LookupError):
        raise PreventUpdate from None


def default_period(today: dt.date) -> Period:
    """Return the default period: this year so far."""
    return Period(dt.date(today.year, 1, 1), today)


def period(sources: Any, filters: dict[str, Any] | None) -> Period:
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
