"""Pure geography for the Yeji District dashboard: boundary, demo partition, GeoJSON, imports.

No Dash, no database, no network: only shapely, numpy and the files shipped in ``geo/data``.
"""

from geo.boundary import load_district_boundary
from geo.codes import DISTRICT_CODE, CodeError, is_valid_code, parse_code
from geo.geojson import dumps, to_feature_collection
from geo.model import Area, Geography
from geo.partition import build_demo_geography
from geo.validate import ImportResult, Problem, parse_import

__all__ = [
    "DISTRICT_CODE",
    "Area",
    "CodeError",
    "Geography",
    "ImportResult",
    "Problem",
    "build_demo_geography",
    "dumps",
    "is_valid_code",
    "load_district_boundary",
    "parse_code",
    "parse_import",
    "to_feature_collection",
]
