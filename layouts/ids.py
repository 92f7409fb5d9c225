"""Every component id, in one place, shared by layouts and callbacks.

``LIVE_FEED`` and ``GRID_MAP`` are public DOM ids (docs/contract.md, section 4). Charts and tables
appear on some pages only, so their ids are patterns (``chart``/``table`` plus a slot number):
a callback writing ``ALL`` slots of a chart simply has nothing to do on a page without it,
where a plain id would be a "nonexistent object" error.
"""

from typing import Any

from dash.dependencies import Wildcard

URL = "url"
PAGE = "page-content"
LANG = "lang-store"
LANG_SWITCH = "lang-switch"
WS_STATUS = "ws-status"
CLOCK = "clock"
DATA_AS_OF = "data-as-of"
FRESHNESS = "freshness"
DB_STALE = "db-stale"

FILTERS = "filters-store"
TOWN = "filter-town"
VILLAGE = "filter-village"
GRID = "filter-grid"
PERIOD = "filter-period"
PERIOD_PRESET = "filter-period-preset"
METRIC = "filter-metric"
UP = "filter-up"
# The area a town official or village secretary is pinned to (the filters never leave it).
FILTER_SCOPE = "filter-scope"
AREA_TITLE = "area-title"

GRID_MAP = "grid-map"
GRID_LAYER = "grid-layer"
# The grid layer's style (its "hideout"), applied in place by wushi_map.js: see layouts/map.py.
GRID_STYLE = "grid-style"
VILLAGE_LAYER = "village-layer"
TOWN_LAYER = "town-layer"
LEGEND = "map-legend"
LEGEND_HTML = "map-legend-html"

# Blocks of many small parts (tiles, feed entries, alerts, the legend) are one component each:
# the element with the DOM id holds a ``Purify`` (``*_HTML``) whose ``html`` the callbacks and
# the live socket write (layouts/components.py says why).
TILES = "kpi-tiles"
TILES_HTML = "kpi-tiles-html"
TODAY = "today-tiles"
TODAY_HTML = "today-tiles-html"
LIVE_FEED = "live-feed"
FEED_HTML = "live-feed-html"
ALERTS = "alerts"
ALERTS_HTML = "alerts-html"
LAST_ID = "live-last-id"
LIVE_VERSION = "live-version"
LIVE_SELECTION = "live-selection"
NAV = "nav"

CHART_CLOSURE = "chart-closure"
CHART_PETITIONS = "chart-petitions"
CHART_POINTS = "chart-points"
CHART_POINTS_VILLAGE = "chart-points-village"
CHART_EMPLOYMENT = "chart-employment"
CHART_EMPLOYMENT_TOWN = "chart-employment-town"
CHART_RESPONSE = "chart-response"
CHART_LEVELS = "chart-levels"
CHART_SUPERVISION = "chart-supervision"
CHART_DEVICES = "chart-devices"
CHART_REQUESTS = "chart-requests"

TABLE_TICKETS = "table-tickets"
TABLE_VILLAGES = "table-villages"
EXPORT_CSV = "export-csv"
EXPORT_XLSX = "export-xlsx"
DOWNLOAD = "download"
WALL_TICK = "wall-tick"
WALL_FOCUS = "wall-focus"
WALL_ROTATION = "wall-rotation"

# The audit page (district admins only).
AUDIT_TABLE = "audit-table"
AUDIT_USER = "audit-user"
AUDIT_ACTION = "audit-action"
AUDIT_PERIOD = "audit-period"
AUDIT_REFRESH = "audit-refresh"
AUDIT_COUNT = "audit-count"


def chart(name: str, slot: int | Wildcard = 0) -> dict[str, Any]:
    """Return the id of a chart slot."""
    return {"chart": name, "n": slot}


def table(name: str | Wildcard, slot: int | Wildcard = 0) -> dict[str, Any]:
    """Return the id of a table slot."""
    return {"table": name, "n": slot}


def as_of(name: str | Wildcard, slot: int | Wildcard = 0) -> dict[str, Any]:
    """Return the id of the store holding when a table slot's rows were counted."""
    return {"as_of": name, "n": slot}
