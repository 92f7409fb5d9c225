"""Who is asking and what they may see: the session user, the request's context, the pinning.

The web layer (``dashboard/middleware.py``) puts the logged-in ``SessionUser`` and the client's
address into ``CURRENT_USER`` and ``CURRENT_ADDRESS`` for each request or socket; callbacks,
routes and exports read them from here, below the web layer, so they need not import it.

``clamp_area`` is the one place that pins a request to the user's area: every server path
(callbacks through ``callbacks/common.py::area``, the map's GeoJSON routes, exports, the live
socket, a shared link's filters) resolves what the browser asked for with it. The filters come
from the browser and may be forged; what the dropdowns offered does not matter here.
``area_filters`` turns the area it returns back into consistent filters (a village secretary's
town and village, a town official's town), which the page's stores then carry.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine

from datasources.kpi import AreaRef, UnknownArea, resolve_area
from datasources.scope import OutOfScope, Scope, own_filter, require
from datasources.scope import allowed as scope_allows

__all__ = [
    "AREA_KEYS",
    "CURRENT_ADDRESS",
    "CURRENT_USER",
    "OutOfScope",
    "SessionUser",
    "allowed",
    "area_filters",
    "clamp_area",
    "user_area",
    "user_scope",
]

AREA_KEYS = ("town", "village", "grid")


@dataclass(frozen=True)
class SessionUser:
    """The logged-in user of the current request or socket."""

    username: str
    display_name: str
    role: str  # district | town | village
    area_code: str | None  # None for district
    area_level: str  # the level of area_code: district | town | village
    session_id: str
    # A wall screen's kiosk token, not a person: /wall only, read-only (dashboard/kiosk_guard.py).
    kiosk: bool = False


CURRENT_USER: ContextVar[SessionUser | None] = ContextVar("wushi_current_user", default=None)
# The client's address of the current request or socket (X-Forwarded-For from trusted proxies
# only), for the audit entries callbacks write (an export).
CURRENT_ADDRESS: ContextVar[str | None] = ContextVar("wushi_current_address", default=None)


def user_scope(user: SessionUser) -> Scope:
    """Return what ``user`` may see."""
    return Scope(user.role, user.area_code if user.role != "district" else None)


def user_area(user: SessionUser, engine: Engine, *, district_code: str = "341504") -> AreaRef:
    """Return the user's own area (the district, their town or their village)."""
    return clamp_area(user, engine, district_code=district_code)


def allowed(user: SessionUser | None, area: AreaRef) -> bool:
    """Return whether ``user`` may see ``area`` (never for no user)."""
    return user is not None and scope_allows(user_scope(user), area)


def clamp_area(
    user: SessionUser | None,
    engine: Engine,
    town: str | None = None,
    village: str | None = None,
    grid: str | None = None,
    *,
    district_code: str = "341504",
) -> AreaRef:
    """Return the area the filters name, pinned to what ``user`` may see.

    Naming nothing means the user's own area (the district, their town or their village).
    An area outside the user's scope, an unknown code or codes that do not nest raise
    ``OutOfScope``: unknown and forbidden look alike, so probing does not reveal which codes
    exist. Database errors pass through (the caller's outage handling applies).
    """
    if user is None:
        raise OutOfScope("no user")
    scope = user_scope(user)
    wanted = {
        key: value if isinstance(value, str) and value else None
        for key, value in zip(AREA_KEYS, (town, village, grid), strict=True)
    }
    if not any(wanted.values()):
        wanted = {key: None for key in AREA_KEYS} | dict(own_filter(scope))
    try:
        area = resolve_area(engine, **wanted, district_code=district_code)
    except UnknownArea as exc:
        raise OutOfScope(str(exc)) from None
    require(scope, area)
    return area


def area_filters(area: AreaRef, filters: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Return ``filters`` with town, village and grid set to exactly ``area`` and its parents.

    The area comes from ``clamp_area``, so the result names only what the user may see, with
    the parents of the chosen village or grid filled in; other keys (the dates) are kept.
    """
    out = dict(filters or {})
    out["town"] = area.town_code if area.level != "district" else None
    out["village"] = area.village_code if area.level in ("village", "grid") else None
    out["grid"] = area.code if area.level == "grid" else None
    return out
