"""The wall: a clock, the freshness mark, and the metric and town that rotate every 20 s.

All of it runs in the browser (``wushi.wallTick`` in dashboard/assets/wushi_wall.js, a
clientside callback on a one-second interval): it sets the hidden metric picker and the
highlighted town, and the ordinary map callback does the rest. The slot's length comes with
the ``wall-rotation`` store (``every_s``), when data counts as stale with the ``freshness``
store (``stale_s``, callbacks/live.py).
"""

from __future__ import annotations

from dash import ClientsideFunction, Dash, Input, Output, State

from dashboard.sources import Sources
from layouts import ids

ROTATE_S = 20
WALL_METRICS = ("calls", "open_tickets", "closure_rate", "satisfaction_rate", "response_median")


def rotation(slot: int, towns: list[str]) -> tuple[str, str | None]:
    """Return the metric and the highlighted town of a 20-second slot (as the browser does)."""
    metric = WALL_METRICS[slot % len(WALL_METRICS)]
    town = towns[slot % len(towns)] if towns else None
    return metric, town


def register(app: Dash, sources: Sources) -> None:
    """Register the wall's clock, freshness mark and rotation."""
    app.clientside_callback(
        ClientsideFunction(namespace="wushi", function_name="wallTick"),
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
