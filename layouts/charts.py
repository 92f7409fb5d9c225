"""Plotly figures for the panels, built from the plain DataFrames of ``datasources.panels``."""

from __future__ import annotations

from typing import Any

import pandas as pd
import plotly.graph_objects as go

from layouts.i18n import t

LEVELS = ("district", "city", "province", "national")
LEVEL_NAMES = {
    "district": ("来区访", "District"),
    "city": ("到市访", "City"),
    "province": ("赴省访", "Province"),
    "national": ("进京访", "National"),
}
COLORS = ["#c8102e", "#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#17becf"]


def _layout(fig: go.Figure, dark: bool, y_title: str = "", legend: bool = True) -> go.Figure:
    fig.update_layout(
        template="plotly_dark" if dark else "plotly_white",
        paper_bgcolor="rgba(0,0,0,0)",
        plot_bgcolor="rgba(0,0,0,0)",
        margin={"l": 48, "r": 12, "t": 8, "b": 40},
        font={"size": 18 if dark else 13},
        showlegend=legend,
        legend={"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 0}
        if dark
        else {"orientation": "h", "y": -0.18},
        yaxis_title=y_title,
        uirevision="keep",
    )
    return fig


def empty(lang: str, dark: bool = False) -> go.Figure:
    """Return an empty figure that says there is no data."""
    fig = go.Figure()
    fig.add_annotation(text="无数据" if lang != "en" else "No data", showarrow=False)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return _layout(fig, dark, legend=False)


def _name(row: Any, lang: str) -> str:
    return str(row.get("name_en") if lang == "en" and row.get("name_en") else row.get("name"))


def closure_bars(children: pd.DataFrame, lang: str, dark: bool = False) -> go.Figure:
    """Return sorted horizontal bars of the closure rate of each child area."""
    if children.empty or children["requests"].sum() == 0:
        return empty(lang, dark)
    df = children[children["requests"] > 0].sort_values("closure_rate")
    names = [_name(r, lang) for r in df.to_dict("records")]
    fig = go.Figure(
        go.Bar(
            x=(df["closure_rate"] * 100).round(2),
            y=names,
            orientation="h",
            marker_color="#c8102e",
            text=[f"{v * 100:.1f}%" for v in df["closure_rate"]],
            textposition="auto",
            customdata=df[["requests", "closed"]].to_numpy(),
            hovertemplate="%{y}: %{x:.2f}% (%{customdata[1]}/%{customdata[0]})<extra></extra>",
        )
    )
    low = max(0.0, float(df["closure_rate"].min() * 100) - 2)
    fig.update_xaxes(range=[low, 100], ticksuffix="%")
    return _layout(fig, dark, legend=False)


def requests_monthly(monthly: pd.DataFrame, lang: str, dark: bool = False) -> go.Figure:
    """Return monthly requests and closures."""
    if monthly.empty:
        return empty(lang, dark)
    fig = go.Figure(
        [
            go.Bar(x=monthly["month"], y=monthly["requests"], name=t("requests", lang)),
            go.Bar(x=monthly["month"], y=monthly["closed"], name=t("closed", lang)),
        ]
    )
    fig.update_layout(barmode="group")
    return _layout(fig, dark, t("u_tickets", lang))


def petition_trend(trend: pd.DataFrame, lang: str, dark: bool = False) -> go.Figure:
    """Return monthly petition batches per level, dashed for the year before."""
    if trend.empty:
        return empty(lang, dark)
    fig = go.Figure()
    for k, level in enumerate(LEVELS):
        col = f"batches_{level}"
        if col not in trend or (
            trend[col].sum() == 0 and trend.get(f"{col}_prev", trend[col]).sum() == 0
        ):
            continue
        name = LEVEL_NAMES[level][1 if lang == "en" else 0]
        fig.add_trace(
            go.Scatter(
                x=trend["month"],
                y=trend[col],
                name=name,
                mode="lines+markers",
                line={"color": COLORS[k]},
                customdata=trend[f"persons_{level}"] if f"persons_{level}" in trend else None,
                hovertemplate="%{x|%Y-%m}: %{y} "
                + t("u_batches", lang)
                + " / %{customdata} "
                + t("u_persons", lang)
                + "<extra></extra>",
            )
        )
        if f"{col}_prev" in trend and not dark:
            fig.add_trace(
                go.Scatter(
                    x=trend["month"],
                    y=trend[f"{col}_prev"],
                    name=f"{name}（{t('year_before', lang)}）",
                    mode="lines",
                    line={"color": COLORS[k], "dash": "dot"},
                )
            )
    fig.update_xaxes(tickformat="%Y-%m", nticks=4 if dark else 8, tickangle=0)
    return _layout(fig, dark, t("u_batches", lang))


def points_over_time(monthly: pd.DataFrame, lang: str, dark: bool = False) -> go.Figure:
    """Return monthly points earned and redeemed."""
    if monthly.empty:
        return empty(lang, dark)
    fig = go.Figure(
        [
            go.Scatter(
                x=monthly["month"], y=monthly["points_earned"], name=t("earned", lang), mode="lines"
            ),
            go.Scatter(
                x=monthly["month"],
                y=monthly["points_redeemed"],
                name=t("redeemed", lang),
                mode="lines",
                fill="tozeroy",
            ),
        ]
    )
    return _layout(fig, dark, t("u_points", lang))


def children_bars(
    children: pd.DataFrame, columns: dict[str, str], lang: str, dark: bool = False, unit: str = ""
) -> go.Figure:
    """Return stacked bars per child area for the given columns (column -> i18n key)."""
    cols = [c for c in columns if c in children]
    if children.empty or not cols or children[cols].fillna(0).to_numpy().sum() == 0:
        return empty(lang, dark)
    df = children.assign(_total=children[cols].fillna(0).sum(axis=1)).sort_values("_total")
    names = [_name(r, lang) for r in df.to_dict("records")]
    fig = go.Figure(
        [
            go.Bar(x=df[c].fillna(0), y=names, name=t(key, lang), orientation="h")
            for c, key in columns.items()
            if c in df
        ]
    )
    fig.update_layout(barmode="stack")
    fig.update_xaxes(title=unit)
    return _layout(fig, dark, legend=len(cols) > 1)


def employment_kinds(monthly: pd.DataFrame, lang: str, dark: bool = False) -> go.Figure:
    """Return monthly placements by kind."""
    if monthly.empty:
        return empty(lang, dark)
    fig = go.Figure(
        [
            go.Bar(x=monthly["month"], y=monthly[f"placements_{kind}"], name=t(kind, lang))
            for kind in ("public_welfare", "doorstep", "urban")
        ]
    )
    fig.update_layout(barmode="stack")
    return _layout(fig, dark, t("u_people", lang))


def response_histogram(dist: pd.DataFrame, lang: str, dark: bool = False) -> go.Figure:
    """Return the distribution of minutes from request to arrival on site."""
    if dist.empty or dist["count"].sum() == 0:
        return empty(lang, dark)
    fig = go.Figure(go.Bar(x=dist["label"], y=dist["count"], marker_color="#1f77b4"))
    fig.update_xaxes(title=t("u_minutes", lang), type="category")
    return _layout(fig, dark, t("u_tickets", lang), legend=False)


def resolution_donut(counts: dict[str, int], lang: str, dark: bool = False) -> go.Figure:
    """Return where resolved tickets were settled: grid, village, town, district."""
    if not counts or sum(counts.values()) == 0:
        return empty(lang, dark)
    levels = ("grid", "village", "town", "district")
    fig = go.Figure(
        go.Pie(
            labels=[t(f"level_{lvl}", lang) for lvl in levels],
            values=[counts.get(lvl, 0) for lvl in levels],
            hole=0.55,
            sort=False,
            marker={"colors": ["#1a9850", "#91cf60", "#fc8d59", "#d73027"]},
            textinfo="label+percent",
        )
    )
    return _layout(fig, dark)


def supervision_votes(items: pd.DataFrame, lang: str, dark: bool = False) -> go.Figure:
    """Return each item's approval share against the 80% line."""
    if items.empty:
        return empty(lang, dark)
    df = items.sort_values("posted_at").tail(60)
    colors = ["#1a9850" if a else "#d73027" for a in df["approved"]]
    fig = go.Figure(
        go.Bar(
            x=list(range(len(df))),
            y=(df["approval_share"].fillna(0) * 100).round(1),
            marker_color=colors,
            customdata=df[["title", "village"]].to_numpy() if "village" in df else None,
            hovertemplate="%{customdata[1]} %{customdata[0]}: %{y:.1f}%<extra></extra>",
        )
    )
    fig.add_hline(y=80, line_dash="dash", line_color="#ff7f0e", annotation_text=t("line_80", lang))
    fig.update_yaxes(range=[0, 100], ticksuffix="%")
    fig.update_xaxes(visible=False)
    return _layout(fig, dark, t("approval_share", lang), legend=False)


def device_health(health: dict[str, Any], lang: str, dark: bool = False) -> go.Figure:
    """Return callers online, offline and low on battery."""
    if not health or not health.get("installed"):
        return empty(lang, dark)
    keys = ("online", "offline", "low_battery")
    fig = go.Figure(
        go.Bar(
            x=[t(k, lang) for k in keys],
            y=[health.get(k, 0) for k in keys],
            marker_color=["#1a9850", "#d73027", "#f39c12"],
            text=[health.get(k, 0) for k in keys],
            textposition="auto",
        )
    )
    return _layout(fig, dark, t("u_devices", lang), legend=False)
