"""Tests for all-or-nothing validation of imported grid GeoJSON.

The good fixture ``tests/data/geo/small_good.geojson`` holds 2 towns, 3 villages and 6 grids
(features 0-1 towns, 2-4 villages, 5-10 grids); every broken case is a mutated copy of it.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import shapely

from geo.geojson import dumps, to_feature_collection
from geo.partition import build_demo_geography
from geo.validate import ImportResult, Problem, parse_import

GOOD_FILE = Path(__file__).parent / "data" / "geo" / "small_good.geojson"

FC = dict[str, Any]


def good() -> FC:
    return json.loads(GOOD_FILE.read_text(encoding="utf-8"))


def grids_only(fc: FC) -> FC:
    fc["features"] = [f for f in fc["features"] if f["properties"].get("level") == "grid"]
    return fc


def feature(fc: FC, code: str) -> dict[str, Any]:
    return next(f for f in fc["features"] if f["properties"]["code"] == code)


def rect(x0: float, x1: float, y0: float = 31.86, y1: float = 31.88) -> dict[str, Any]:
    ring = [[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]
    return {"type": "Polygon", "coordinates": [ring]}


def mapped(fc: FC, code: str, fn: Callable[[float, float], list[Any]]) -> FC:
    geometry = feature(fc, code)["geometry"]
    geometry["coordinates"] = [[fn(x, y) for x, y in ring] for ring in geometry["coordinates"]]
    return fc


def set_props(fc: FC, target: str, /, **changes: Any) -> FC:
    feature(fc, target)["properties"].update(changes)
    return fc


def set_geometry(fc: FC, code: str, geometry: Any) -> FC:
    feature(fc, code)["geometry"] = geometry
    return fc


def drop_prop(fc: FC, code: str, key: str) -> FC:
    del feature(fc, code)["properties"][key]
    return fc


def shift_all(fc: FC, dx: float) -> FC:
    for f in fc["features"]:
        rings = f["geometry"]["coordinates"]
        f["geometry"]["coordinates"] = [[[x + dx, y] for x, y in ring] for ring in rings]
    return fc


BOWTIE = {
    "type": "Polygon",
    "coordinates": [[[116.02, 31.86], [116.03, 31.88], [116.03, 31.86], [116.02, 31.88],
                     [116.02, 31.86]]],
}  # fmt: skip

# (id, mutation of the good collection, expected code in the problem, feature index, fragment)
BROKEN: list[tuple[str, Callable[[FC], Any], str | None, int, str]] = [
    # a. invalid geometry
    ("a-self-intersecting", lambda fc: set_geometry(fc, "341504100200001", BOWTIE),
     "341504100200001", 7, "self-intersecting polygon at (116.025, 31.87)"),
    ("a-empty", lambda fc: set_geometry(fc, "341504100200001", {"type": "Polygon",
                                                                "coordinates": []}),
     "341504100200001", 7, "empty polygon"),
    ("a-zero-area", lambda fc: set_geometry(fc, "341504100200001", rect(116.02, 116.02)),
     "341504100200001", 7, "empty polygon"),
    ("a-point", lambda fc: set_geometry(fc, "341504100200001",
                                        {"type": "Point", "coordinates": [116.02, 31.87]}),
     "341504100200001", 7, "geometry type 'Point' is not a Polygon"),
    ("a-multipolygon", lambda fc: set_geometry(fc, "341504100200001", {
        "type": "MultiPolygon",
        "coordinates": [rect(116.02, 116.025)["coordinates"], rect(116.026, 116.03)["coordinates"]],
    }), "341504100200001", 7, "MultiPolygon with 2 parts"),
    ("a-no-geometry", lambda fc: set_geometry(fc, "341504100200001", None),
     "341504100200001", 7, "missing geometry"),
    # b. duplicate code
    ("b-duplicate", lambda fc: set_props(fc, "341504100200002", code="341504100200001"),
     "341504100200001", 8, "duplicate code 341504100200001 (already used by feature 7)"),
    # c. grid outside its village (village features given), village outside its town
    ("c-grid-outside-village", lambda fc: set_geometry(fc, "341504100201002",
                                                       rect(116.05, 116.07)),
     "341504100201002", 10, "lies outside its village 341504100201"),
    ("c-village-outside-town", lambda fc: set_geometry(fc, "341504001001",
                                                       rect(115.99, 116.02)),
     "341504001001", 2, "lies outside its town 341504001"),
    # d. overlapping grids
    ("d-overlap", lambda fc: set_geometry(fc, "341504100200001", rect(116.02, 116.035)),
     "341504100200002", 8, "overlaps grid 341504100200001 (feature 7)"),
    # e. missing property, code off the scheme, code not under its village
    ("e-missing-village-code", lambda fc: drop_prop(fc, "341504100201001", "village_code"),
     "341504100201001", 9, "missing property village_code"),
    ("e-missing-name", lambda fc: set_props(fc, "341504100201001", name="  "),
     "341504100201001", 9, "missing property name"),
    ("e-missing-code", lambda fc: drop_prop(fc, "341504100201001", "code"),
     None, 9, "missing property code"),
    ("e-bad-code", lambda fc: set_props(fc, "341504100201001", code="34150410020100X"),
     "34150410020100X", 9, "does not fit the scheme"),
    ("e-short-code", lambda fc: set_props(fc, "341504100201001", code="34150410020100"),
     "34150410020100", 9, "does not fit the scheme"),
    ("e-other-district", lambda fc: set_props(fc, "341504100201001", code="341505100201001"),
     "341505100201001", 9, "does not start with the district code 341504"),
    ("e-not-under-village", lambda fc: set_props(fc, "341504100201001", code="341504100200009"),
     "341504100200009", 9, "does not start with its village_code 341504100201"),
    # f. not WGS84 longitude/latitude
    ("f-projected", lambda fc: mapped(fc, "341504001001002",
                                      lambda x, y: [x * 111_000 - 1.2e7, y * 111_000]),
     "341504001001002", 6, "projected metres"),
    ("f-swapped", lambda fc: mapped(fc, "341504001001002", lambda x, y: [y, x]),
     "341504001001002", 6, "longitude and latitude look swapped"),
    ("f-outside-china", lambda fc: mapped(fc, "341504001001002", lambda x, y: [x - 100, y]),
     "341504001001002", 6, "outside China"),
    ("f-nan", lambda fc: mapped(fc, "341504001001002", lambda x, y: [x, float("nan")]),
     "341504001001002", 6, "not a finite number"),
    ("f-text", lambda fc: mapped(fc, "341504001001002", lambda x, y: [str(x), y]),
     "341504001001002", 6, "non-numeric coordinate '116.01'"),
    # g. not a FeatureCollection / not JSON
    ("g-not-json", lambda fc: b'{"type": "FeatureCollection", "features": [', None, -1,
     "not valid JSON"),
    ("g-not-utf8", lambda fc: b"\xff\xfe{}", None, -1, "not UTF-8"),
    ("g-list", lambda fc: "[]", None, -1, "not a GeoJSON FeatureCollection"),
    ("g-feature", lambda fc: fc["features"][5], None, -1, "not a GeoJSON FeatureCollection"),
    ("g-no-features", lambda fc: {"type": "FeatureCollection", "features": {}}, None, -1,
     "no 'features' list"),
    ("g-empty", lambda fc: {"type": "FeatureCollection", "features": []}, None, -1,
     "no grid features"),
    ("g-not-a-feature", lambda fc: fc | {"features": [*fc["features"], [1, 2]]}, None, 11,
     "not a GeoJSON Feature"),
    # h. village code under a different town than given
    ("h-wrong-town", lambda fc: set_props(fc, "341504100200001", town_code="341504001"),
     "341504100200001", 7,
     "village 341504100200 belongs to town 341504100 by its code, not to the given town_code "
     "341504001"),
    # far outside the district, villages in pieces
    ("far-away", lambda fc: shift_all(fc, 0.5), "341504001001001", 5,
     "km outside Yeji District"),
    ("not-contiguous", lambda fc: set_geometry(grids_only(fc), "341504001001002",
                                               rect(116.00, 116.01, 31.90, 31.91)),
     "341504001001", 0, "the grids of village 341504001001 are not contiguous"),
    ("village-without-grids", lambda fc: fc | {"features": [
        f for f in fc["features"] if f["properties"].get("village_code") != "341504100201"]},
     "341504100201", 4, "village 341504100201 has no grids"),
    ("grid-village-missing", lambda fc: fc | {"features": [
        f for f in fc["features"] if f["properties"]["code"] != "341504100201"]},
     "341504100201", 8, "the collection's village features do not include it"),
    ("inconsistent-village-name", lambda fc: set_props(fc, "341504100201002",
                                                       village_name="会馆村"),
     "341504100201002", 10, "village_name '会馆村' for 341504100201 differs"),
]  # fmt: skip


def _messages(result: ImportResult) -> list[str]:
    return [str(p) for p in result.problems]


def test_good_fixture_imports() -> None:
    result = parse_import(GOOD_FILE.read_bytes())
    assert result.problems == []
    assert result.ok
    geography = result.geography
    assert geography is not None
    assert [t.code for t in geography.towns] == ["341504001", "341504100"]
    assert len(geography.villages) == 3 and len(geography.grids) == 6
    assert geography.by_code("341504001").kind == "subdistrict"
    assert geography.by_code("341504100").name_en == "Hongji Town"
    community = geography.by_code("341504001001")
    assert (community.kind, community.town_code) == ("community", "341504001")
    grid = geography.by_code("341504100201002")
    assert (grid.name, grid.village_code, grid.town_code) == (
        "会馆回民村第2网格",
        "341504100201",
        "341504100",
    )
    assert geography.children("341504100201") == (geography.by_code("341504100201001"), grid)
    assert shapely.equals(geography.district.geometry, shapely.box(116.0, 31.86, 116.06, 31.88))


def test_grids_alone_import_with_unions_as_villages_and_towns() -> None:
    result = parse_import(grids_only(good()))
    assert result.problems == []
    assert result.geography is not None
    village = result.geography.by_code("341504100200")
    assert village.name == "洪集村" and village.kind == "village"
    assert shapely.equals(village.geometry, shapely.box(116.02, 31.86, 116.04, 31.88))
    assert shapely.equals(
        result.geography.by_code("341504100").geometry, shapely.box(116.02, 31.86, 116.06, 31.88)
    )


def test_input_forms_and_lenient_details_are_accepted() -> None:
    fc = good()
    set_geometry(fc, "341504100200001", {
        "type": "MultiPolygon", "coordinates": [rect(116.02, 116.03)["coordinates"]],
    })  # fmt: skip
    feature(fc, "341504100200002")["properties"]["code"] = 341504100200002
    text = json.dumps(fc, ensure_ascii=False)
    forms = (fc, text, "\ufeff" + text, text.encode("utf-8"), "\ufeff".encode() + text.encode())
    for form in forms:
        result = parse_import(form)
        assert result.problems == [], form if isinstance(form, dict) else None
    assert parse_import(fc).geography.by_code("341504100200002").kind == "grid"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("mutate", "code", "index", "fragment"),
    [pytest.param(*case[1:], id=case[0]) for case in BROKEN],
)
def test_each_problem_is_found(
    mutate: Callable[[FC], Any], code: str | None, index: int, fragment: str
) -> None:
    result = parse_import(mutate(good()))
    assert result.geography is None
    assert not result.ok
    matches = [p for p in result.problems if fragment in p.reason]
    assert matches, _messages(result)
    problem = matches[0]
    assert problem.code == code
    assert problem.feature_index == index
    if code is not None:
        assert code in str(problem)
    if index >= 0:
        assert str(problem).startswith(f"feature {index}")


def test_problem_text_names_the_feature_and_code() -> None:
    result = parse_import(set_geometry(good(), "341504100200001", BOWTIE))
    assert _messages(result) == [
        "feature 7 (341504100200001): self-intersecting polygon at (116.025, 31.87)"
    ]
    assert str(Problem(None, -1, "not valid JSON")) == "input: not valid JSON"
    assert str(Problem("341504001", -1, "odd")) == "341504001: odd"
    assert str(Problem(None, 3, "no code")) == "feature 3: no code"


def test_every_problem_is_reported_not_just_the_first() -> None:
    fc = good()
    mapped(fc, "341504100200", lambda x, y: [y, x])  # f, on a village feature
    set_geometry(fc, "341504001001001", BOWTIE)  # a
    drop_prop(fc, "341504001001002", "town_name")  # e
    set_geometry(fc, "341504100200001", rect(116.02, 116.035))  # d
    set_props(fc, "341504100201001", town_code="341504001")  # h
    set_props(fc, "341504100201002", code="341504100201001")  # b
    result = parse_import(fc)
    assert result.geography is None
    text = "\n".join(_messages(result))
    for expected in (
        "feature 3 (341504100200): longitude and latitude look swapped",
        "feature 5 (341504001001001): self-intersecting polygon",
        "feature 6 (341504001001002): missing property town_name",
        "feature 8 (341504100200002): overlaps grid 341504100200001 (feature 7)",
        "feature 9 (341504100201001): village 341504100201 belongs to town 341504100",
        "feature 10 (341504100201001): duplicate code",
    ):
        assert expected in text
    indices = [p.feature_index for p in result.problems]
    assert indices == sorted(indices)


def test_demo_export_validates_and_a_single_overlap_is_found_fast() -> None:
    geography = build_demo_geography(2022)
    fc = json.loads(dumps(to_feature_collection(geography, "grid")))
    started = time.perf_counter()
    assert parse_import(fc).problems == []
    victim = fc["features"][100]
    code = victim["properties"]["code"]
    grown = shapely.geometry.shape(victim["geometry"]).buffer(0.0003, join_style="mitre")
    victim["geometry"] = shapely.geometry.mapping(grown)
    result = parse_import(copy.deepcopy(fc))
    assert time.perf_counter() - started < 5.0
    assert result.geography is None
    assert len(result.problems) >= 3  # one per neighbour
    for problem in result.problems:
        assert code in str(problem) and "overlaps grid" in problem.reason
