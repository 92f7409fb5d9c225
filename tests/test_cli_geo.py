"""`wushi geo export` and `wushi geo import` through the real command line."""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path

import pytest
import shapely
from click.testing import CliRunner
from sqlalchemy import text

from dashboard.cli import main
from datasources.db import make_engine
from geo.validate import parse_import

TABLES = ("towns", "villages", "grids", "staff", "households", "devices")


def wushi(url: str, tmp_path: Path, *args: str):
    env = {"WUSHI_DATABASE_URL": url, "WUSHI_VAR_DIR": str(tmp_path / "var")}
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


@pytest.fixture
def seeded(database_url: str, tmp_path: Path) -> str:
    for args in (["db", "upgrade"], ["seed", "--demo", "--no-history"]):
        result = wushi(database_url, tmp_path, *args)
        assert result.exit_code == 0, result.output
    return database_url


def snapshot(url: str) -> str:
    """Hash every row of the geography and people tables, to see that nothing changed."""
    engine = make_engine(url)
    digest = hashlib.sha256()
    with engine.connect() as conn:
        for table in TABLES:
            key = "code" if table in ("towns", "villages", "grids") else "id"
            for row in conn.execute(text(f"SELECT * FROM {table} ORDER BY {key}")):
                digest.update(repr(tuple(row)).encode())
    engine.dispose()
    return digest.hexdigest()


def export(url: str, tmp_path: Path, level: str) -> dict:
    result = wushi(url, tmp_path, "geo", "export", "--level", level)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_export_at_each_level(seeded, tmp_path):
    grids = export(seeded, tmp_path, "grid")
    villages = export(seeded, tmp_path, "village")
    towns = export(seeded, tmp_path, "town")
    assert len(grids["features"]) == 607
    assert len(villages["features"]) == 77
    assert len(towns["features"]) == 6
    props = [f["properties"] for f in grids["features"]]
    assert len({p["village_code"] for p in props}) == 77
    assert len({p["town_code"] for p in props}) == 6
    assert all(p["level"] == "grid" and p["code"].startswith(p["village_code"]) for p in props)
    assert all(
        {"level", "code", "name", "town_code"} <= f["properties"].keys()
        for f in villages["features"]
    )
    assert {f["properties"]["name"] for f in towns["features"]} == {
        "史河街道",
        "平岗街道",
        "三元镇",
        "孙岗镇",
        "洪集镇",
        "姚李镇",
    }
    # The exported layers pass the import invariants: valid, nested, no gaps or overlaps.
    combined = {
        "type": "FeatureCollection",
        "features": towns["features"] + villages["features"] + grids["features"],
    }
    result = parse_import(json.dumps(combined))
    assert result.problems == [] and result.geography is not None
    district = shapely.union_all([shapely.geometry.shape(f["geometry"]) for f in towns["features"]])
    cells = shapely.union_all([shapely.geometry.shape(f["geometry"]) for f in grids["features"]])
    assert cells.symmetric_difference(district).area < 1e-9 * district.area


def _all_levels(url: str, tmp_path: Path) -> dict:
    features = []
    for level in ("town", "village", "grid"):
        features += export(url, tmp_path, level)["features"]
    return {"type": "FeatureCollection", "features": features}


def _grid(fc: dict, k: int = 0) -> dict:
    return [f for f in fc["features"] if f["properties"]["level"] == "grid"][k]


def _break(fc: dict, how: str) -> tuple[str | bytes, str]:
    """Return a broken copy of ``fc`` and the text the error must contain."""
    fc = copy.deepcopy(fc)
    g = _grid(fc, 5)
    code = g["properties"]["code"]
    ring = g["geometry"]["coordinates"][0]
    if how == "self_intersecting":
        x0, y0 = ring[0]
        g["geometry"]["coordinates"] = [
            [[x0, y0], [x0 + 0.01, y0 + 0.01], [x0 + 0.01, y0], [x0, y0 + 0.01], [x0, y0]]
        ]
        return json.dumps(fc), code
    if how == "duplicate":
        _grid(fc, 6)["properties"]["code"] = code
        return json.dumps(fc), "duplicate code"
    if how == "outside_village":
        g["geometry"]["coordinates"] = [
            [[x + 0.03, y] for x, y in r] for r in g["geometry"]["coordinates"]
        ]
        return json.dumps(fc), "outside its village"
    if how == "overlap":
        bigger = shapely.geometry.shape(g["geometry"]).buffer(0.002, join_style="mitre")
        g["geometry"] = shapely.geometry.mapping(shapely.set_precision(bigger, 1e-6))
        return json.dumps(fc), "overlaps grid"
    if how == "missing_property":
        del g["properties"]["village_code"]
        return json.dumps(fc), "missing property village_code"
    if how == "swapped_axes":
        g["geometry"]["coordinates"] = [
            [[y, x] for x, y in r] for r in g["geometry"]["coordinates"]
        ]
        return json.dumps(fc), "swapped"
    if how == "projected_metres":
        g["geometry"]["coordinates"] = [
            [[x * 111_320, y * 110_540] for x, y in r] for r in g["geometry"]["coordinates"]
        ]
        return json.dumps(fc), "projected metres"
    if how == "wrong_town":
        g["properties"]["town_code"] = (
            "341504002" if not code.startswith("341504002") else "341504001"
        )
        return json.dumps(fc), "town"
    if how == "not_json":
        return b'{"type": "FeatureCollection", "features": [', "not valid JSON"
    raise AssertionError(how)


BROKEN = [
    "self_intersecting",
    "duplicate",
    "outside_village",
    "overlap",
    "missing_property",
    "swapped_axes",
    "projected_metres",
    "wrong_town",
    "not_json",
]


def test_broken_files_are_refused_whole_and_change_nothing(seeded, tmp_path):
    good = _all_levels(seeded, tmp_path)
    before = snapshot(seeded)
    for how in BROKEN:
        body, expected = _break(good, how)
        path = tmp_path / f"{how}.geojson"
        path.write_bytes(body if isinstance(body, bytes) else body.encode())
        result = wushi(seeded, tmp_path, "geo", "import", str(path))
        assert result.exit_code != 0, how
        assert expected in result.output, (how, result.output)
        assert "nothing was imported" in result.output
        assert snapshot(seeded) == before, how


def test_good_file_replaces_the_geography(seeded, tmp_path):
    good = _all_levels(seeded, tmp_path)
    g = _grid(good, 3)
    g["properties"]["name"] = "测试网格"
    path = tmp_path / "good.geojson"
    path.write_text(json.dumps(good), encoding="utf-8")
    result = wushi(seeded, tmp_path, "geo", "import", str(path))
    assert result.exit_code == 0, result.output
    assert "imported 6 towns, 77 villages, 607 grids" in result.output
    names = {
        f["properties"]["code"]: f["properties"]["name"]
        for f in export(seeded, tmp_path, "grid")["features"]
    }
    assert names[g["properties"]["code"]] == "测试网格"


def test_import_that_drops_grids_in_use_needs_replace_all(seeded, tmp_path):
    good = _all_levels(seeded, tmp_path)
    small = parse_import(
        Path(__file__).parent.joinpath("data", "geo", "small_good.geojson").read_bytes()
    )
    assert small.geography is not None
    path = tmp_path / "small.geojson"
    path.write_bytes(
        Path(__file__).parent.joinpath("data", "geo", "small_good.geojson").read_bytes()
    )
    before = snapshot(seeded)
    refused = wushi(seeded, tmp_path, "geo", "import", str(path))
    assert refused.exit_code != 0 and "--replace-all" in refused.output
    assert snapshot(seeded) == before
    done = wushi(seeded, tmp_path, "geo", "import", "--replace-all", str(path))
    assert done.exit_code == 0, done.output
    assert len(export(seeded, tmp_path, "grid")["features"]) == len(small.geography.grids)
    assert len(good["features"]) == 690
