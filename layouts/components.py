"""Small building blocks shared by the pages: tiles, feed entries, alerts, legend, panels.

Tiles, feed entries, alerts and the legend are HTML text, escaped here and shown by one
``Purify`` component per block (``html_block``), not a Dash component per label, value and unit.
Dash's renderer runs every component's store selector on each of its state changes (about
sixty in a town switch, a few per live update) and mounts a wrapper for each new component:
with 300 components on the overview, half of them in these blocks, that would be the renderer's
largest cost in the browser (docs/performance.md, "Town switch"). The DOM is the
one the tests and styles use (``#kpi-tiles .tile .value span``, ``#live-feed [data-event-id]``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from html import escape
from typing import Any

from dash import dcc, html
from dash_extensions import Purify

from datasources.figures import TILES, Figure
from datasources.periods import SHANGHAI
from layouts import ids
from layouts.i18n import alert_text, count_unit, feed_text, t

# A 7-class sequential palette (ColorBrewer YlOrRd) and its reverse for "higher is better".
PALETTE = ("#ffffb2", "#fed976", "#feb24c", "#fd8d3c", "#fc4e2a", "#e31a1c", "#b10026")
PALETTE_GOOD = ("#b10026", "#e31a1c", "#fc4e2a", "#fd8d3c", "#a1d99b", "#41ab5d", "#006d2c")
NODATA = "#d9d9d9"


def fmt_number(value: float | int | None, digits: int = 0) -> str:
    """Format a number with thousands separators; a dash for missing values."""
    if value is None:
        return "—"
    if digits == 0:
        return f"{round(value):,}"
    return f"{value:,.{digits}f}"


def fmt_rate(value: float | None, digits: int = 1) -> str:
    """Format a fraction as a percentage."""
    return "—" if value is None else f"{value * 100:.{digits}f}"


def tile(label: str, value: str, unit: str = "", sub: str | None = None) -> str:
    """Return one headline tile as HTML: label, big value with its unit, a comparison line."""
    sub_html = f'<div class="sub">{escape(sub)}</div>' if sub else ""
    return (
        f'<div class="tile"><div class="label">{escape(label)}</div>'
        f'<div class="value"><span>{escape(value)}</span>'
        f'<span class="unit">{escape(count_unit(value, unit))}</span></div>{sub_html}</div>'
    )


def html_block(box_id: str, html_id: str, class_name: str, text: str = "") -> html.Div:
    """Return the element with a block's DOM id, holding the one component callbacks write."""
    return html.Div(Purify(id=html_id, html=text, className=class_name), id=box_id)


def _count(n: Any, unit_key: str, lang: str) -> str:
    """Return a count with its unit, e.g. "157 人次", "1 person"."""
    shown = fmt_number(n)
    return f"{shown} {count_unit(shown, t(unit_key, lang))}"


def change_text(change: float | None, lang: str) -> str:
    """Return a change vs the year before as text, e.g. "同比 -19.6%"."""
    if change is None:
        return f"{t('compare', lang)} —"
    sign = "+" if change > 0 else ""
    return f"{t('compare', lang)} {sign}{change * 100:.1f}%"


def figure_text(figure: Figure, value: Any) -> str:
    """Return a declared figure's value as shown: a rate as a percentage, else a number."""
    if figure.is_rate:
        return fmt_rate(value, figure.digits)
    return fmt_number(value, figure.digits)


def kpi_value(k: dict[str, Any], figure: Figure) -> Any:
    """Return a declared figure's value from a ``kpi()`` result (``None`` where it has none)."""
    value: Any = k
    for key in figure.kpi_path:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def _tile_sub(figure: Figure, k: dict[str, Any], lang: str) -> str | None:
    """Return the comparison line under a declared figure's tile, for those that have one."""
    if figure.key == "requests":
        return f"{k['period']['start']} – {k['period']['end']}"
    if figure.key == "closure_rate":
        return f"{t('closed', lang)} {_count(k['closed'], 'u_tickets', lang)}"
    if figure.key == "response_median":
        p90 = (k.get("response_minutes") or {}).get("p90")
        return f"P90 {fmt_number(p90, 1)} {t('u_minutes', lang)}"
    return None


def kpi_tiles(k: dict[str, Any], lang: str, wall: bool = False) -> list[str]:
    """Return the headline tiles of docs/figures.md from a ``kpi()`` result.

    First the figures ``datasources.figures`` declares as tiles, in their order (on the wall
    only those declared for it), then the grouped village-level figures and the callers.
    """
    petitions = k.get("petitions") or {}
    employment = k.get("employment") or {}
    points = k.get("points") or {}
    supervision = k.get("supervision") or {}
    devices = k.get("devices") or {}
    tiles = [
        tile(
            t(f.label, lang),
            figure_text(f, kpi_value(k, f)),
            t(f.unit, lang),
            _tile_sub(f, k, lang),
        )
        for f in TILES
        if f.wall or not wall
    ]
    for level in ("district", "city"):
        p = petitions.get(level) if petitions else None
        if p is not None:
            tiles.append(
                tile(
                    t(f"petitions_{level}", lang),
                    fmt_number(p["batches"]),
                    t("u_batches", lang),
                    f"{_count(p['persons'], 'u_persons', lang)} · "
                    f"{change_text(p['batches_change'], lang)}",
                )
            )
    if k.get("mediations") is not None:
        tiles.append(tile(t("mediations", lang), fmt_number(k["mediations"]), t("u_tickets", lang)))
    tiles.append(
        tile(
            t("points_redeemed", lang),
            fmt_number(points.get("redeemed")),
            t("u_points", lang),
            f"{t('points_earned', lang)} {fmt_number(points.get('earned'))}",
        )
    )
    if employment:
        placed = sum(employment.get(k2, 0) for k2 in ("public_welfare", "doorstep", "urban"))
        tiles.append(
            tile(
                t("placements", lang),
                fmt_number(placed),
                t("u_people", lang),
                f"{t('doorstep', lang)} {fmt_number(employment.get('doorstep'))} · "
                f"{t('urban', lang)} {fmt_number(employment.get('urban'))}",
            )
        )
        tiles.append(
            tile(
                t("welfare_posts", lang),
                fmt_number(employment.get("public_welfare_posts")),
                t("u_posts", lang),
            )
        )
    if supervision:
        tiles.append(
            tile(
                t("supervision_approved", lang),
                fmt_number(supervision.get("approved")),
                t("u_items", lang),
                f"/ {fmt_number(supervision.get('posted'))}",
            )
        )
    tiles.append(
        tile(
            t("devices_online", lang),
            fmt_number(devices.get("online")),
            t("u_devices", lang),
            f"/ {fmt_number(devices.get('installed'))} · {t('low_battery', lang)} "
            f"{fmt_number(devices.get('low_battery'))}",
        )
    )
    return tiles


def today_tiles(counts: dict[str, int], snapshot: dict[str, int], lang: str) -> str:
    """Return the live tiles of today: calls, new and closed requests, open, unanswered."""
    return "".join(
        [
            tile(t("calls_today", lang), fmt_number(counts.get("calls", 0)), t("u_calls", lang)),
            tile(t("new_today", lang), fmt_number(counts.get("requests", 0)), t("u_tickets", lang)),
            tile(
                t("closed_today", lang), fmt_number(counts.get("closed", 0)), t("u_tickets", lang)
            ),
            tile(
                t("open_tickets", lang), fmt_number(snapshot.get("open", 0)), t("u_tickets", lang)
            ),
            tile(
                t("unanswered", lang), fmt_number(snapshot.get("unanswered", 0)), t("u_calls", lang)
            ),
        ]
    )


def feed_item(entry: dict[str, Any], names: dict[str, str], lang: str = "zh") -> str:
    """Return one live-feed entry as HTML, carrying the event id as ``data-event-id``."""
    ts = str(entry.get("ts", ""))
    clock = ts[11:19] if len(ts) >= 19 else ts
    where = names.get(entry.get("village") or "", "") or names.get(entry.get("town") or "", "")
    text = feed_text(entry, lang)
    return (
        f'<li data-event-id="{escape(str(entry["id"]))}" '
        f'data-kind="{escape(str(entry.get("kind", "")))}">'
        f'<span class="time">{escape(clock)}</span>{escape(f"{where} {text}")}</li>'
    )


def feed_html(items: Sequence[str], placeholder: str) -> str:
    """Return the feed's list: its entries newest first, or the placeholder while empty."""
    body = "".join(items) or f'<li class="placeholder">{escape(placeholder)}</li>'
    return f'<ul class="feed">{body}</ul>'


def alert_item(alert: dict[str, Any], names: dict[str, str], lang: str = "zh") -> str:
    """Return one alert line as HTML: time, place (village, town or grid) and what is wrong."""
    where = next(
        (
            names[c]
            for c in (alert.get("village"), alert.get("town"), alert.get("grid"))
            if c in names
        ),
        "",
    )
    ts = str(alert.get("ts", ""))[11:16]
    text = alert_text(alert, lang)
    return f'<div class="alert">{escape(f"{ts} {where} {text}")}</div>'


def legend(
    breaks: Sequence[float], colors: Sequence[str], unit: str, label: str, title: str | None = None
) -> str:
    """Return the legend as HTML: a classed colour scale with its unit (and a highlighted area)."""
    items: list[str] = []
    if title:
        items.append(f'<span class="legend-title">{escape(title)}</span>')
    metric = f"{label}（{unit}）" if unit else label
    items.append(f'<span class="legend-metric">{escape(metric)}</span>')
    lows = [None, *breaks]
    for k, color in enumerate(colors[: len(breaks) + 1]):
        low, high = lows[k], breaks[k] if k < len(breaks) else None
        # A break is the lowest value of its class: [low, high).
        if low is None:
            text = f"<{_short(high)}" if high is not None else ""
        elif high is None:
            text = f"≥{_short(low)}"
        else:
            text = f"{_short(low)}–{_short(high)}"
        items.append(_swatch(color, text))
    items.append(_swatch(NODATA, "—"))
    return "".join(items)


def _swatch(color: str, text: str) -> str:
    swatch = f'<span class="swatch" style="background:{escape(color)}"></span>'
    return f"<span>{swatch} {escape(text)}</span>"


def _short(value: float | None) -> str:
    """Return a class bound as the legend shows it: 97.5 (a rate), 1,240 (points), 0.35."""
    if value is None:
        return ""
    if value == int(value) or abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2g}"


STALE_STYLE = {
    "background": "#b71c1c",
    "color": "#fff",
    "fontWeight": 700,
    "padding": "4px 10px",
    "borderRadius": "12px",
    "marginLeft": "12px",
}


def stale_badge(lang: str) -> html.Span:
    """Return the "data stale" badge, hidden until the live callback fills and shows it.

    ``data-label`` is its text with ``{since}`` left open, for the page's status script, which
    shows the badge itself while the socket is down and /healthz reports the database failing.
    """
    return html.Span(
        id=ids.DB_STALE,
        className="db-stale",
        hidden=True,
        style=STALE_STYLE,
        # Dash's component signatures omit the data-* props the components take.
        **{"data-label": t("db_stale", lang)},  # type: ignore[arg-type]
    )


def stale_badge_props(since: float | None, lang: str) -> dict[str, Any]:
    """Return the badge's props: hidden while the database answers, else since when it stopped."""
    if since is None:
        return {"hidden": True, "children": ""}
    clock = dt.datetime.fromtimestamp(since, SHANGHAI).strftime("%H:%M")
    return {"hidden": False, "children": t("db_stale", lang).format(since=clock)}


def panel(title: str, body: Any, panel_id: str | None = None, extra_class: str = "") -> html.Div:
    """Return a titled panel."""
    props: dict[str, Any] = {"id": panel_id} if panel_id else {}
    return html.Div([html.H2(title), body], className=f"panel {extra_class}".strip(), **props)


def graph(name: str, height: int = 320) -> dcc.Graph:
    """Return an empty chart slot filled by a callback; no mode bar, responsive."""
    return dcc.Graph(
        id=ids.chart(name),
        config={"displayModeBar": False, "responsive": True},
        style={"height": f"{height}px"},
    )


def now_text(now: dt.datetime) -> str:
    """Return a local clock text."""
    return now.strftime("%Y-%m-%d %H:%M:%S")
