"""The audit page: the audit log for district admins, filtered by user, action and days.

Only a district admin (a person: not a town or village login, not a wall's kiosk token) gets
anything: for everyone else the callback answers "no update" (HTTP 204), whatever the request
says. The middleware also refuses ``/audit`` itself to them (``dashboard.middleware``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from typing import Any

from dash import Dash, Input, Output
from dash.exceptions import PreventUpdate

from callbacks import common
from dashboard.sources import Sources
from datasources import audit
from datasources.identity import SessionUser
from datasources.periods import SHANGHAI
from layouts import ids
from layouts.i18n import AUDIT_GROUPS, action_label, normal_lang, t

SHOWN = 1000  # the newest entries the page shows
COLUMNS = (
    ("time", "col_time", 190),
    ("user", "col_user", 190),
    ("action", "col_action", 170),
    ("address", "col_address", 160),
    ("area", "col_area", 220),
    ("detail", "col_detail", 420),
)


def is_district_admin(user: SessionUser | None) -> bool:
    """Return whether ``user`` may see the audit log: a district login of a person."""
    return user is not None and user.role == "district" and not getattr(user, "kiosk", False)


def _day(value: Any) -> dt.date | None:
    try:
        return dt.date.fromisoformat(str(value)[:10]) if value else None
    except ValueError:
        raise PreventUpdate from None


def _bounds(start: Any, end: Any) -> tuple[dt.datetime | None, dt.datetime | None]:
    """Return the UTC range of the chosen Beijing-time days (``end`` inclusive)."""
    first, last = _day(start), _day(end)
    since = dt.datetime.combine(first, dt.time(), SHANGHAI) if first else None
    before = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), SHANGHAI) if last else None
    return since, before


def rows(
    sources: Sources, username: str | None, action: str | None, start: Any, end: Any, lang: str
) -> list[dict[str, Any]]:
    """Return the table rows: newest first, labelled in ``lang``."""
    if action is not None and action not in AUDIT_GROUPS:
        raise PreventUpdate
    since, before = _bounds(start, end)
    names = sources.names().of(lang)
    found = audit.entries(
        sources.engine,
        limit=SHOWN,
        username=username or None,
        action=action or None,
        since=since,
        before=before,
    )
    return [
        {
            "time": e.ts.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S"),
            "user": e.username or "-",
            "action": action_label(e.action, lang),
            "address": e.address or "-",
            "area": f"{names.get(e.area_code, '')} {e.area_code}".strip() if e.area_code else "-",
            "detail": json.dumps(e.detail, ensure_ascii=False) if e.detail else "",
        }
        for e in found
    ]


def column_defs(lang: str) -> list[dict[str, Any]]:
    """Return the table's columns with headers in ``lang``."""
    return [
        {"field": field, "headerName": t(key, lang), "minWidth": width, "flex": 1}
        for field, key, width in COLUMNS
    ]


def register(app: Dash, sources: Sources) -> None:
    """Register the audit table's callback."""

    @app.callback(
        Output(ids.AUDIT_TABLE, "rowData"),
        Output(ids.AUDIT_TABLE, "columnDefs"),
        Output(ids.AUDIT_COUNT, "children"),
        Output(ids.AUDIT_USER, "options"),
        Input(ids.AUDIT_USER, "value"),
        Input(ids.AUDIT_ACTION, "value"),
        Input(ids.AUDIT_PERIOD, "start_date"),
        Input(ids.AUDIT_PERIOD, "end_date"),
        Input(ids.AUDIT_REFRESH, "n_clicks"),
        Input(ids.LANG, "data"),
    )
    async def update_audit(username, action, start, end, _refresh, lang):
        if not is_district_admin(common.user()):
            raise PreventUpdate
        lang = normal_lang(lang)

        def load() -> tuple[list[dict[str, Any]], list[str]]:
            return (
                rows(sources, username, action, start, end, lang),
                audit.usernames(sources.engine),
            )

        found, people = await asyncio.to_thread(load)
        count = t("audit_count", lang).format(n=f"{len(found):,}")
        return found, column_defs(lang), count, [{"label": u, "value": u} for u in people]
