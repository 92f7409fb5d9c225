"""Colour the grids by the chosen metric: only the ``hideout`` travels (in the ``grid-style``
store, applied in place by ``wushi_map.js``), never the geometry."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import numpy as np
from dash import ClientsideFunction, Dash, Input, Output, State

from callbacks import common
from dashboard.sources import CHOICE_MAX_AGE_S, Sources
from datasources import panels
from datasources.figures import MAP_METRICS
from datasources.kpi import AreaRef
from datasources.periods import Period
from layouts import ids
from layouts.components import NODATA, PALETTE, PALETTE_GOOD, legend
from layouts.i18n import normal_lang, t

CLASSES = 7


def breaks_for(values: list[float]) -> list[float]:
    """Return up to six class breaks for seven colour classes.

    A break is the lowest value of its class (a value is in class k if it is at least
    breaks[k - 1]). A value that a seventh of the grids or more share (closure at 100 %, no
    calls today) is a class of its own; the other values are split by quantiles into the
    classes left, so each holds about as many grids. (Quantiles over all values made "<100"
    and "≥100" of a year's closure rate: 92 % and 99.9 % in one colour.)
    """
    data = np.sort(np.array([v for v in values if v is not None and np.isfinite(v)], dtype=float))
    if data.size == 0:
        return []
    distinct, counts = np.unique(data, return_counts=True)
    heavy = distinct[counts * CLASSES >= data.size]
    rest = data[~np.isin(data, heavy)]
    edges: set[float] = set()
    for value in heavy:
        edges.add(float(value))  # the class starts at the value...
        above = distinct[distinct > value]
        if above.size:
            edges.add(float(above[0]))  # ...and the next value starts the next one
    fixed = sorted(edges)
    for free in range(CLASSES - len(heavy), 0, -1):
        found = set(fixed)
        if rest.size and free > 1:
            qs = np.quantile(rest, np.linspace(0, 1, free + 1)[1:-1], method="higher")
            found |= {float(q) for q in qs}
        breaks = sorted({round(b, 4) for b in found if b > data[0]})
        if len(breaks) < CLASSES:
            return breaks
    return sorted({round(b, 4) for b in fixed if b > data[0]})[: CLASSES - 1]


def colors_for(breaks: list[float], palette: tuple[str, ...]) -> list[str]:
    """Spread the classes over the whole palette, so two classes still contrast."""
    classes = len(breaks) + 1
    if classes == 1:
        return [palette[len(palette) // 2]]
    return [palette[round(k * (len(palette) - 1) / (classes - 1))] for k in range(classes)]


def hideout_for(
    values: dict[str, float | None],
    metric: str,
    lang: str,
    *,
    focus: str | None = None,
    selected: str | None = None,
    pulse: list[str] | None = None,
    dark: bool = False,
    title: str | None = None,
) -> tuple[dict[str, Any], str]:
    """Return the map's hideout and its legend (HTML) for a metric's values per grid."""
    info = MAP_METRICS[metric]
    percent = info.is_rate
    shown = {
        k: (round(v * 100, 1) if percent else round(v, 1))
        for k, v in values.items()
        if v is not None
    }
    breaks = breaks_for(list(shown.values()))
    colors = colors_for(breaks, PALETTE_GOOD if info.higher_is_better else PALETTE)
    label = t(info.picker_label, lang)
    unit = t(info.unit, lang)
    hideout = {
        "values": shown,
        "breaks": breaks,
        "colors": colors,
        "nodata": NODATA,
        "pulse": {code: 1 for code in pulse or []},
        "focus": focus,
        "selected": selected,
        "lang": lang,
        "label": label,
        "format": "{}" + ("%" if percent else f" {unit}"),
        "stroke": "#0b1a2e" if dark else "#ffffff",
    }
    return hideout, legend(breaks, colors, unit, label, title=title)


def grid_values(
    sources: Sources, scope: AreaRef, period: Period, metric: str, max_age: float | None = None
) -> dict[str, float | None]:
    """Return the metric per grid of the user's scope (shared between screens for 2 s, or
    ``max_age`` s for a user's choice: the live push follows with the current values)."""
    return sources.cached(*grid_values_query(sources, scope, period, metric), max_age=max_age)


def grid_values_query(
    sources: Sources, scope: AreaRef, period: Period, metric: str
) -> tuple[Any, Callable[[], dict[str, float | None]]]:
    """Return the cache key and the query of a metric per grid (the warmer prepares it too)."""
    return (
        ("grid_values", scope.code, period, metric),
        lambda: panels.grid_values(sources.engine, scope, period, metric, sources.now()),
    )


def register(app: Dash, sources: Sources) -> None:
    """Register the map restyling callbacks.

    This callback answers the user's choices (filters, metric, language, the wall's rotation).
    Live changes do not come through it: the page's live callback pushes the hideout over the
    socket (``callbacks/live.py``), computed once per area and shared by every page showing it.
    """

    @app.callback(
        Output(ids.GRID_STYLE, "data"),
        Output(ids.LEGEND_HTML, "html"),
        Input(ids.FILTERS, "data"),
        Input(ids.METRIC, "value"),
        Input(ids.LANG, "data"),
        Input(ids.WALL_FOCUS, "data"),
        State(ids.URL, "pathname"),
        State(ids.LIVE_VERSION, "data"),
    )
    async def update_map_style(filters, metric, lang, wall_focus, pathname, live):
        pulse = (live or {}).get("pulse") if isinstance(live, dict) else None
        # In a thread: Dash's FastAPI backend runs sync callbacks on the event loop itself.
        return await asyncio.to_thread(
            map_style,
            sources,
            filters,
            metric,
            normal_lang(lang),
            pulse,
            wall_focus,
            pathname,
            CHOICE_MAX_AGE_S,
        )

    # Applied in the page to the polygons drawn (only those whose style changed), and kept there
    # for the hover text and for geometry that loads later: layouts/map.py says why.
    app.clientside_callback(
        ClientsideFunction(namespace="wushi", function_name="restyleMap"),
        Input(ids.GRID_STYLE, "data"),
    )


def map_style(
    sources: Sources,
    filters: Any,
    metric: str | None,
    lang: str,
    pulse: Any,
    wall_focus: Any,
    pathname: str | None,
    max_age: float | None = None,
) -> tuple[dict[str, Any], str]:
    """Return the hideout and legend for the page's filters, metric and pulsing grids.

    The area is checked for this user first; the answer is then the same for every page
    showing that area, metric and language, so it is shared for two seconds: a hundred open
    pages pushed at once cost one computation. A user's choice takes values up to
    ``max_age`` seconds old (the live push follows with the current ones).
    """
    metric = metric if metric in MAP_METRICS else "closure_rate"
    area = common.area(sources, filters)
    scope = common.area(sources, {})
    period = common.period(sources, filters)
    pulsing = tuple(sorted(str(p) for p in pulse)) if isinstance(pulse, list) else ()
    if (pathname or "").rstrip("/") == "/wall":
        # The wall highlights the town of the current 20-second slot, if it is in scope.
        in_scope = isinstance(wall_focus, str) and wall_focus.startswith(scope.code)
        town = wall_focus if in_scope else None
        key: tuple[Any, ...] = ("hideout-wall", scope.code, period, metric, lang, town, pulsing)

        def wall_style() -> tuple[dict[str, Any], str]:
            values = grid_values(sources, scope, period, metric, max_age)
            name = sources.names().of(lang).get(town or "", "")
            return hideout_for(
                values, metric, lang, focus=town, pulse=list(pulsing), dark=True, title=name
            )

        return sources.cached(key, wall_style, max_age=max_age)
    focus = None if area.level == "district" else area.code
    selected = area.code if area.level == "grid" else None

    def page_style() -> tuple[dict[str, Any], str]:
        values = grid_values(sources, scope, period, metric, max_age)
        return hideout_for(
            values, metric, lang, focus=focus, selected=selected, pulse=list(pulsing)
        )

    key = ("hideout", scope.code, area.code, period, metric, lang, pulsing)
    return sources.cached(key, page_style, max_age=max_age)
