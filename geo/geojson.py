"""GeoJSON output: what ``wushi geo export`` prints and ``GET /api/v1/grids.geojson`` serves."""

from __future__ import annotations

import json
from typing import Any

import shapely
from shapely.geometry import Polygon

from geo.model import Area, Geography

COORDINATE_DECIMALS = 6


def _ring(coords: Any) -> list[list[float]]:
    return [[round(x, COORDINATE_DECIMALS), round(y, COORDINATE_DECIMALS)] for x, y in coords]


def polygon_geometry(polygon: Polygon) -> dict[str, Any]:
    """Return a GeoJSON Polygon dict with RFC 7946 winding and 6-decimal coordinates."""
    # RFC 7946: exterior rings counter-clockwise, holes clockwise.
    oriented = shapely.orient_polygons(polygon)
    rings = [_ring(oriented.exterior.coords)]
    rings.extend(_ring(interior.coords) for interior in oriented.interiors)
    return {"type": "Polygon", "coordinates": rings}


def feature_properties(area: Area, geography: Geography) -> dict[str, Any]:
    """Return the properties of one area's feature."""
    props: dict[str, Any] = {
        "level": area.level,
        "code": area.code,
        "name": area.name,
        "name_en": area.name_en,
        "kind": area.kind,
        "parent_code": area.parent_code,
    }
    if area.town_code is not None and area.level in ("village", "grid"):
        town = geography.by_code(area.town_code)
        props["town_code"] = town.code
        props["town_name"] = town.name
        props["town_name_en"] = town.name_en
    if area.village_code is not None and area.level == "grid":
        village = geography.by_code(area.village_code)
        props["village_code"] = village.code
        props["village_name"] = village.name
        props["village_name_en"] = village.name_en
    lon, lat = area.centroid
    props["label_lon"] = lon
    props["label_lat"] = lat
    return props


def to_feature(area: Area, geography: Geography) -> dict[str, Any]:
    """Return one area as a GeoJSON Feature whose id is its code."""
    return {
        "type": "Feature",
        "id": area.code,
        "properties": feature_properties(area, geography),
        "geometry": polygon_geometry(area.geometry),
    }


def to_feature_collection(geography: Geography, level: str = "grid") -> dict[str, Any]:
    """Return every area of one level ("district", "town", "village", "grid") as a collection."""
    areas = sorted(geography.level(level), key=lambda a: a.code)
    return {
        "type": "FeatureCollection",
        "features": [to_feature(area, geography) for area in areas],
    }


def dumps(fc: dict[str, Any]) -> str:
    """Serialise GeoJSON compactly and deterministically (UTF-8 names kept readable)."""
    return json.dumps(fc, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
