"""The map's boundary layers: what they are made of, their version, and their GeoJSON bodies.

The web layer serves them (``/api/v1/{grids,villages,towns}.geojson`` in ``dashboard/web.py``)
and the page router writes their version into each page's map URLs (``callbacks/router.py``),
so both read the same state from here.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from dashboard.sources import Sources
from datasources import panels
from datasources.geography import load_geography
from geo.geojson import to_feature_collection

STAFF_COLUMNS = ("grid_leader", "grid_leader_phone", "grid_worker", "grid_worker_phone")


@dataclass(frozen=True)
class MapState:
    """What the map's GeoJSON is made of: the geometry's version and the hover's staff."""

    geometry_version: str
    staff: dict[str, dict[str, Any]]
    digest: str


def map_state(sources: Sources) -> MapState:
    """Return the geometry version and staff directory the map is served from (5-minute cache)."""

    def load() -> MapState:
        geometry = sources.geometry_version()
        staff = {
            row["code"]: {key: row.get(key) for key in STAFF_COLUMNS}
            for row in panels.grid_directory(sources.engine).to_dict("records")
        }
        blob = json.dumps(staff, sort_keys=True, ensure_ascii=False, default=str).encode()
        digest = hashlib.sha1(geometry.encode() + blob, usedforsecurity=False).hexdigest()
        return MapState(geometry, staff, digest)

    return sources.cached("map_state", load, long=True)


def map_version(sources: Sources, area_code: str) -> str:
    """Return the ``v=`` of the map's GeoJSON URLs for a user whose area is ``area_code``.

    It changes with the geometry, the staff shown on hover and the area, so a browser may keep
    the answer for a year (``immutable``): a new version is a new URL.
    """
    return layer_version(map_state(sources), area_code)


def layer_version(state: MapState, area_code: str) -> str:
    text = f"{state.digest}/{area_code}"
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()[:16]


def geojson_bytes(sources: Sources, area: Any, level: str, state: MapState) -> bytes:
    """Return the gzipped GeoJSON of one level inside ``area``, with the hover's staff names."""
    geography = sources.cached(
        "geography", lambda: load_geography(sources.engine, sources.district), long=True
    )
    fc = to_feature_collection(geography, level)
    if area.level != "district":
        fc["features"] = [f for f in fc["features"] if inside(f["properties"], area.code)]
    if level == "grid":
        by_code = state.staff
        for feature in fc["features"]:
            row = by_code.get(feature["properties"]["code"], {})
            feature["properties"].update(
                leader=row.get("grid_leader"),
                leader_phone=row.get("grid_leader_phone"),
                worker=row.get("grid_worker"),
                worker_phone=row.get("grid_worker_phone"),
            )
    body = json.dumps(fc, ensure_ascii=False, separators=(",", ":")).encode()
    return gzip.compress(body, compresslevel=6, mtime=0)


def inside(props: dict[str, Any], code: str) -> bool:
    own = str(props.get("code", ""))
    return own.startswith(code) or code.startswith(own)
