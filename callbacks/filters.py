"""Keep the filters, the map's drill-down and the shareable URL in step."""

from __future__ import annotations

from typing import Any

from dash import ClientsideFunction, Dash, Input, Output, State, no_update
from dash.exceptions import PreventUpdate

from callbacks import common
from callbacks.router import dropdown_options, filters_search, parse_search
from dashboard.sources import Sources
from geo.codes import town_of, village_of
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
        out.update(town=town_of(code), village=None, grid=None)
    elif not village or not code.startswith(village):
        out.update(village=village_of(code), grid=None)
    else:
        out["grid"] = code
    return out


# The filters follow the dropdowns in the browser (dashboard/assets/wushi_filters.js): a town
# chosen is one state change, not a round trip to the server before the panels may even ask
# (docs/performance.md, "Town switch"). The server still pins the area in every callback
# (callbacks/common.py::area); the pinning there only keeps the dropdowns honest.
FILTERS_JS = ClientsideFunction(namespace="wushi", function_name="filters")


def register(app: Dash, sources: Sources) -> None:
    """Register the filter synchronisation."""

    app.clientside_callback(
        FILTERS_JS,
        Output(ids.FILTERS, "data"),
        Output(ids.TOWN, "value"),
        Output(ids.VILLAGE, "value"),
        Output(ids.GRID, "value"),
        Input(ids.TOWN, "value"),
        Input(ids.VILLAGE, "value"),
        Input(ids.GRID, "value"),
        Input(ids.PERIOD, "start_date"),
        Input(ids.PERIOD, "end_date"),
        Input(ids.UP, "n_clicks"),
        State(ids.FILTER_SCOPE, "data"),
    )

    @app.callback(
        Output(ids.VILLAGE, "options"),
        Output(ids.GRID, "options"),
        Output(ids.URL, "search"),
        Input(ids.FILTERS, "data"),
        State(ids.METRIC, "value"),
        State(ids.LANG, "data"),
        State(ids.URL, "search"),
    )
    @common.off_loop
    def update_choices(
        filters: Any, metric: str | None, lang: str | None, search: str | None
    ) -> tuple[Any, ...]:
        """Narrow the village and grid choices and the shareable URL to the filters.

        Beside the panels, not before them: the filters come from the browser, so what they
        name is checked here too (an area out of scope leaves the user's own in the URL).
        """
        lang = normal_lang(parse_search(search).get("lang") or lang)
        wanted = filters if isinstance(filters, dict) else {}
        shown = common.pinned_filters(
            sources,
            {
                key: (wanted.get(key) if isinstance(wanted.get(key), str) else None)
                for key in ("town", "village", "grid", "start", "end")
            },
        )
        options = dropdown_options(sources, common.area(sources, {}), shown, lang)
        new_search = filters_search(shown, lang, metric)
        # The grid choices are empty while no village is chosen, before as after.
        return (
            options["villages"],
            options["grids"] if shown["village"] else no_update,
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
        target = common.pinned_filters(sources, drill_down(current, code))
        # Only the values that change: Dash counts every returned value as a trigger of
        # update_filters, and an unchanged town there would reset the village just chosen.
        return tuple(
            no_update if target[key] == current.get(key) else target[key]
            for key in ("town", "village", "grid")
        )


def _changed(new: Any, old: Any) -> Any:
    """Return ``new``, or no_update when it equals what the page has."""
    return no_update if new == old else new
