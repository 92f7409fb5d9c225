"""Keep the filters, the map's drill-down and the shareable URL in step."""

from __future__ import annotations

from typing import Any

from dash import Input, Output, State, ctx, no_update
from dash.exceptions import PreventUpdate

from callbacks import common
from callbacks.router import dropdown_options, filters_search, parse_search
from layouts import ids
from layouts.i18n import normal_lang


def drill_down(filters: dict[str, Any], code: str | None) -> dict[str, Any]:
    """Return the filters after a click on grid ``code``: one level further down."""
    if not code:
        return filters
    out = dict(filters)
    if not out.get("town"):
        out["town"] = code[:9]
    elif not out.get("village"):
        out["village"] = code[:12]
    else:
        out["village"] = code[:12]
        out["town"] = code[:9]
        out["grid"] = code
    return out


def up_one_level(filters: dict[str, Any]) -> dict[str, Any]:
    """Return the filters one level up (grid -> village -> town -> district)."""
    out = dict(filters)
    for key in ("grid", "village", "town"):
        if out.get(key):
            out[key] = None
            break
    return out


def register(app: Any, sources: Any) -> None:
    """Register the filter synchronisation."""

    @app.callback(
        Output(ids.FILTERS, "data"),
        Output(ids.TOWN, "value"),
        Output(ids.VILLAGE, "value"),
        Output(ids.GRID, "value"),
        Output(ids.VILLAGE, "options"),
        Output(ids.GRID, "options"),
        Output(ids.URL, "search"),
        Input(ids.TOWN, "value"),
        Input(ids.VILLAGE, "value"),
        Input(ids.GRID, "value"),
        Input(ids.PERIOD, "start_date"),
        Input(ids.PERIOD, "end_date"),
        Input(ids.UP, "n_clicks"),
        State(ids.METRIC, "value"),
        State(ids.LANG, "data"),
        State(ids.URL, "search"),
    )
    def update_filters(
        town: str | None,
        village: str | None,
        grid: str | None,
        start: str | None,
        end: str | None,
        _up: int | None,
        metric: str | None,
        lang: str | None,
        search: str | None,
    ) -> tuple[Any, ...]:
        user = common.user()
        lang = normal_lang(parse_search(search).get("lang") or lang)
        trigger = ctx.triggered_id
        filters: dict[str, Any] = {
            "town": town,
            "village": village,
            "grid": grid,
            "start": (start or "")[:10] or None,
            "end": (end or "")[:10] or None,
        }
        if trigger == ids.TOWN:
            filters.update(village=None, grid=None)
        elif trigger == ids.VILLAGE:
            filters.update(grid=None)
            if village:
                filters["town"] = village[:9]
        elif trigger == ids.GRID and grid:
            filters.update(village=grid[:12], town=grid[:9])
        elif trigger == ids.UP:
            filters = up_one_level(filters)
        filters = _within_scope(sources, user, filters)
        scope = common.area(sources, {})
        options = dropdown_options(sources, scope, filters, lang)
        new_search = filters_search(filters, lang, metric)
        return (
            filters,
            filters["town"],
            filters["village"],
            filters["grid"],
            options["villages"],
            options["grids"],
            new_search if new_search != (search or "") else no_update,
        )

    @app.callback(
        Output(ids.TOWN, "value", allow_duplicate=True),
        Output(ids.VILLAGE, "value", allow_duplicate=True),
        Output(ids.GRID, "value", allow_duplicate=True),
        Input(ids.GRID_LAYER, "clickData"),
        State(ids.FILTERS, "data"),
        prevent_initial_call=True,
    )
    def drill_down_on_click(click: dict[str, Any] | None, filters: dict[str, Any] | None):
        code = ((click or {}).get("properties") or {}).get("code")
        if not code:
            raise PreventUpdate
        target = _within_scope(sources, common.user(), drill_down(filters or {}, code))
        return target["town"], target["village"], target["grid"]


def _within_scope(sources: Any, user: Any, filters: dict[str, Any]) -> dict[str, Any]:
    """Pin a town official's town (a village secretary's village); drop areas out of scope."""
    out = dict(filters)
    if user.role == "town":
        out["town"] = user.area_code
    elif user.role == "village":
        out["village"] = user.area_code
        out["town"] = (user.area_code or "")[:9]
    try:
        common.area(sources, out)
    except PreventUpdate:
        out.update(town=None, village=None, grid=None)
        if user.role == "town":
            out["town"] = user.area_code
        elif user.role == "village":
            out.update(village=user.area_code, town=(user.area_code or "")[:9])
    return out
