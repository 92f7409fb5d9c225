"""Plotly figures for the panels, built from the plain DataFrames of ``datasources.panels``.

Each function returns a plain figure dict (``{"data": [...], "layout": {...}}``), not a
``plotly.graph_objects.Figure``: the same figure Plotly would draw, without the validators'
cost on the server and without Plotly's full ``plotly_white``/``plotly_dark`` template (6.4 KB
of the ~7.5 KB of every chart's JSON, parsed and applied by the browser on every draw). The
few template settings these charts show (colours, grid lines, bar outlines) travel in a small
``layout.template`` instead. ``tests/test_charts.py`` checks every figure with Plotly's
validators.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import pandas as pd

from layouts.i18n import t

Figure = dict[str, Any]

LEVELS = ("district", "city", "province", "national")
COLORS = ["#c8102e", "#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#17becf"]
# Plotly's default ("plotly") colour sequence, which the plotly_white/dark templates use.
COLORWAY = [
    "#636efa",
    "#EF553B",
    "#00cc96",
    "#ab63fa",
    "#FFA15A",
    "#19d3f3",
    "#FF6692",
    "#B6E880",
    "#FF97FF",
    "#FECB52",
]


def _template(dark: bool) -> dict[str, Any]:
    """Return the part of plotly_white (plotly_dark on the wall) that these charts show."""
    ink = "#f2f5fa" if dark else "#2a3f5f"
    grid = "#283442" if dark else "#EBF0F8"
    edge = "rgb(17,17,17)" if dark else "white"  # the bars' outline: the background colour
    axis = {
        "gridcolor": grid,
        "linecolor": "#506784" if dark else grid,
        "zerolinecolor": grid,
        "zerolinewidth": 2,
        "ticks": "",
        "automargin": True,
        "title": {"standoff": 15},
    }
    return {
        "data": {
            "bar": [{"marker": {"line": {"color": edge, "width": 0.5}}}],
            "pie": [{"automargin": True}],
        },
        "layout": {
            "colorway": COLORWAY,
            "font": {"color": ink},
            "hovermode": "closest",
            "hoverlabel": {"align": "left"},
            "xaxis": axis,
            "yaxis": axis,
            "shapedefaults": {"line": {"color": ink}},
            "annotationdefaults": {"arrowcolor": ink, "arrowhead": 0, "arrowwidth": 1},
        },
    }


TEMPLATES = {False: _template(False), True: _template(True)}


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """Return ``base`` updated with ``extra``, nested dicts merged (like ``update_layout``)."""
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


# Where the light charts' margins end up once Plotly's automargin has made room for the tick
# labels, the axis title and the legend below (measured on the overview). Starting from there,
# the figure of another area seldom needs other margins: when it does, Plotly draws the chart
# a second time (a third of its drawing time on a town switch was such redraws).
ROOM_MONTHLY = {"l": 68, "t": 20, "b": 84}
ROOM_MONTHLY_BARS = ROOM_MONTHLY | {"r": 24}  # the last month's label overhangs
ROOM_PETITIONS = {"l": 60, "t": 20, "b": 118}  # up to three legend rows
ROOM_DONUT = {"l": 104, "r": 56, "b": 80}  # the labels outside the ring


def _names_room(names: list[str]) -> dict[str, int]:
    """Return the left margin bars labelled with area names take (at least five CJK wide)."""
    widest = max((sum(13 if ord(c) > 0x2E80 else 7 for c in n) for n in names), default=0)
    return {"l": max(100, widest + 35)}  # 35: Plotly's tick pad and standoff


def _figure(
    data: list[dict[str, Any]],
    dark: bool,
    y_title: str = "",
    legend: bool = True,
    room: dict[str, int] | None = None,
    **layout: Any,
) -> Figure:
    """Return a figure with the panels' common layout (transparent, compact, legend below).

    ``room`` is the margins the light chart's labels and legend take (automargin still grows
    them if a figure needs more); the wall's dark charts keep Plotly's own.
    """
    margin = {"l": 48, "r": 12, "t": 8, "b": 40}
    if room and not dark:
        margin |= room
    base = {
        "template": TEMPLATES[dark],
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "rgba(0,0,0,0)",
        "margin": margin,
        "font": {"size": 18 if dark else 13},
        "showlegend": legend,
        "legend": {"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 0}
        if dark
        else {"orientation": "h", "y": -0.18},
        "yaxis": {"title": {"text": y_title}},
        "uirevision": "keep",
    }
    return {"data": data, "layout": _merge(base, layout)}


def _list(values: Any) -> list[Any]:
    """Return a column as a JSON-ready list: Python numbers, missing values as None."""
    out: list[Any] = []
    for v in pd.Series(values).tolist():
        if isinstance(v, float) and math.isnan(v):
            out.append(None)
        elif v is pd.NaT or v is None:
            out.append(None)
        else:
            out.append(v)
    return out


def _dates(values: Any) -> list[str]:
    """Return a column of dates (months) as ISO strings, as Plotly would serialise them."""
    out = []
    for v in values:
        if isinstance(v, pd.Timestamp):
            v = v.to_pydatetime()
        if isinstance(v, dt.datetime) and v.time() == dt.time(0):
            v = v.date()
        out.append(v.isoformat() if hasattr(v, "isoformat") else str(v))
    return out


def empty(lang: str, dark: bool = False) -> Figure:
    """Return an empty figure that says there is no data."""
    return _figure(
        [],
        dark,
        legend=False,
        annotations=[{"text": t("no_data", lang), "showarrow": False}],
        xaxis={"visible": False},
        yaxis={"visible": False},
    )


def _name(row: Any, lang: str) -> str:
    return str(row.get("name_en") if lang == "en" and row.get("name_en") else row.get("name"))


def closure_bars(children: pd.DataFrame, lang: str, dark: bool = False) -> Figure:
    """Return sorted horizontal bars of the closure rate of each child area."""
    if children.empty or children["requests"].sum() == 0:
        return empty(lang, dark)
    df = children[children["requests"] > 0].sort_values("closure_rate")
    names = [_name(r, lang) for r in df.to_dict("records")]
    bar = {
        "type": "bar",
        "x": _list((df["closure_rate"] * 100).round(2)),
        "y": names,
        "orientation": "h",
        "marker": {"color": "#c8102e"},
        "text": [f"{v * 100:.1f}%" for v in df["closure_rate"]],
        "textposition": "auto",
        "customdata": df[["requests", "closed"]].to_numpy().tolist(),
        "hovertemplate": "%{y}: %{x:.2f}% (%{customdata[1]}/%{customdata[0]})<extra></extra>",
    }
    low = max(0.0, float(df["closure_rate"].min() * 100) - 2)
    return _figure(
        [bar],
        dark,
        legend=False,
        room=_names_room(names),
        xaxis={"range": [low, 100], "ticksuffix": "%"},
    )


def requests_monthly(monthly: pd.DataFrame, lang: str, dark: bool = False) -> Figure:
    """Return monthly requests and closures."""
    if monthly.empty:
        return empty(lang, dark)
    months = _dates(monthly["month"])
    data = [
        {"type": "bar", "x": months, "y": _list(monthly[col]), "name": t(col, lang)}
        for col in ("requests", "closed")
    ]
    return _figure(data, dark, t("u_tickets", lang), room=ROOM_MONTHLY_BARS, barmode="group")


def petition_trend(trend: pd.DataFrame, lang: str, dark: bool = False) -> Figure:
    """Return monthly petition batches per level, dashed for the year before."""
    if trend.empty:
        return empty(lang, dark)
    months = _dates(trend["month"])
    data: list[dict[str, Any]] = []
    for k, level in enumerate(LEVELS):
        col = f"batches_{level}"
        if col not in trend or (
            trend[col].sum() == 0 and trend.get(f"{col}_prev", trend[col]).sum() == 0
        ):
            continue
        name = t(f"petition_level.{level}", lang)
        now: dict[str, Any] = {
            "type": "scatter",
            "x": months,
            "y": _list(trend[col]),
            "name": name,
            "mode": "lines+markers",
            "line": {"color": COLORS[k]},
            "hovertemplate": "%{x|%Y-%m}: %{y} "
            + t("u_batches", lang)
            + " / %{customdata} "
            + t("u_persons", lang)
            + "<extra></extra>",
        }
        if f"persons_{level}" in trend:
            now["customdata"] = _list(trend[f"persons_{level}"])
        data.append(now)
        if f"{col}_prev" in trend and not dark:
            data.append(
                {
                    "type": "scatter",
                    "x": months,
                    "y": _list(trend[f"{col}_prev"]),
                    "name": f"{name}（{t('year_before', lang)}）",
                    "mode": "lines",
                    "line": {"color": COLORS[k], "dash": "dot"},
                }
            )
    return _figure(
        data,
        dark,
        t("u_batches", lang),
        room=ROOM_PETITIONS,
        xaxis={"tickformat": "%Y-%m", "nticks": 4 if dark else 8, "tickangle": 0},
    )


def points_over_time(monthly: pd.DataFrame, lang: str, dark: bool = False) -> Figure:
    """Return monthly points earned and redeemed."""
    if monthly.empty:
        return empty(lang, dark)
    months = _dates(monthly["month"])
    data = [
        {
            "type": "scatter",
            "x": months,
            "y": _list(monthly["points_earned"]),
            "name": t("earned", lang),
            "mode": "lines",
        },
        {
            "type": "scatter",
            "x": months,
            "y": _list(monthly["points_redeemed"]),
            "name": t("redeemed", lang),
            "mode": "lines",
            "fill": "tozeroy",
        },
    ]
    return _figure(data, dark, t("u_points", lang), room=ROOM_MONTHLY)


def children_bars(
    children: pd.DataFrame, columns: dict[str, str], lang: str, dark: bool = False, unit: str = ""
) -> Figure:
    """Return stacked bars per child area for the given columns (column -> i18n key)."""
    cols = [c for c in columns if c in children]
    if children.empty or not cols or children[cols].fillna(0).to_numpy().sum() == 0:
        return empty(lang, dark)
    df = children.assign(_total=children[cols].fillna(0).sum(axis=1)).sort_values("_total")
    names = [_name(r, lang) for r in df.to_dict("records")]
    data = [
        {
            "type": "bar",
            "x": _list(df[c].fillna(0)),
            "y": names,
            "name": t(key, lang),
            "orientation": "h",
        }
        for c, key in columns.items()
        if c in df
    ]
    return _figure(
        data,
        dark,
        legend=len(cols) > 1,
        room=_names_room(names),
        barmode="stack",
        xaxis={"title": {"text": unit}},
    )


def employment_kinds(monthly: pd.DataFrame, lang: str, dark: bool = False) -> Figure:
    """Return monthly placements by kind."""
    if monthly.empty:
        return empty(lang, dark)
    months = _dates(monthly["month"])
    data = [
        {
            "type": "bar",
            "x": months,
            "y": _list(monthly[f"placements_{kind}"]),
            "name": t(kind, lang),
        }
        for kind in ("public_welfare", "doorstep", "urban")
    ]
    return _figure(data, dark, t("u_people", lang), room=ROOM_MONTHLY_BARS, barmode="stack")


def response_histogram(dist: pd.DataFrame, lang: str, dark: bool = False) -> Figure:
    """Return the distribution of minutes from request to arrival on site."""
    if dist.empty or dist["count"].sum() == 0:
        return empty(lang, dark)
    bar = {
        "type": "bar",
        "x": _list(dist["label"]),
        "y": _list(dist["count"]),
        "marker": {"color": "#1f77b4"},
    }
    return _figure(
        [bar],
        dark,
        t("u_tickets", lang),
        legend=False,
        xaxis={"title": {"text": t("u_minutes", lang)}, "type": "category"},
    )


def resolution_donut(counts: dict[str, int], lang: str, dark: bool = False) -> Figure:
    """Return where resolved tickets were settled: grid, village, town, district."""
    if not counts or sum(counts.values()) == 0:
        return empty(lang, dark)
    levels = ("grid", "village", "town", "district")
    pie = {
        "type": "pie",
        "labels": [t(f"level_{lvl}", lang) for lvl in levels],
        "values": [int(counts.get(lvl, 0)) for lvl in levels],
        "hole": 0.55,
        "sort": False,
        "marker": {"colors": ["#1a9850", "#91cf60", "#fc8d59", "#d73027"]},
        "textinfo": "label+percent",
    }
    return _figure([pie], dark, room=ROOM_DONUT)


def supervision_votes(items: pd.DataFrame, lang: str, dark: bool = False) -> Figure:
    """Return each item's approval share against the 80% line."""
    if items.empty:
        return empty(lang, dark)
    df = items.sort_values("posted_at").tail(60)
    bar: dict[str, Any] = {
        "type": "bar",
        "x": list(range(len(df))),
        "y": _list((df["approval_share"].fillna(0) * 100).round(1)),
        "marker": {"color": ["#1a9850" if a else "#d73027" for a in df["approved"]]},
        "hovertemplate": "%{customdata[1]} %{customdata[0]}: %{y:.1f}%<extra></extra>",
    }
    if "village" in df:
        bar["customdata"] = df[["title", "village"]].to_numpy().tolist()
    # What ``add_hline(y=80, annotation_text=...)`` adds: a dashed line across the plot and
    # its label at the right end.
    line = {
        "type": "line",
        "xref": "x domain",
        "x0": 0,
        "x1": 1,
        "yref": "y",
        "y0": 80,
        "y1": 80,
        "line": {"dash": "dash", "color": "#ff7f0e"},
    }
    label = {
        "text": t("line_80", lang),
        "showarrow": False,
        "xref": "x domain",
        "x": 1,
        "xanchor": "right",
        "yref": "y",
        "y": 80,
        "yanchor": "bottom",
    }
    return _figure(
        [bar],
        dark,
        t("approval_share", lang),
        legend=False,
        shapes=[line],
        annotations=[label],
        yaxis={"range": [0, 100], "ticksuffix": "%"},
        xaxis={"visible": False},
    )


def device_health(health: dict[str, Any], lang: str, dark: bool = False) -> Figure:
    """Return callers online, offline and low on battery."""
    if not health or not health.get("installed"):
        return empty(lang, dark)
    keys = ("online", "offline", "low_battery")
    counts = [int(health.get(k, 0)) for k in keys]
    bar = {
        "type": "bar",
        "x": [t(k, lang) for k in keys],
        "y": counts,
        "marker": {"color": ["#1a9850", "#d73027", "#f39c12"]},
        "text": [str(c) for c in counts],
        "textposition": "auto",
    }
    return _figure([bar], dark, t("u_devices", lang), legend=False)
