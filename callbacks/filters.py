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
    """Return the filters after a click on grid ``code``: one level further down.

    A click outside the current town (village) moves to the clicked grid's town (village)
    instead, so a dimmed neighbour on the map is one click away, not a reset to the district.
    """
    if not code:
        return filters
    out = dict(filters)
    town, village = out.get("town"), out.get("village")
    if not town or not code.startswith(town):
        out.update(town=code[:9], village=None, grid=None)
    elif not village or not code.startswith(village):
        out.update(village=code[:12], grid=None)
    else:
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
    @common.off_loop
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
        trigger = _most_specific_trigger(grid)
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
        # Only what changes: each value sent back re-renders its dropdown and is one more state
        # change for Dash's renderer, which all the panels' requests wait behind. The grid
        # choices are empty while no village is chosen, before as after.
        return (
            filters,
            _changed(filters["town"], town),
            _changed(filters["village"], village),
            _changed(filters["grid"], grid),
            options["villages"],
            no_update if not (village or filters["village"]) else options["grids"],
            _changed(new_search, search or ""),
        )

    @app.callback(
        Output(ids.TOWN, "value", allow_duplicate=True),
        Output(ids.VILLAGE, "value", allow_duplicate=True),
        Output(ids.GRID, "value", allow_duplicate=True),
        # n_clicks, not clickData: a second click on the same grid leaves clickData equal, and
        # Dash runs no callback for an unchanged value, so the drill-down would stop there.
        Input(ids.GRID_LAYER, "n_clicks"),
        State(ids.GRID_LAYER, "clickData"),
        State(ids.FILTERS, "data"),
        prevent_initial_call=True,
    )
    @common.off_loop
    def drill_down_on_click(
        _clicks: int | None, click: dict[str, Any] | None, filters: dict[str, Any] | None
    ):
        code = ((click or {}).get("properties") or {}).get("code")
        if not code:
            raise PreventUpdate
        current = filters or {}
        target = _within_scope(sources, common.user(), drill_down(current, code))
        # Only the values that change: Dash counts every returned value as a trigger of
        # update_filters, and an unchanged town there would reset the village just chosen.
        return tuple(
            no_update if target[key] == current.get(key) else target[key]
            for key in ("town", "village", "grid")
        )


def _changed(new: Any, old: Any) -> Any:
    """Return ``new``, or no_update when it equals what the page has."""
    return no_update if new == old else new


def _most_specific_trigger(grid: str | None) -> str | None:
    """Return the deepest filter input that changed: grid (when set), village, town, or up.

    A map click may change several dropdowns at once; ``ctx.triggered_id`` would name the
    first (the town), whose handling clears the village and grid the click has just set.
    """
    triggered = {p.rsplit(".", 1)[0] for p in ctx.triggered_prop_ids}
    if ids.GRID in triggered and grid:
        return ids.GRID
    for candidate in (ids.VILLAGE, ids.TOWN):
        if candidate in triggered:
            return candidate
    return ctx.triggered_id if isinstance(ctx.triggered_id, str) else None


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
