"""The wall: a clock, the freshness mark, and the metric and town that rotate every 20 s.

All of it runs in the browser (a clientside callback on a one-second interval): it sets the
hidden metric picker and the highlighted town, and the ordinary map callback does the rest.
"""

from __future__ import annotations

from typing import Any

from dash import Input, Output, State

from layouts import ids

ROTATE_S = 20
WALL_METRICS = ("calls", "open_tickets", "closure_rate", "satisfaction_rate", "response_median")
STALE_AFTER_S = 60

_TICK_JS = """
function(_n, fresh, rotation) {
    var now = new Date();
    var clock = now.toLocaleString('zh-CN', {timeZone: 'Asia/Shanghai', hour12: false});
    var f = fresh || {};
    var en = f.lang === 'en';
    var asOf = f.as_of ? new Date(f.as_of * 1000) : null;
    var stale = !asOf || (now - asOf) > STALE_S * 1000;
    var text = (en ? 'Data as of ' : '数据截至 ') + (asOf ? asOf.toLocaleTimeString(
        'zh-CN', {timeZone: 'Asia/Shanghai', hour12: false}) : '—');
    if (stale) { text += en ? ' (stale)' : '（已过期）'; }
    var r = rotation || {metrics: [], towns: []};
    var slot = Math.floor(now.getTime() / (ROTATE_S * 1000));
    var changed = window.__wushiSlot !== slot;
    window.__wushiSlot = slot;
    var nu = window.dash_clientside.no_update;
    var metric = r.metrics.length ? r.metrics[slot % r.metrics.length] : nu;
    var town = r.towns.length ? r.towns[slot % r.towns.length] : nu;
    return [clock, text, stale ? 'asof stale' : 'asof', changed ? metric : nu, changed ? town : nu];
}
"""


def rotation(slot: int, towns: list[str]) -> tuple[str, str | None]:
    """Return the metric and the highlighted town of a 20-second slot (as the browser does)."""
    metric = WALL_METRICS[slot % len(WALL_METRICS)]
    town = towns[slot % len(towns)] if towns else None
    return metric, town


def register(app: Any, sources: Any) -> None:
    """Register the wall's clock, freshness mark and rotation."""
    app.clientside_callback(
        _TICK_JS.replace("STALE_S", str(STALE_AFTER_S)).replace("ROTATE_S", str(ROTATE_S)),
        Output(ids.CLOCK, "children"),
        Output(ids.DATA_AS_OF, "children"),
        Output(ids.DATA_AS_OF, "className"),
        Output(ids.METRIC, "value", allow_duplicate=True),
        Output(ids.WALL_FOCUS, "data"),
        Input(ids.WALL_TICK, "n_intervals"),
        State(ids.FRESHNESS, "data"),
        State(ids.WALL_ROTATION, "data"),
        prevent_initial_call="initial_duplicate",
    )
