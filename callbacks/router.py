"""Render the page for the path: the overview, a topic page, or the wall."""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import parse_qs, urlencode

from dash import Dash, Input, Output, State, html

from callbacks import common
from callbacks.wall import ROTATE_S, WALL_METRICS
from dashboard.maps import map_version
from dashboard.sources import Sources
from datasources import panels
from datasources.figures import MAP_METRICS
from datasources.kpi import AreaRef
from datasources.periods import local_day
from geo.codes import code_level
from layouts import ids
from layouts.i18n import normal_lang, t
from layouts.pages import PAGES, PageContext, page, wall

WALL_METRIC = "calls"
DEFAULT_METRIC = "closure_rate"


def parse_search(search: str | None) -> dict[str, str]:
    """Return the first value of each query-string parameter."""
    return {k: v[0] for k, v in parse_qs((search or "").lstrip("?")).items() if v}


def filters_search(filters: dict[str, Any], lang: str, metric: str | None = None) -> str:
    """Return the query string that shares a view (docs/contract.md, section 4)."""
    keys = {"town": "town", "village": "village", "grid": "grid", "start": "from", "end": "to"}
    params = {q: filters[k] for k, q in keys.items() if filters.get(k)}
    if metric and metric != DEFAULT_METRIC:
        params["metric"] = metric
    if lang == "en":
        params["lang"] = "en"
    return "?" + urlencode(params) if params else ""


def _label(row: dict[str, Any], lang: str) -> str:
    return str(row.get("name_en") if lang == "en" else row.get("name"))


def dropdown_options(
    sources: Sources, scope: AreaRef, filters: dict[str, Any], lang: str
) -> dict[str, list[dict[str, str]]]:
    """Return the towns, villages and grids the user may choose, narrowed by the selection."""
    # Areas change only with `wushi geo import`: kept five minutes, like the area checks.
    opts = sources.cached(
        ("options", scope.code), lambda: panels.area_options(sources.engine, scope), long=True
    )
    town, village = filters.get("town"), filters.get("village")
    return {
        "towns": [{"label": _label(r, lang), "value": r["code"]} for r in opts["towns"]],
        "villages": [
            {"label": _label(r, lang), "value": r["code"]}
            for r in opts["villages"]
            if town is None or r["town_code"] == town
        ],
        "grids": [
            {"label": _label(r, lang), "value": r["code"]}
            for r in opts["grids"]
            if village is not None and r["village_code"] == village
        ],
    }


def metric_options(lang: str) -> list[dict[str, str]]:
    """Return the map metrics (``datasources.figures.MAP_METRICS``) with their labels and units."""
    out = []
    for key, info in MAP_METRICS.items():
        label, unit = t(info.picker_label, lang), t(info.unit, lang)
        out.append({"label": f"{label}（{unit}）" if unit else label, "value": key})
    return out


def initial_filters(sources: Sources, query: dict[str, str]) -> dict[str, Any]:
    """Return the filters of a shared link, narrowed to what the user may see."""
    wanted = {
        "town": query.get("town") or None,
        "village": query.get("village") or None,
        "grid": query.get("grid") or None,
        "start": query.get("from") or None,
        "end": query.get("to") or None,
    }
    # A link to an area the user may not see (or that does not exist) falls back to their own
    # area; a database outage raises, as in every other callback (the page marks itself stale).
    wanted = common.pinned_filters(sources, wanted)
    today = local_day(sources.now())
    wanted["start"] = wanted["start"] or dt.date(today.year, 1, 1).isoformat()
    wanted["end"] = wanted["end"] or today.isoformat()
    return wanted


def _rotation(sources: Sources, scope: AreaRef) -> dict[str, Any]:
    """Return what the wall rotates through: its metrics and the towns in the user's scope."""
    towns = sorted(c for c in sources.names().zh if code_level(c, sources.district) == "town")
    if scope.level != "district":
        towns = [c for c in towns if c == scope.town_code]
    return {"metrics": list(WALL_METRICS), "towns": towns, "every_s": ROTATE_S}  # seconds a slot


def build_page(sources: Sources, pathname: str, search: str, lang: str) -> Any:
    """Return the component tree of ``pathname`` for the logged-in user."""
    user = common.user()
    query = parse_search(search)
    filters = initial_filters(sources, query)
    scope = common.area(sources, {})
    # A wall screen's kiosk token only ever gets the wall, whatever path the browser names.
    is_wall = pathname.rstrip("/") == "/wall" or user.kiosk
    metric = WALL_METRIC if is_wall else query.get("metric", DEFAULT_METRIC)
    if metric not in MAP_METRICS:
        metric = DEFAULT_METRIC
    bounds = sources.area_bounds(scope)
    ctx = PageContext(
        lang=lang,
        path=pathname if pathname in PAGES else "/",
        username=user.display_name or user.username,
        filters=filters,
        options=dropdown_options(sources, scope, filters, lang),
        metrics=metric_options(lang),
        metric=metric,
        map_version=map_version(sources, scope.code),
        map_bounds=bounds,
        hideout={"values": {}, "lang": lang},
        tile_url=sources.settings.tile_url,
        can_choose_town=user.role == "district",
        can_choose_village=user.role in ("district", "town"),
        extra={"rotation": _rotation(sources, scope)} if is_wall else {},
        district_admin=user.role == "district" and not user.kiosk,
    )
    if is_wall:
        return wall(ctx)
    return page(ctx, filters_search(filters, lang, metric))


def register(app: Dash, sources: Sources) -> None:
    """Register the page router."""

    @app.callback(
        Output(ids.PAGE, "children"),
        Input(ids.URL, "pathname"),
        Input(ids.LANG, "data"),
        State(ids.URL, "search"),
    )
    @common.off_loop
    def render_page(pathname: str | None, lang: str | None, search: str | None) -> Any:
        query = parse_search(search)
        lang = normal_lang(query.get("lang") or lang)
        if pathname is None:
            return html.Div()
        return build_page(sources, pathname, search or "", lang)
