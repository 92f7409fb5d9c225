"""The open-ticket and per-village tables, and their CSV and Excel exports.

The tables are filled by ``callbacks.panels`` (one callback with the tiles and charts).
"""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

import pandas as pd
from dash import ALL, Dash, Input, Output, State, ctx, dcc
from dash.exceptions import PreventUpdate

from callbacks import common
from dashboard.sources import Sources
from datasources import panels
from datasources.audit import record
from datasources.figures import TABLE
from layouts import ids
from layouts.i18n import category_label, normal_lang, t

TICKET_COLUMNS = (
    ("id", "col_id"),
    ("created_at", "col_created"),
    ("village", "village"),
    ("grid", "grid"),
    ("category", "col_category"),
    ("status", "col_status"),
    ("title", "col_title"),
    ("age_hours", "col_age"),
    ("overdue", "col_overdue"),
)
VILLAGE_COLUMNS = (
    ("name", "col_name"),
    *((f.key, f.label) for f in TABLE),
    ("petition_batches", "petitions_district"),
    ("mediations", "mediations"),
    ("points_redeemed", "points_redeemed"),
    ("placements_doorstep", "doorstep"),
    ("placements_urban", "urban"),
    ("supervision_approved", "supervision_approved"),
)


# How old a table's "counted at" may be for an export to count the tickets' ages at that moment
# (a page left open longer exports the ages of now).
AS_OF_MAX_AGE = dt.timedelta(minutes=30)


def ticket_frame(
    sources: Sources, filters: dict[str, Any] | None, lang: str, now: dt.datetime | None = None
) -> pd.DataFrame:
    """Return the open tickets of the area with language-specific labels.

    Always queried afresh, also for a town chosen: their age and overdue flags are counted at
    ``now`` (the moment asked, or for an export the moment the table beside it was counted,
    so that both show the same rows and values).
    """
    area = common.area(sources, filters)
    df = panels.open_tickets(sources.engine, area, now or sources.now())
    if df.empty:
        return pd.DataFrame(columns=[c for c, _ in TICKET_COLUMNS])
    df = df.copy()
    en = lang == "en"
    if en:
        df["village"], df["grid"] = df["village_en"], df["grid_en"]
    df["category"] = df["category"].map(lambda c: category_label(c, lang))
    overdue = df["overdue_arrival"] | df["overdue_closure"]
    df["overdue"] = overdue.map({True: t("yes", lang), False: ""})
    df["age_hours"] = df["age_hours"].round(1)
    # Local time to the minute, as a person reads it ("2026-12-03 11:47"; the stored value is
    # ISO with +08:00): still sorts as text, and the exports show what the table shows.
    df["created_at"] = df["created_at"].astype(str).str.slice(0, 16).str.replace("T", " ")
    return df[[c for c, _ in TICKET_COLUMNS]]


def village_frame(
    sources: Sources,
    filters: dict[str, Any] | None,
    lang: str,
    children: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Return the figures per child area, rates as percentages.

    ``children`` is ``panels.children_figures`` for the filters when the caller has it already
    (the page's panels share it with the closure chart); it is not changed.
    """
    area = common.area(sources, filters)
    period = common.period(sources, filters)
    if children is None:
        children = panels.children_figures(sources.engine, area, period)
    df = children.copy()
    if lang == "en":
        df["name"] = df["name_en"]
    for figure in TABLE:
        if figure.is_rate:
            df[figure.key] = (df[figure.key] * 100).round(2)
    return df[[c for c, _ in VILLAGE_COLUMNS if c in df]]


def column_defs(columns: tuple[tuple[str, str], ...], lang: str) -> list[dict[str, Any]]:
    """Return AG Grid column definitions with translated headers."""
    return [{"field": c, "headerName": t(key, lang)} for c, key in columns]


FRAMES = {
    ids.TABLE_TICKETS: (ticket_frame, TICKET_COLUMNS),
    ids.TABLE_VILLAGES: (village_frame, VILLAGE_COLUMNS),
}


def register(app: Dash, sources: Sources) -> None:
    """Register the exports (the tables are filled by ``callbacks.panels``, with the charts)."""

    @app.callback(
        Output(ids.DOWNLOAD, "data"),
        Input({"type": ids.EXPORT_CSV, "table": ALL}, "n_clicks"),
        Input({"type": ids.EXPORT_XLSX, "table": ALL}, "n_clicks"),
        State(ids.FILTERS, "data"),
        State(ids.LANG, "data"),
        State(ids.as_of(ALL, ALL), "data"),
        prevent_initial_call=True,
    )
    @common.off_loop
    def export_table(_csv, _xlsx, filters, lang, _counted):
        trigger = ctx.triggered_id
        # New buttons appearing with a page also trigger this: only a real click exports.
        if not trigger or not ctx.triggered or not ctx.triggered[0].get("value"):
            raise PreventUpdate
        user = common.user()
        lang = normal_lang(lang)
        table_id = trigger["table"]
        frame, columns = FRAMES[table_id]
        if table_id == ids.TABLE_TICKETS:
            shown = counted_at(ctx.states_list[-1], table_id, sources.now())
            df = ticket_frame(sources, filters, lang, now=shown)
        else:
            df = frame(sources, filters, lang)
        df = df.rename(columns={c: t(key, lang) for c, key in columns})
        area = common.area(sources, filters)
        kind = "csv" if trigger["type"] == ids.EXPORT_CSV else "xlsx"
        record(
            sources.engine,
            action="export",
            username=user.username,
            address=common.address(),
            area_code=area.code,
            detail={"table": table_id, "format": kind, "rows": len(df), "filters": filters or {}},
        )
        name = f"wushi-{table_id}-{area.code}"
        if kind == "csv":
            # UTF-8 with BOM so Excel opens the Chinese headers correctly.
            return dcc.send_string(
                "\ufeff" + df.to_csv(index=False), f"{name}.csv", type="text/csv"
            )
        buffer = io.BytesIO()
        df.to_excel(buffer, index=False, sheet_name=table_id[:31])
        return dcc.send_bytes(buffer.getvalue(), f"{name}.xlsx")


def counted_at(states: Any, table_id: str, now: dt.datetime) -> dt.datetime | None:
    """Return when the page's table was counted, from the as-of stores' states, if recent.

    The states come from the browser: anything but a time of the last ``AS_OF_MAX_AGE`` (not
    in the future) is ignored, and the rows are the user's own area's either way.
    """
    for state in states if isinstance(states, list) else []:
        ident = state.get("id") if isinstance(state, dict) else None
        if not isinstance(ident, dict) or ident.get("as_of") != table_id:
            continue
        try:
            when = dt.datetime.fromisoformat(str(state.get("value")))
        except ValueError:
            continue
        if when.tzinfo is not None and now - AS_OF_MAX_AGE <= when <= now:
            return when
    return None
