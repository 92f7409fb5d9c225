"""Tests for GeoJSON output of the geography."""

from __future__ import annotations

import gzip
import json
import re

import pytest
import shapely
from shapely.geometry import LinearRing, shape

from geo.geojson import dumps, to_feature_collection
from geo.model import Geography
from geo.partition import build_demo_geography
from geo.validate import parse_import

LEVEL_COUNTS = {"district": 1, "town": 6, "village": 77, "grid": 607}
# A JSON number with more than 6 digits after the decimal point.
LONG_DECIMAL = re.compile(r"[-\d]\.\d{7,}")


@pytest.fixture(scope="module")
def geography() -> Geography:
    return build_demo_geography(2022)


@pytest.mark.parametrize(("level", "count"), LEVEL_COUNTS.items())
def test_collection_per_level(geography: Geography, level: str, count: int) -> None:
    fc = to_feature_collection(geography, level)
    assert fc["type"] == "FeatureCollection"
    assert len(fc["features"]) == count
    codes = [f["properties"]["code"] for f in fc["features"]]
    assert codes == sorted(codes)
    for feature in fc["features"]:
        props = feature["properties"]
        assert feature["type"] == "Feature"
        assert feature["id"] == props["code"]
        assert props["level"] == level
        for key in ("code", "name", "name_en", "kind"):
            assert isinstance(props[key], str) and props[key]
        assert feature["geometry"]["type"] == "Polygon"


def test_grid_properties_name_their_village_and_town(geography: Geography) -> None:
    fc = to_feature_collection(geography, "grid")
    props = next(f["properties"] for f in fc["features"] if f["id"] == "341504102201003")
    assert props == props | {
        "level": "grid",
        "name": "桥元村第3网格",
        "name_en": "Qiaoyuan Village Grid 3",
        "kind": "grid",
        "village_code": "341504102201",
        "village_name": "桥元村",
        "town_code": "341504102",
        "town_name": "三元镇",
    }
    village = next(
        f["properties"]
        for f in to_feature_collection(geography, "village")["features"]
        if f["id"] == "341504100201"
    )
    assert village["name"] == "会馆回民村"
    assert village["town_code"] == "341504100" and village["town_name"] == "洪集镇"
    assert "village_code" not in village


def test_geometry_round_trips_with_six_decimals_and_rfc7946_winding(geography: Geography) -> None:
    fc = to_feature_collection(geography, "grid")
    assert LONG_DECIMAL.search(dumps(fc)) is None
    for feature, area in zip(fc["features"], geography.grids, strict=True):
        rings = feature["geometry"]["coordinates"]
        assert rings[0][0] == rings[0][-1]
        assert LinearRing(rings[0]).is_ccw
        assert shapely.equals(shape(feature["geometry"]), area.geometry)


def test_dumps_is_compact_deterministic_and_keeps_chinese(geography: Geography) -> None:
    text = dumps(to_feature_collection(geography, "village"))
    assert text == dumps(to_feature_collection(geography, "village"))
    assert "会馆回民村" in text and "\\u" not in text
    assert ", " not in text and ": " not in text
    assert json.loads(text)["type"] == "FeatureCollection"


def test_grid_layer_gzips_under_150_kb(geography: Geography) -> None:
    size = len(gzip.compress(dumps(to_feature_collection(geography, "grid")).encode()))
    assert size <= 150 * 1024


def test_unknown_level_is_rejected(geography: Geography) -> None:
    with pytest.raises(ValueError, match="unknown level"):
        to_feature_collection(geography, "province")


def test_export_import_export_is_byte_identical(geography: Geography) -> None:
    levels = ("town", "village", "grid")
    features = [f for level in levels for f in to_feature_collection(geography, level)["features"]]
    result = parse_import(dumps({"type": "FeatureCollection", "features": features}).encode())
    assert result.problems == []
    assert result.geography is not None
    for level in levels:
        assert dumps(to_feature_collection(result.geography, level)) == dumps(
            to_feature_collection(geography, level)
        )


def test_grid_layer_alone_imports_to_the_same_geography(geography: Geography) -> None:
    exported = dumps(to_feature_collection(geography, "grid"))
    result = parse_import(exported)
    assert result.problems == []
    assert result.geography is not None
    assert dumps(to_feature_collection(result.geography, "grid")) == exported
    for level in ("town", "village"):
        for got, want in zip(result.geography.level(level), geography.level(level), strict=True):
            assert (got.code, got.name, got.name_en, got.kind) == (
                want.code,
                want.name,
                want.name_en,
                want.kind,
            )
            assert shapely.equals(got.geometry, want.geometry)
    assert shapely.equals(result.geography.district.geometry, geography.district.geometry)
