"""Fill the headline tiles and the charts for the chosen area and period.

The callbacks are async and do their work in a thread: Dash's FastAPI backend runs a plain
(sync) callback on the event loop itself, which would make the page's requests wait for each
other and hold up the live socket while a chart is computed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from dash import ALL, Input, Output, State, ctx

from callbacks import common
from datasources import panels
from datasources.kpi import kpi
from datasources.periods import local_day
from layouts import charts, ids
from layouts.components import kpi_tiles
from layouts.i18n import normal_lang, t

# Tiles the wall shows (it has room for eight); the other pages show them all.
WALL_TILES = 8


def _is_wall(pathname: str | None) -> bool:
    return (pathname or "").rstrip("/") == "/wall"


def _figures(sources: Any, filters: dict[str, Any] | None) -> tuple[Any, Any, dict[str, Any]]:
    area = common.area(sources, filters)
    period = common.period(sources, filters)
    figures = sources.cached(
        ("kpi", area.code, period), lambda: kpi(sources.engine, area, period, sources.now())
    )
    return area, period, figures


def area_title(sources: Any, area: Any, period: Any, lang: str) -> str:
    """Return the heading naming the area and the period."""
    names = sources.names().of(lang)
    parts = [names.get(area.code, area.name)]
    if area.level in ("village", "grid") and area.town_code:
        parts.insert(0, names.get(area.town_code, ""))
    if area.level == "grid" and area.village_code:
        parts.insert(1, names.get(area.village_code, ""))
    return f"{' · '.join(p for p in parts if p)}  {period.start} – {period.end}"


ChartFn = Callable[[Any, Any, Any, str, bool], Any]


def _chart_callbacks() -> dict[str, ChartFn]:
    """Map each chart id to the function that queries and draws it."""

    def children(s, area, period):
        return s.cached(
            ("children", area.code, period),
            lambda: panels.children_figures(s.engine, area, period),
        )

    def monthly(s, area, period):
        return s.cached(
            ("monthly", area.code, period), lambda: panels.monthly_series(s.engine, area, period)
        )

    return {
        ids.CHART_CLOSURE: lambda s, a, p, lang, dark: charts.closure_bars(
            children(s, a, p), lang, dark
        ),
        ids.CHART_REQUESTS: lambda s, a, p, lang, dark: charts.requests_monthly(
            monthly(s, a, p), lang, dark
        ),
        ids.CHART_PETITIONS: lambda s, a, p, lang, dark: charts.petition_trend(
            _petition_frame(panels.petition_trend(s.engine, a, p)), lang, dark
        ),
        ids.CHART_POINTS: lambda s, a, p, lang, dark: charts.points_over_time(
            monthly(s, a, p), lang, dark
        ),
        ids.CHART_POINTS_VILLAGE: lambda s, a, p, lang, dark: charts.children_bars(
            children(s, a, p),
            {"points_redeemed": "redeemed", "points_earned": "earned"},
            lang,
            dark,
            t("u_points", lang),
        ),
        ids.CHART_EMPLOYMENT: lambda s, a, p, lang, dark: charts.employment_kinds(
            monthly(s, a, p), lang, dark
        ),
        ids.CHART_EMPLOYMENT_TOWN: lambda s, a, p, lang, dark: charts.children_bars(
            children(s, a, p),
            {f"placements_{k}": k for k in ("public_welfare", "doorstep", "urban")},
            lang,
            dark,
            t("u_people", lang),
        ),
        ids.CHART_RESPONSE: lambda s, a, p, lang, dark: charts.response_histogram(
            _distribution(panels.response_distribution(s.engine, a, p)), lang, dark
        ),
        ids.CHART_LEVELS: lambda s, a, p, lang, dark: charts.resolution_donut(
            panels.resolution_levels_counts(s.engine, a, p), lang, dark
        ),
        ids.CHART_SUPERVISION: lambda s, a, p, lang, dark: charts.supervision_votes(
            panels.supervision_items(s.engine, a, p), lang, dark
        ),
        ids.CHART_DEVICES: lambda s, a, p, lang, dark: charts.device_health(
            panels.device_health(s.engine, a, s.now()), lang, dark
        ),
    }


def _distribution(result: Any) -> Any:
    """Accept the distribution as a DataFrame or as (DataFrame, median, p90)."""
    return result[0] if isinstance(result, tuple) else getattr(result, "bins", result)


def _petition_frame(trend: Any) -> Any:
    """Rename the petition trend's columns to what the chart reads (batches_<level>)."""
    renames = {}
    for col in trend.columns:
        for what in ("batches", "persons"):
            prefix = f"petition_{what}_"
            if col.startswith(prefix):
                renames[col] = f"{what}_{col.removeprefix(prefix)}"
    return trend.rename(columns=renames)


def register(app: Any, sources: Any) -> None:
    """Register the tile and chart callbacks."""

    @app.callback(
        Output(ids.TILES, "children"),
        Output(ids.AREA_TITLE, "children"),
        Input(ids.FILTERS, "data"),
        Input(ids.LANG, "data"),
        Input(ids.LIVE_VERSION, "data"),
        State(ids.URL, "pathname"),
    )
    async def update_tiles(filters, lang, _live, pathname):
        return await asyncio.to_thread(_tiles, sources, filters, normal_lang(lang), pathname)

    for chart_id, draw in _chart_callbacks().items():
        _register_chart(app, sources, chart_id, draw)


def _tiles(sources: Any, filters: Any, lang: str, pathname: str | None) -> tuple[Any, str]:
    area, period, figures = _figures(sources, filters)
    tiles = kpi_tiles(figures, lang)
    if _is_wall(pathname):
        tiles = tiles[:WALL_TILES]
    return tiles, area_title(sources, area, period, lang)


def _register_chart(app: Any, sources: Any, chart_id: str, draw: ChartFn) -> None:
    @app.callback(
        Output(ids.chart(chart_id, ALL), "figure"),
        Input(ids.FILTERS, "data"),
        Input(ids.LANG, "data"),
        State(ids.URL, "pathname"),
    )
    async def update_chart(filters, lang, pathname):
        slots = len(ctx.outputs_list)
        if slots == 0:
            return []

        def compute() -> Any:
            # The area is checked for this user first; the figure of an area is then the same
            # for everyone who may see it, so it is shared (and prepared by warm_figures).
            area = common.area(sources, filters)
            period = common.period(sources, filters)
            key = (chart_id, area.code, period, normal_lang(lang), _is_wall(pathname))
            return sources.figure(key, lambda: draw(sources, area, period, key[3], key[4]))

        return [await asyncio.to_thread(compute)] * slots

    update_chart.__name__ = f"update_{chart_id.replace('-', '_')}"


def warm_figures(sources: Any) -> int:
    """Prepare the charts of the district and each town for this year, in Chinese.

    These are the views leaders switch between; with them ready, choosing a town answers
    from memory instead of building a dozen figures at the moment of the click.
    """
    period = common.default_period(local_day(sources.now()))
    towns = sorted(code for code in sources.names().zh if len(code) == 9)
    done = 0
    for code in [None, *towns]:
        area = sources.area(code, None, None)
        for chart_id, draw in _chart_callbacks().items():
            key = (chart_id, area.code, period, "zh", False)
            sources.refresh_figure(key, lambda d=draw, a=area: d(sources, a, period, "zh", False))
            done += 1
    return done
