"""The 607-grid map: geometry fetched once from cacheable routes, styled through ``hideout``.

The hideout (values per grid, class breaks and colours, pulsing and selected grids) travels in
its own store, ``grid-style``, and ``dashboard/assets/wushi_map.js`` applies it to the drawn
polygons in place (Leaflet ``setStyle`` on the grids whose style changed). Changing the
GeoJSON component's own ``hideout`` would make dash-leaflet 1.1 remove and rebuild all 607
polygons on every restyle: the costliest part of a town switch in the browser
(docs/performance.md). The layer's ``hideout`` prop keeps the page's first one.
"""

from __future__ import annotations

import math
from typing import Any

import dash_leaflet as dl
from dash import dcc
from dash_extensions.javascript import Namespace

from layouts import ids

# The style functions live in dashboard/assets/wushi_map.js (committed, never generated).
_NS = Namespace("wushi", "map")
GRID_STYLE = _NS("gridStyle")
OUTLINE_STYLE = _NS("outlineStyle")
GRID_TOOLTIP = _NS("gridTooltip")
GRID_TAG = _NS("gridTag")

# The demo district's extent; the map fits the stored geometry's bounds when it is given.
DEFAULT_BOUNDS = [[31.74, 115.88], [32.0, 116.23]]


def _zoom_for(height_deg: float, width_deg: float, size: tuple[int, int]) -> float:
    """Return the largest quarter zoom level that shows an extent in a map of ``size`` pixels."""
    # At zoom z one degree of longitude spans 256 * 2**z / 360 pixels; a degree of latitude
    # about 1.18 times that at 32° N.
    fit = min(size[0] / max(width_deg, 1e-6), size[1] / max(height_deg * 1.18, 1e-6))
    return max(8.0, min(17.0, math.floor(math.log2(fit * 360 / 256) * 4) / 4))


def grid_style(hideout: dict[str, Any]) -> dcc.Store:
    """Return the store of the grid layer's style; callbacks and the live socket write it."""
    return dcc.Store(id=ids.GRID_STYLE, data=hideout)


def grid_map(
    *,
    version: str,
    hideout: dict[str, Any],
    bounds: list[list[float]] | None = None,
    tile_url: str = "",
    dark: bool = False,
    size: tuple[int, int] = (860, 540),
) -> dl.Map:
    """Return the map with grid, village and town layers; ``version`` busts the geometry cache."""
    children: list[Any] = []
    if tile_url:
        children.append(dl.TileLayer(url=tile_url, maxZoom=18))
    outline = "#9fb3d1" if dark else "#455a64"
    children += [
        dl.GeoJSON(
            id=ids.GRID_LAYER,
            url=f"/api/v1/grids.geojson?v={version}",
            style=GRID_STYLE,
            onEachFeature=GRID_TAG if dark else GRID_TOOLTIP,
            hideout=hideout,
            # The wall has no controls: no clicks, so no drill-down there.
            interactive=not dark,
        ),
        dl.GeoJSON(
            id=ids.VILLAGE_LAYER,
            url=f"/api/v1/villages.geojson?v={version}",
            style=OUTLINE_STYLE,
            hideout={"level": "village", "color": outline, "weight": 1.2},
            interactive=False,
        ),
        dl.GeoJSON(
            id=ids.TOWN_LAYER,
            url=f"/api/v1/towns.geojson?v={version}",
            style=OUTLINE_STYLE,
            hideout={"level": "town", "color": "#ffd54f" if dark else "#1b2430", "weight": 3},
            interactive=False,
        ),
    ]
    (south, west), (north, east) = bounds or DEFAULT_BOUNDS
    return dl.Map(
        id=ids.GRID_MAP,
        children=children,
        center=[(south + north) / 2, (west + east) / 2],
        zoom=_zoom_for(north - south, east - west, size),
        zoomSnap=0.25,
        attributionControl=False,
        scrollWheelZoom=not dark,
        dragging=not dark,
        zoomControl=not dark,
        doubleClickZoom=False,
    )
