"""The pages: the overview at ``/``, the topic pages, and the wall at ``/wall``.

Every function here is pure: it takes plain values (language, options, the map's first
``hideout``) and returns components. Callbacks fill the tiles, charts, tables and the live feed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html import escape
from typing import Any

import dash_ag_grid as dag
from dash import dcc, html
from dash.development.base_component import Component

from geo.codes import LEVEL_DIGITS
from layouts import ids
from layouts.components import feed_html, graph, html_block, panel, stale_badge
from layouts.i18n import AUDIT_GROUPS, t
from layouts.map import grid_map, grid_style

# Path, i18n key of the title, and the panels the page shows (in order).
# The overview keeps the six charts a leader reads first (a town switch redraws every chart on
# the page, and drawing them is most of its time); the topic pages hold the rest.
PAGES: dict[str, tuple[str, tuple[str, ...]]] = {
    "/": (
        "nav_overview",
        (
            ids.CHART_CLOSURE,
            ids.CHART_REQUESTS,
            ids.CHART_PETITIONS,
            ids.CHART_POINTS,
            ids.CHART_EMPLOYMENT,
            ids.CHART_LEVELS,
            ids.TABLE_TICKETS,
            ids.TABLE_VILLAGES,
        ),
    ),
    "/tickets": (
        "nav_tickets",
        (
            ids.CHART_REQUESTS,
            ids.CHART_CLOSURE,
            ids.CHART_RESPONSE,
            ids.CHART_LEVELS,
            ids.TABLE_TICKETS,
        ),
    ),
    "/petitions": ("nav_petitions", (ids.CHART_PETITIONS, ids.TABLE_VILLAGES)),
    "/points": ("nav_points", (ids.CHART_POINTS, ids.CHART_POINTS_VILLAGE, ids.TABLE_VILLAGES)),
    "/employment": (
        "nav_employment",
        (ids.CHART_EMPLOYMENT, ids.CHART_EMPLOYMENT_TOWN, ids.TABLE_VILLAGES),
    ),
    "/supervision": ("nav_supervision", (ids.CHART_SUPERVISION, ids.TABLE_VILLAGES)),
    "/devices": ("nav_devices", (ids.CHART_DEVICES, ids.TABLE_VILLAGES)),
    # District admins only (the nav shows it to them; the server refuses everyone else).
    "/audit": ("nav_audit", ()),
}
AUDIT_PATH = "/audit"

CHART_TITLES = {
    ids.CHART_CLOSURE: "chart_closure",
    ids.CHART_REQUESTS: "chart_requests",
    ids.CHART_PETITIONS: "chart_petitions",
    ids.CHART_POINTS: "chart_points",
    ids.CHART_POINTS_VILLAGE: "chart_points_village",
    ids.CHART_EMPLOYMENT: "chart_employment",
    ids.CHART_EMPLOYMENT_TOWN: "chart_employment_town",
    ids.CHART_RESPONSE: "chart_response",
    ids.CHART_LEVELS: "chart_levels",
    ids.CHART_SUPERVISION: "chart_supervision",
    ids.CHART_DEVICES: "chart_devices",
}


@dataclass(frozen=True)
class PageContext:
    """Plain values a page is built from."""

    lang: str
    path: str
    username: str
    filters: dict[str, Any]
    options: dict[str, list[dict[str, str]]]
    metrics: list[dict[str, str]]
    metric: str
    map_version: str
    map_bounds: list[list[float]] | None
    hideout: dict[str, Any]
    tile_url: str = ""
    can_choose_town: bool = True
    can_choose_village: bool = True
    extra: dict[str, Any] = field(default_factory=dict)
    # A district admin (a person, not a wall's kiosk token): may see the audit log.
    district_admin: bool = False


def _status(lang: str) -> html.Span:
    return html.Span(
        t("connecting", lang),
        id=ids.WS_STATUS,
        className="status",
        # Dash's component signatures omit the data-* props the components take.
        **{  # type: ignore[arg-type]
            "data-state": "connecting",
            "data-label-connected": t("live", lang),
            "data-label-reconnecting": t("reconnecting", lang),
            "data-label-connecting": t("connecting", lang),
            "data-label-disconnected": t("disconnected", lang),
        },
    )


def _topbar(ctx: PageContext) -> html.Div:
    lang = ctx.lang
    return html.Div(
        [
            html.H1(t("app_title", lang)),
            _status(lang),
            html.Span(id=ids.DATA_AS_OF, className="asof"),
            stale_badge(lang),
            html.Span(ctx.username),
            html.Button(t("language", lang), id=ids.LANG_SWITCH, className="btn", n_clicks=0),
            html.A(t("logout", lang), href="/logout", className="btn"),
        ],
        className="topbar",
    )


def _nav(ctx: PageContext, search: str) -> html.Div:
    links: list[Component] = [
        dcc.Link(
            t(key, ctx.lang),
            href=path + search,
            className="active" if path == ctx.path else "",
        )
        for path, (key, _panels) in PAGES.items()
        if path != AUDIT_PATH or ctx.district_admin
    ]
    links.append(html.A(t("nav_wall", ctx.lang), href="/wall", target="_blank"))
    return html.Div(links, className="nav", id=ids.NAV)


def _filters(ctx: PageContext) -> html.Div:
    lang, f = ctx.lang, ctx.filters

    def field_(label: str, control: Any) -> html.Div:
        return html.Div([html.Label(label), control], className="field")

    return html.Div(
        [
            field_(
                t("town", lang),
                dcc.Dropdown(
                    id=ids.TOWN,
                    options=ctx.options["towns"],
                    value=f.get("town"),
                    placeholder=t("all_towns", lang),
                    clearable=ctx.can_choose_town,
                    disabled=not ctx.can_choose_town,
                    searchable=False,
                ),
            ),
            field_(
                t("village", lang),
                dcc.Dropdown(
                    id=ids.VILLAGE,
                    options=ctx.options["villages"],
                    value=f.get("village"),
                    placeholder=t("all_villages", lang),
                    clearable=ctx.can_choose_village,
                    disabled=not ctx.can_choose_village,
                ),
            ),
            field_(
                t("grid", lang),
                dcc.Dropdown(
                    id=ids.GRID,
                    options=ctx.options["grids"],
                    value=f.get("grid"),
                    placeholder=t("all_grids", lang),
                ),
            ),
            field_(
                t("period", lang),
                dcc.DatePickerRange(
                    id=ids.PERIOD,
                    start_date=f.get("start"),
                    end_date=f.get("end"),
                    display_format="YYYY-MM-DD",
                    minimum_nights=0,
                ),
            ),
            field_(
                t("metric", lang),
                dcc.Dropdown(
                    id=ids.METRIC,
                    options=ctx.metrics,
                    value=ctx.metric,
                    clearable=False,
                    searchable=False,
                ),
            ),
            html.Button(t("up", lang), id=ids.UP, className="btn", n_clicks=0),
            # What the clientside filters pin (dashboard/assets/wushi_filters.js): the codes
            # the server pinned this user to, and the code scheme's lengths. The server checks
            # the area again in every callback, so this is convenience, not security.
            dcc.Store(
                id=ids.FILTER_SCOPE,
                data={
                    "town": None if ctx.can_choose_town else f.get("town"),
                    "village": None if ctx.can_choose_village else f.get("village"),
                    "digits": {
                        "town": LEVEL_DIGITS["town"],
                        "village": LEVEL_DIGITS["village"],
                    },
                },
            ),
        ],
        className="filters",
    )


def _live_column(lang: str, class_name: str) -> html.Div:
    """Return today's tiles, the alerts and the live feed (filled over the WebSocket)."""
    return html.Div(
        [
            # What the live callback reads back in one round trip (callbacks/live.py); here,
            # not in the root layout, because its inputs exist only on pages with a map.
            dcc.Store(id=ids.LIVE_SELECTION),
            panel(t("today", lang), html_block(ids.TODAY, ids.TODAY_HTML, "tiles")),
            panel(
                t("alerts", lang),
                html_block(ids.ALERTS, ids.ALERTS_HTML, "alerts", escape(t("no_alerts", lang))),
                extra_class="alerts-panel",
            ),
            panel(
                t("live_feed", lang),
                html_block(
                    ids.LIVE_FEED, ids.FEED_HTML, "feed-box", feed_html([], t("no_events", lang))
                ),
                extra_class="feed-panel",
            ),
        ],
        className=class_name,
    )


def _table(table_id: str, lang: str) -> html.Div:
    title = t("table_tickets" if table_id == ids.TABLE_TICKETS else "table_villages", lang)
    return panel(
        title,
        html.Div(
            [
                html.Div(
                    [
                        html.Button(
                            t("export_csv", lang),
                            id={"type": ids.EXPORT_CSV, "table": table_id},
                            className="btn",
                        ),
                        html.Button(
                            t("export_xlsx", lang),
                            id={"type": ids.EXPORT_XLSX, "table": table_id},
                            className="btn",
                        ),
                    ],
                    style={"display": "flex", "gap": "8px", "marginBottom": "8px"},
                ),
                # When the rows were counted: an export counts the tickets' ages at that moment.
                dcc.Store(id=ids.as_of(table_id)),
                dag.AgGrid(
                    id=ids.table(table_id),
                    columnDefs=[],
                    rowData=[],
                    defaultColDef={"sortable": True, "filter": True, "resizable": True},
                    dashGridOptions={"pagination": True, "paginationPageSize": 20},
                    style={"height": "460px"},
                    className="ag-theme-alpine",
                ),
            ]
        ),
    )


def page(ctx: PageContext, search: str = "") -> html.Div:
    """Return the overview or a topic page for a tablet or desktop."""
    if ctx.path == AUDIT_PATH:
        return audit_page(ctx, search)
    key, parts = PAGES.get(ctx.path, PAGES["/"])
    panels = []
    for part in parts:
        if part in (ids.TABLE_TICKETS, ids.TABLE_VILLAGES):
            continue
        panels.append(panel(t(CHART_TITLES[part], ctx.lang), graph(part)))
    tables = [
        _table(part, ctx.lang) for part in parts if part in (ids.TABLE_TICKETS, ids.TABLE_VILLAGES)
    ]
    main = html.Div(
        [
            html.H2(id=ids.AREA_TITLE),
            html_block(ids.TILES, ids.TILES_HTML, "tiles"),
            html.Div(
                [
                    grid_map(
                        version=ctx.map_version,
                        hideout=ctx.hideout,
                        bounds=ctx.map_bounds,
                        tile_url=ctx.tile_url,
                    ),
                    grid_style(ctx.hideout),
                    html_block(ids.LEGEND, ids.LEGEND_HTML, "legend"),
                ],
                className="panel map-wrap",
            ),
            html.Div(panels, className="panels"),
            *tables,
        ],
        className="main",
    )
    return html.Div(
        [
            _topbar(ctx),
            _nav(ctx, search),
            _filters(ctx),
            html.Div([main, _live_column(ctx.lang, "side")], className="content"),
            html.Div(t("data_note", ctx.lang), className="note"),
            dcc.Download(id=ids.DOWNLOAD),
        ],
        className="shell",
        # Dash's component signatures omit the data-* props the components take.
        **{"data-page": key},  # type: ignore[arg-type]
    )


def wall(ctx: PageContext) -> html.Div:
    """Return the wall screen: a dark, control-free 1920x1080 canvas."""
    lang = ctx.lang
    return html.Div(
        html.Div(
            [
                html.Div(
                    [
                        html.H1(t("app_title", lang)),
                        html.Div(
                            [
                                html.Span(id=ids.AREA_TITLE, style={"display": "none"}),
                                _status(lang),
                                html.Span(id=ids.CLOCK, className="clock"),
                                html.Span(id=ids.DATA_AS_OF, className="asof"),
                                stale_badge(lang),
                            ]
                        ),
                    ],
                    className="head",
                ),
                html.Div(
                    [
                        html_block(ids.TILES, ids.TILES_HTML, "tiles"),
                        panel(t("chart_petitions", lang), graph(ids.CHART_PETITIONS, 330)),
                    ],
                    className="col",
                ),
                html.Div(
                    [
                        grid_map(
                            version=ctx.map_version,
                            hideout=ctx.hideout,
                            bounds=ctx.map_bounds,
                            tile_url=ctx.tile_url,
                            dark=True,
                            size=(930, 820),
                        ),
                        grid_style(ctx.hideout),
                        html_block(ids.LEGEND, ids.LEGEND_HTML, "legend"),
                    ],
                    className="col",
                ),
                _live_column(lang, "col"),
                dcc.Interval(id=ids.WALL_TICK, interval=1000),
                dcc.Store(id=ids.WALL_ROTATION, data=ctx.extra.get("rotation")),
                # The wall has no controls: the rotation drives this hidden metric picker.
                dcc.Dropdown(
                    id=ids.METRIC, options=ctx.metrics, value=ctx.metric, style={"display": "none"}
                ),
            ],
            className="wall",
        ),
        className="wall-viewport",
    )


def _audit_filters(lang: str) -> html.Div:
    def field_(label: str, control: Any) -> html.Div:
        return html.Div([html.Label(label), control], className="field")

    return html.Div(
        [
            field_(
                t("audit_user", lang),
                dcc.Dropdown(id=ids.AUDIT_USER, options=[], placeholder=t("audit_all_users", lang)),
            ),
            field_(
                t("audit_action", lang),
                dcc.Dropdown(
                    id=ids.AUDIT_ACTION,
                    options=[
                        {"label": (en if lang == "en" else zh), "value": group}
                        for group, (zh, en) in AUDIT_GROUPS.items()
                    ],
                    placeholder=t("audit_all_actions", lang),
                    searchable=False,
                ),
            ),
            field_(
                t("period", lang),
                dcc.DatePickerRange(
                    id=ids.AUDIT_PERIOD, display_format="YYYY-MM-DD", minimum_nights=0
                ),
            ),
            html.Button(
                t("audit_refresh", lang), id=ids.AUDIT_REFRESH, className="btn", n_clicks=0
            ),
        ],
        className="filters",
    )


def audit_page(ctx: PageContext, search: str = "") -> html.Div:
    """Return the audit log page: filters and a large table (filled by ``callbacks/audit.py``)."""
    lang = ctx.lang
    if not ctx.district_admin:
        body: Any = html.Div(t("audit_forbidden", lang), className="panel forbidden", role="alert")
    else:
        body = html.Div(
            [
                html.H2(t("audit_title", lang)),
                _audit_filters(lang),
                html.Div(id=ids.AUDIT_COUNT, className="audit-count"),
                dag.AgGrid(
                    id=ids.AUDIT_TABLE,
                    columnDefs=[],
                    rowData=[],
                    defaultColDef={
                        "sortable": True,
                        "filter": True,
                        "resizable": True,
                        "wrapText": True,
                        "autoHeight": True,
                    },
                    dashGridOptions={
                        "pagination": True,
                        "paginationPageSize": 50,
                        "headerHeight": 48,
                        "rowHeight": 44,
                    },
                    style={"height": "70vh", "fontSize": "17px"},
                    className="ag-theme-alpine audit-grid",
                ),
            ],
            className="panel audit",
        )
    return html.Div(
        [_topbar(ctx), _nav(ctx, search), html.Div(body, className="main audit-main")],
        className="shell",
        # Dash's component signatures omit the data-* props the components take.
        **{"data-page": "nav_audit"},  # type: ignore[arg-type]
    )
