"""Fill the headline tiles, the charts and the tables for the chosen area and period.

One async callback does it all, its parts computed in parallel threads: Dash's FastAPI backend
runs a plain (sync) callback on the event loop itself, which would make the page's requests
wait for each other and hold up the live socket while a chart is computed. Why one callback
and not one per panel: docs/performance.md, "Town switch".
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable
from typing import Any

from dash import ALL, Dash, Input, Output, State, ctx, no_update
from dash.exceptions import PreventUpdate

from callbacks import common, map_, tables
from callbacks.router import DEFAULT_METRIC
from dashboard.sources import CHOICE_MAX_AGE_S as CHOICE
from dashboard.sources import Sources
from datasources import panels
from datasources.kpi import AreaRef, kpi
from datasources.periods import Period, local_day
from geo.codes import code_level
from layouts import charts, ids
from layouts.components import kpi_tiles
from layouts.i18n import normal_lang, t

log = logging.getLogger("wushi.panels")

# Tiles the wall shows (it has room for eight); the other pages show them all.
WALL_TILES = 8


def _is_wall(pathname: str | None) -> bool:
    return (pathname or "").rstrip("/") == "/wall"


def area_title(sources: Sources, area: AreaRef, period: Period, lang: str) -> str:
    """Return the heading naming the area and the period."""
    names = sources.names().of(lang)
    parts = [names.get(area.code, area.name)]
    if area.level in ("village", "grid") and area.town_code:
        parts.insert(0, names.get(area.town_code, ""))
    if area.level == "grid" and area.village_code:
        parts.insert(1, names.get(area.village_code, ""))
    return f"{' · '.join(p for p in parts if p)}  {period.start} – {period.end}"


ChartFn = Callable[[Sources, AreaRef, Period, str, bool], Any]


def _children(sources: Sources, area: AreaRef, period: Period) -> Any:
    """Return the figures per child area, shared for a minute like the charts drawn from them.

    The closure chart and the per-village table show the same figures: one query serves both
    (and ``warm_figures`` prepares it for the district and the towns).
    """
    return sources.figure(
        ("children", area.code, period),
        lambda: panels.children_figures(sources.engine, area, period),
    )


def _chart_callbacks() -> dict[str, ChartFn]:
    """Map each chart id to the function that queries and draws it."""
    children = _children

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


def register(app: Dash, sources: Sources) -> None:
    """Register the one callback that fills a page's tiles, title, charts and tables.

    One callback, not one per panel (there were ten on the overview): Dash's renderer runs
    every component's store selector on each state change of each callback (about eight per
    callback, plus its loading flags), and a town switch answered by ten callbacks cost the
    browser more than drawing the charts. The panels are still computed in parallel threads.
    """
    charts_ = _chart_callbacks()
    tables_ = tuple(tables.FRAMES)

    @app.callback(
        Output(ids.TILES_HTML, "html"),
        Output(ids.AREA_TITLE, "children"),
        *(Output(ids.chart(chart_id, ALL), "figure") for chart_id in charts_),
        *(Output(ids.table(table_id, ALL), "rowData") for table_id in tables_),
        *(Output(ids.table(table_id, ALL), "columnDefs") for table_id in tables_),
        *(Output(ids.as_of(table_id, ALL), "data") for table_id in tables_),
        Input(ids.FILTERS, "data"),
        Input(ids.LANG, "data"),
        State(ids.URL, "pathname"),
        *(State(ids.table(table_id, ALL), "columnDefs") for table_id in tables_),
    )
    async def update_panels(filters, lang, pathname, *shown_columns):
        # The user's choices only: live changes of the tiles are pushed over the socket
        # (callbacks/live.py, shared per area); the charts are monthly and the tables never
        # followed live events.
        lang = normal_lang(lang)
        slots = [len(outputs) for outputs in ctx.outputs_list[2:]]
        chart_slots = dict(zip(charts_, slots, strict=False))
        table_slots = dict(zip(tables_, slots[len(charts_) :], strict=False))
        wanted = [c for c, n in chart_slots.items() if n]
        listed = [t_ for t_, n in table_slots.items() if n]
        head, *results = _parts(
            await asyncio.gather(
                asyncio.to_thread(headline_tiles, sources, filters, lang, pathname, CHOICE),
                *(
                    asyncio.to_thread(_chart, sources, c, charts_[c], filters, lang, pathname)
                    for c in wanted
                ),
                *(asyncio.to_thread(_rows, sources, t_, filters, lang) for t_ in listed),
                return_exceptions=True,
            )
        )
        figures = dict(zip(wanted, results[: len(wanted)], strict=True))
        counted = dict(zip(listed, results[len(wanted) :], strict=True))
        rows = {k: v if v is no_update else v[0] for k, v in counted.items()}
        # A pattern (ALL) output takes one value per slot on the page, no_update included.
        tiles, title = (no_update, no_update) if head is no_update else head
        out: list[Any] = [tiles, title]
        out += [[figures.get(c, no_update)] * n for c, n in chart_slots.items()]
        out += [[rows.get(t_, no_update)] * n for t_, n in table_slots.items()]
        for table_id, shown in zip(tables_, shown_columns, strict=True):
            # Column definitions only when they change (first fill, language): AG Grid
            # rebuilds its columns for every new columnDefs, even equal ones.
            defs = tables.column_defs(tables.FRAMES[table_id][1], lang)
            # ``shown`` comes from the browser: a forged request may send anything there.
            shown_list = shown if isinstance(shown, list) else []
            slots_n = table_slots[table_id]
            out.append(
                [
                    no_update if i < len(shown_list) and shown_list[i] == defs else defs
                    for i in range(slots_n)
                ]
            )
        for table_id in tables_:
            found = counted.get(table_id, no_update)
            out.append([no_update if found is no_update else found[1]] * table_slots[table_id])
        return tuple(out)


def _parts(results: list[Any]) -> list[Any]:
    """Return the panels' values, a failed panel as no_update (logged), so the others show.

    An area this user may not see stops the whole update, as it stops each part; if every
    part failed, the first error is raised, so Dash reports it as before.
    """
    errors = [r for r in results if isinstance(r, BaseException)]
    for error in errors:
        if isinstance(error, PreventUpdate | asyncio.CancelledError):
            raise error
    if errors and len(errors) == len(results):
        raise errors[0]
    for error in errors:
        log.error("a panel failed", exc_info=error)
    return [no_update if isinstance(r, BaseException) else r for r in results]


def _rows(
    sources: Sources, table_id: str, filters: Any, lang: str
) -> tuple[list[dict[str, Any]], str]:
    """Return a table's rows for the filters, and when they were counted (ISO time)."""
    now = sources.now()
    if table_id == ids.TABLE_VILLAGES:
        area = common.area(sources, filters)
        children = _children(sources, area, common.period(sources, filters))
        frame = tables.village_frame(sources, filters, lang, children=children)
    else:
        frame = tables.ticket_frame(sources, filters, lang, now=now)
    rows: list[dict[str, Any]] = frame.to_dict("records")
    return rows, now.isoformat()


def headline_tiles(
    sources: Sources, filters: Any, lang: str, pathname: str | None, max_age: float | None = None
) -> tuple[Any, str]:
    """Return the headline tiles and the heading for the filters (checked for this user).

    The area is checked first; the tiles of an area are then the same for every page showing
    it, so they are shared for two seconds (the live callback pushes them to every page). A
    user's choice takes them up to ``max_age`` seconds old (prepared by ``warm_figures``); the
    live push that follows brings the current ones.
    """
    area = common.area(sources, filters)
    period = common.period(sources, filters)
    wall = _is_wall(pathname)

    def build() -> tuple[Any, str]:
        figures = _kpi(sources, area, period, max_age)
        shown = kpi_tiles(figures, lang, wall=wall)
        return "".join(shown[:WALL_TILES] if wall else shown), area_title(
            sources, area, period, lang
        )

    key = ("tiles", area.code, period, lang, wall)
    return sources.cached(key, build, max_age=max_age)


def _kpi(sources: Sources, area: AreaRef, period: Period, max_age: float | None = None) -> Any:
    """Return the headline figures of an area and period, shared (see ``headline_tiles``)."""
    return sources.cached(*_kpi_query(sources, area, period), max_age=max_age)


def _kpi_query(sources: Sources, area: AreaRef, period: Period) -> tuple[Any, Callable[[], Any]]:
    """Return the cache key and the query of an area's headline figures."""
    return ("kpi", area.code, period), lambda: kpi(sources.engine, area, period, sources.now())


def _chart(
    sources: Sources, chart_id: str, draw: ChartFn, filters: Any, lang: str, pathname: str | None
) -> Any:
    """Return one chart's figure for the filters (checked for this user, then shared)."""
    # The area is checked for this user first; the figure of an area is then the same for
    # everyone who may see it, so it is shared (and prepared by warm_figures).
    area = common.area(sources, filters)
    period = common.period(sources, filters)
    key = (chart_id, area.code, period, lang, _is_wall(pathname))
    return sources.figure(key, lambda: draw(sources, area, period, lang, key[4]))


def warm_figures(sources: Sources, pace: Callable[[float], None] | None = None) -> int:
    """Prepare the charts of the district and each town for this year, in Chinese, their
    headline figures, and the district's map values.

    These are the views leaders switch between; with them ready, choosing a town answers
    from memory instead of building a dozen figures at the moment of the click. ``pace`` is
    called after each figure with the seconds it took (the web's warmer sleeps there, so that
    one pass does not hold the process's GIL for the second the pages are waiting on).
    """
    period = common.default_period(local_day(sources.now()))
    towns = sorted(c for c in sources.names().zh if code_level(c, sources.district) == "town")
    done = 0

    def step(refresh: Callable[..., None], key: Any, compute: Callable[[], Any]) -> None:
        started = time.perf_counter()
        refresh(key, compute)
        if pace is not None:
            pace(time.perf_counter() - started)

    # The map's values of the default metric over the district, which a leader's page shows.
    district = sources.area(None, None, None)
    step(sources.refresh, *map_.grid_values_query(sources, district, period, DEFAULT_METRIC))
    for code in [None, *towns]:
        area = sources.area(code, None, None)
        step(sources.refresh, *_kpi_query(sources, area, period))
        # First the figures per child area the closure chart and the village table share.
        step(
            sources.refresh_figure,
            ("children", area.code, period),
            functools.partial(panels.children_figures, sources.engine, area, period),
        )
        for chart_id, draw in _chart_callbacks().items():
            key = (chart_id, area.code, period, "zh", False)
            step(
                sources.refresh_figure,
                key,
                functools.partial(draw, sources, area, period, "zh", False),
            )
            done += 1
    return done
