"""Validate an imported GeoJSON FeatureCollection of grids, all or nothing.

``parse_import`` reads the collection, checks every feature and every relation between features,
and returns either a complete ``Geography`` or every problem it found (never both). Grid
features carry ``code``, ``name``, ``village_code``, ``village_name``, ``town_code`` and
``town_name`` (``level`` is optional and defaults to ``"grid"``). Features with ``level`` "village"
or "town" are optional: when given, they are the village/town outlines and grids (villages) must
lie within them; when absent, a village is the union of its grids and a town of its villages.

Areas are compared with one tolerance: ``REL_TOLERANCE`` times the total area of all grids.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import shapely
from shapely.geometry import Polygon
from shapely.validation import explain_validity

from geo.boundary import load_district_boundary
from geo.codes import DISTRICT_CODE, CodeError, parse_code, town_kind, village_kind
from geo.model import Area, Geography
from geo.names import DISTRICT_NAME, DISTRICT_NAME_EN

REL_TOLERANCE = 1e-9
MAX_DISTANCE_KM = 10.0
# China's extent, used to tell longitude/latitude from swapped axes or other reference systems.
CHINA_LON = (73.0, 136.0)
CHINA_LAT = (3.0, 54.0)

_REQUIRED = {
    "grid": ("code", "name", "village_code", "village_name", "town_code", "town_name"),
    "village": ("code", "name", "town_code"),
    "town": ("code", "name"),
}
_VALIDITY = re.compile(r"^(?P<what>.*?)\s*\[(?P<x>\S+) (?P<y>\S+)\]$")
_KM_PER_DEG_LAT = 110.574
_KM_PER_DEG_LON_EQUATOR = 111.320


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an import; feature_index is -1 for problems of the whole input."""

    code: str | None
    feature_index: int
    reason: str

    def __str__(self) -> str:
        if self.feature_index >= 0:
            where = f"feature {self.feature_index}"
            if self.code:
                where += f" ({self.code})"
        else:
            where = self.code or "input"
        return f"{where}: {self.reason}"


@dataclass(frozen=True)
class ImportResult:
    """Either a geography (no problems) or the full list of problems (geography is None)."""

    geography: Geography | None
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Tell whether the import is valid."""
        return self.geography is not None


@dataclass
class _Feature:
    index: int
    level: str
    props: dict[str, Any]
    code: str | None
    geometry: Polygon | None


class _Collector:
    """Gathers problems so that every check runs and reports, not just the first."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def add(self, code: str | None, index: int, reason: str) -> None:
        self.problems.append(Problem(code, index, reason))


def parse_import(
    fc: dict[str, Any] | str | bytes, district_code: str = DISTRICT_CODE
) -> ImportResult:
    """Validate a GeoJSON FeatureCollection of grids and build a Geography if all of it is valid."""
    out = _Collector()
    raw = _load_collection(fc, out)
    if raw is None:
        return ImportResult(None, out.problems)

    features: list[_Feature] = []
    for index, feature in enumerate(raw):
        parsed = _read_feature(index, feature, district_code, out)
        if parsed is not None:
            features.append(parsed)
    features = _drop_duplicates(features, out)

    grids = [f for f in features if f.level == "grid"]
    villages = {f.code: f for f in features if f.level == "village" and f.code}
    towns = {f.code: f for f in features if f.level == "town" and f.code}
    if not grids:
        out.add(None, -1, "the collection holds no grid features")
        return ImportResult(None, _sorted(out.problems))

    total_area = sum(f.geometry.area for f in grids if f.geometry is not None)
    tolerance = REL_TOLERANCE * total_area

    _check_names(grids, villages, towns, out)
    _check_overlaps(grids, tolerance, out)
    if district_code == DISTRICT_CODE:
        _check_distance(grids, out)
    village_shapes = _village_shapes(grids, villages, tolerance, out)
    town_shapes = _town_shapes(grids, villages, towns, village_shapes, tolerance, out)

    district_shape = None
    if not out.problems:
        district_shape = _single_polygon(shapely.union_all(list(town_shapes.values())), tolerance)
        if district_shape is None:
            out.add(district_code, -1, "the towns do not join into one contiguous district")
    if out.problems or district_shape is None:
        return ImportResult(None, _sorted(out.problems))
    geography = _build(
        district_code, district_shape, grids, villages, towns, village_shapes, town_shapes
    )
    return ImportResult(geography, [])


def _sorted(problems: list[Problem]) -> list[Problem]:
    return sorted(problems, key=lambda p: p.feature_index if p.feature_index >= 0 else math.inf)


def _load_collection(fc: dict[str, Any] | str | bytes, out: _Collector) -> list[Any] | None:
    """Return the raw features of a FeatureCollection, or None after reporting why not."""
    data: Any = fc
    if isinstance(fc, bytes | bytearray):
        try:
            data = bytes(fc).decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            out.add(None, -1, f"not UTF-8 text, so not GeoJSON: {exc}")
            return None
    if isinstance(data, str):
        try:
            data = json.loads(data.removeprefix("\ufeff"))
        except json.JSONDecodeError as exc:
            out.add(None, -1, f"not valid JSON: {exc}")
            return None
    if not isinstance(data, dict) or data.get("type") != "FeatureCollection":
        found = data.get("type") if isinstance(data, dict) else type(data).__name__
        out.add(None, -1, f"not a GeoJSON FeatureCollection (found {found!r})")
        return None
    raw = data.get("features")
    if not isinstance(raw, list):
        out.add(None, -1, "the FeatureCollection has no 'features' list")
        return None
    return raw


def _text(value: Any) -> str | None:
    """Return a property as text; whole numbers are accepted for codes exported by spreadsheets."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and value.strip():
        return value
    return None


def _read_feature(index: int, feature: Any, district_code: str, out: _Collector) -> _Feature | None:
    """Check one feature's properties, code and geometry; return it unless it is unusable."""
    if not isinstance(feature, dict) or feature.get("type") != "Feature":
        out.add(None, index, "not a GeoJSON Feature")
        return None
    props = feature.get("properties")
    if not isinstance(props, dict):
        out.add(None, index, "the feature has no properties object")
        return None
    code = _text(props.get("code"))
    level = props.get("level") or "grid"
    if level == "district":
        return None
    if level not in _REQUIRED:
        out.add(code, index, f"unknown level {level!r}; expected 'grid', 'village' or 'town'")
        return None
    missing = [key for key in _REQUIRED[level] if _text(props.get(key)) is None]
    if missing:
        out.add(code, index, f"missing property {', '.join(missing)}")
    clean = {key: _text(value) if key.endswith("code") else value for key, value in props.items()}
    if code is not None:
        _check_code(code, level, clean, district_code, index, out)

    polygon, reason = _read_polygon(feature.get("geometry"))
    if reason is not None:
        out.add(code, index, reason)
    return _Feature(index, level, clean, code, polygon)


def _check_code(
    code: str, level: str, props: dict[str, Any], district_code: str, index: int, out: _Collector
) -> None:
    """Check the code against the scheme and against the parent codes given alongside it."""
    try:
        found, _, _ = parse_code(code, district_code)
    except CodeError as exc:
        out.add(code, index, f"code does not fit the scheme: {exc}")
        return
    if found != level:
        out.add(code, index, f"code {code} is a {found} code but the feature is a {level}")
        return
    village = props.get("village_code")
    town = props.get("town_code")
    if level == "grid" and village is not None:
        if _code_level(village, district_code) != "village":
            out.add(code, index, f"village_code {village!r} is not a 12-digit village code")
        elif not code.startswith(village):
            out.add(code, index, f"code {code} does not start with its village_code {village}")
    if level in ("grid", "village") and town is not None:
        if _code_level(town, district_code) != "town":
            out.add(code, index, f"town_code {town!r} is not a 9-digit town code")
            return
        own_village = code if level == "village" else village
        if own_village is not None and not own_village.startswith(town):
            out.add(
                code,
                index,
                f"village {own_village} belongs to town {own_village[:9]} by its code, "
                f"not to the given town_code {town}",
            )


def _code_level(code: str, district_code: str) -> str | None:
    """Return the level of a code, or None when it does not fit the scheme."""
    try:
        return parse_code(code, district_code)[0]
    except CodeError:
        return None


def _read_polygon(geometry: Any) -> tuple[Polygon | None, str | None]:
    """Turn a GeoJSON geometry into one valid WGS84 Polygon, or explain why it is not one."""
    if geometry is None:
        return None, "missing geometry"
    if not isinstance(geometry, dict):
        return None, "geometry is not a GeoJSON geometry object"
    kind = geometry.get("type")
    coordinates = geometry.get("coordinates")
    if kind == "Polygon":
        rings = coordinates
    elif kind == "MultiPolygon":
        if not isinstance(coordinates, list | tuple) or len(coordinates) != 1:
            parts = len(coordinates) if isinstance(coordinates, list | tuple) else 0
            return None, f"MultiPolygon with {parts} parts; each area must be a single polygon"
        rings = coordinates[0]
    else:
        return None, f"geometry type {kind!r} is not a Polygon"
    positions, reason = _positions(rings)
    if reason is not None:
        return None, reason
    reason = _check_axes(np.concatenate(positions))
    if reason is not None:
        return None, reason
    try:
        polygon = Polygon(positions[0], positions[1:])
    except (ValueError, shapely.errors.GEOSException) as exc:
        return None, f"invalid polygon: {exc}"
    if polygon.is_empty:
        return None, "empty polygon (no area)"
    if not polygon.is_valid:
        # A ring collapsed onto a line is "empty" to a user; a bow-tie is self-intersecting.
        if polygon.buffer(0).area == 0.0:
            return None, "empty polygon (no area)"
        return None, _validity_reason(explain_validity(polygon))
    if polygon.area == 0.0:
        return None, "empty polygon (no area)"
    return polygon, None


def _positions(rings: Any) -> tuple[list[np.ndarray], str | None]:
    """Read the rings' positions as float arrays, rejecting non-numbers and NaN."""
    if not isinstance(rings, list | tuple) or not rings:
        return [], "empty polygon (no rings)"
    arrays: list[np.ndarray] = []
    for ring in rings:
        if not isinstance(ring, list | tuple) or len(ring) < 4:
            return [], "a polygon ring needs at least 4 positions"
        for position in ring:
            if not isinstance(position, list | tuple) or len(position) < 2:
                return [], f"position {position!r} is not a [longitude, latitude] pair"
            for value in position[:2]:
                if isinstance(value, bool) or not isinstance(value, int | float):
                    return [], f"non-numeric coordinate {value!r}"
                if not math.isfinite(value):
                    return [], f"coordinate {value!r} is not a finite number"
        arrays.append(np.array([position[:2] for position in ring], dtype=float))
    return arrays, None


def _in_china(lon: np.ndarray, lat: np.ndarray) -> bool:
    return bool(
        np.all((lon >= CHINA_LON[0]) & (lon <= CHINA_LON[1]))
        and np.all((lat >= CHINA_LAT[0]) & (lat <= CHINA_LAT[1]))
    )


def _check_axes(xy: np.ndarray) -> str | None:
    """Explain coordinates that are not WGS84 longitude/latitude in China, or return None."""
    x, y = xy[:, 0], xy[:, 1]
    first = f"({x[0]:.6g}, {y[0]:.6g})"
    if _in_china(x, y):
        return None
    if _in_china(y, x):
        return (
            f"longitude and latitude look swapped (first position {first}); "
            "GeoJSON positions are [longitude, latitude]"
        )
    if np.any(np.abs(x) > 180.0) or np.any(np.abs(y) > 90.0):
        return (
            f"coordinates such as {first} look like projected metres, not WGS84 "
            "longitude/latitude degrees (EPSG:4326)"
        )
    return (
        f"coordinates such as {first} are outside China (longitude 73-136, latitude 3-54); "
        "expected WGS84 longitude/latitude"
    )


def _validity_reason(explanation: str) -> str:
    """Turn GEOS's explain_validity text into a short reason with the location."""
    match = _VALIDITY.match(explanation)
    if match is None:
        return f"invalid polygon: {explanation}"
    what = match["what"]
    x, y = float(match["x"]), float(match["y"])
    if what == "Self-intersection":
        text = "self-intersecting polygon"
    elif what == "Ring Self-intersection":
        text = "self-intersecting ring (a ring touches itself)"
    else:
        text = f"invalid polygon ({what.lower()})"
    return f"{text} at ({round(x, 6)}, {round(y, 6)})"


def _drop_duplicates(features: list[_Feature], out: _Collector) -> list[_Feature]:
    """Report every repeated code and keep only the first feature that uses it."""
    first: dict[str, _Feature] = {}
    kept: list[_Feature] = []
    for feature in features:
        if feature.code is None:
            kept.append(feature)
            continue
        if feature.code in first:
            earlier = first[feature.code]
            out.add(
                feature.code,
                feature.index,
                f"duplicate code {feature.code} (already used by feature {earlier.index})",
            )
            continue
        first[feature.code] = feature
        kept.append(feature)
    return kept


def _check_names(
    grids: list[_Feature],
    villages: dict[str, _Feature],
    towns: dict[str, _Feature],
    out: _Collector,
) -> None:
    """Check that a village or town code always comes with the same name and parent."""
    seen: dict[tuple[str, str], tuple[Any, int]] = {}
    for feature in villages.values():
        seen[("village_name", feature.code or "")] = (feature.props.get("name"), feature.index)
    for feature in towns.values():
        seen[("town_name", feature.code or "")] = (feature.props.get("name"), feature.index)
    for grid in grids:
        for key, code_key in (("village_name", "village_code"), ("town_name", "town_code")):
            code, name = grid.props.get(code_key), grid.props.get(key)
            if code is None or name is None:
                continue
            earlier = seen.setdefault((key, code), (name, grid.index))
            if earlier[0] != name:
                out.add(
                    grid.code,
                    grid.index,
                    f"{key} {name!r} for {code} differs from {earlier[0]!r} "
                    f"in feature {earlier[1]}",
                )
        village = villages.get(grid.props.get("village_code") or "")
        town = grid.props.get("town_code")
        if village is not None and town is not None and village.props.get("town_code") != town:
            out.add(
                grid.code,
                grid.index,
                f"town_code {town} differs from town_code {village.props.get('town_code')} of "
                f"its village feature {village.code} (feature {village.index})",
            )


def _km_per_degree(lat: float) -> tuple[float, float]:
    return _KM_PER_DEG_LON_EQUATOR * math.cos(math.radians(lat)), _KM_PER_DEG_LAT


def _to_km(geometry: shapely.Geometry, lat: float) -> shapely.Geometry:
    kx, ky = _km_per_degree(lat)
    return shapely.transform(geometry, lambda xy: xy * np.array([kx, ky]))


def _m2(area_deg2: float, lat: float) -> float:
    kx, ky = _km_per_degree(lat)
    return area_deg2 * kx * ky * 1e6


def _check_overlaps(grids: list[_Feature], tolerance: float, out: _Collector) -> None:
    """Report every pair of grids that overlap by more than the tolerance (STRtree pairs)."""
    shaped = [f for f in grids if f.geometry is not None]
    if len(shaped) < 2:
        return
    geoms = np.array([f.geometry for f in shaped], dtype=object)
    tree = shapely.STRtree(geoms)
    left, right = tree.query(geoms, predicate="intersects")
    keep = left < right
    left, right = left[keep], right[keep]
    areas = shapely.area(shapely.intersection(geoms[left], geoms[right]))
    for i, j, area in zip(left, right, areas, strict=True):
        if area <= tolerance:
            continue
        a, b = shaped[int(i)], shaped[int(j)]
        lat = b.geometry.centroid.y if b.geometry is not None else 0.0
        out.add(
            b.code,
            b.index,
            f"overlaps grid {a.code} (feature {a.index}) by about {_m2(float(area), lat):.0f} m²",
        )


def _check_distance(grids: list[_Feature], out: _Collector) -> None:
    """Report grids more than MAX_DISTANCE_KM from the shipped Yeji District outline."""
    district = load_district_boundary()
    lat = district.centroid.y
    district_km = _to_km(district, lat)
    for grid in grids:
        if grid.geometry is None:
            continue
        distance = _to_km(grid.geometry, lat).distance(district_km)
        if distance > MAX_DISTANCE_KM:
            out.add(
                grid.code,
                grid.index,
                f"lies {distance:.1f} km outside Yeji District (more than {MAX_DISTANCE_KM:g} km)",
            )


def _single_polygon(geometry: shapely.Geometry, tolerance: float) -> Polygon | None:
    """Return geometry as one Polygon, ignoring crumbs and pinholes below tolerance; else None."""
    parts = [
        p for p in shapely.get_parts(geometry) if isinstance(p, Polygon) and p.area > tolerance
    ]
    if len(parts) != 1:
        return None
    polygon = parts[0]
    holes = [ring for ring in polygon.interiors if Polygon(ring).area > tolerance]
    if len(holes) != len(polygon.interiors):
        polygon = Polygon(polygon.exterior, holes)
    return polygon


def _group(features: Iterable[_Feature], key: str) -> dict[str, list[_Feature]]:
    groups: dict[str, list[_Feature]] = {}
    for feature in features:
        value = feature.props.get(key)
        if value is not None:
            groups.setdefault(value, []).append(feature)
    return groups


def _check_within(
    code: str,
    index: int,
    shape: Polygon,
    parent: tuple[str, str, Polygon],
    tolerance: float,
    out: _Collector,
) -> None:
    """Report shape (of feature index) if more than the tolerance of it lies outside parent."""
    what, parent_code, parent_shape = parent
    outside = shape.difference(parent_shape).area
    if outside > tolerance:
        share = 100.0 * outside / shape.area
        out.add(
            code,
            index,
            f"lies outside its {what} {parent_code}: about {_m2(outside, shape.centroid.y):.0f} m² "
            f"({share:.1f}%) of it is outside",
        )


def _village_shapes(
    grids: list[_Feature], villages: dict[str, _Feature], tolerance: float, out: _Collector
) -> dict[str, Polygon]:
    """Return each village's outline: its feature's, or the union of its grids."""
    shapes: dict[str, Polygon] = {}
    by_village = _group(grids, "village_code")
    for code, village_feature in villages.items():
        if code not in by_village:
            out.add(code, village_feature.index, f"village {code} has no grids")
    for code, members in by_village.items():
        feature = villages.get(code)
        if villages and feature is None:
            out.add(
                code,
                members[0].index,
                f"grids name village {code}, but the collection's village features do not "
                "include it",
            )
            continue
        if feature is not None:
            if feature.geometry is None:
                continue
            shapes[code] = feature.geometry
            for grid in members:
                if grid.geometry is not None:
                    parent = ("village", code, feature.geometry)
                    _check_within(
                        grid.code or "", grid.index, grid.geometry, parent, tolerance, out
                    )
            continue
        if any(grid.geometry is None for grid in members):
            continue
        union = shapely.union_all([grid.geometry for grid in members])
        polygon = _single_polygon(union, tolerance)
        if polygon is None:
            pieces = len([p for p in shapely.get_parts(union) if p.area > tolerance])
            codes = ", ".join(sorted(g.code or "?" for g in members))
            out.add(
                code,
                members[0].index,
                f"the grids of village {code} are not contiguous: they form {pieces} separate "
                f"pieces (grids {codes})",
            )
            continue
        shapes[code] = polygon
    return shapes


def _town_shapes(
    grids: list[_Feature],
    villages: dict[str, _Feature],
    towns: dict[str, _Feature],
    village_shapes: dict[str, Polygon],
    tolerance: float,
    out: _Collector,
) -> dict[str, Polygon]:
    """Return each town's outline: its feature's, or the union of its villages."""
    village_town: dict[str, str] = {}
    for grid in grids:
        village, town = grid.props.get("village_code"), grid.props.get("town_code")
        if village is not None and town is not None:
            village_town.setdefault(village, town)
    for code, village_feature in villages.items():
        if village_feature.props.get("town_code") is not None:
            village_town.setdefault(code, village_feature.props["town_code"])
    by_town: dict[str, list[str]] = {}
    for village, town in village_town.items():
        by_town.setdefault(town, []).append(village)

    first_grid: dict[str, int] = {}
    for grid in grids:
        for key in ("village_code", "town_code"):
            if grid.props.get(key) is not None:
                first_grid.setdefault(grid.props[key], grid.index)

    shapes: dict[str, Polygon] = {}
    for code, town_feature in towns.items():
        if code not in by_town:
            out.add(code, town_feature.index, f"town {code} has no villages or grids")
    for code, members in sorted(by_town.items()):
        feature = towns.get(code)
        if towns and feature is None:
            out.add(
                code,
                first_grid.get(code, -1),
                f"grids name town {code}, but the collection's town features do not include it",
            )
            continue
        if feature is not None:
            if feature.geometry is None:
                continue
            shapes[code] = feature.geometry
            for village in members:
                if village in village_shapes:
                    child = villages.get(village)
                    index = child.index if child is not None else first_grid.get(village, -1)
                    parent = ("town", code, feature.geometry)
                    _check_within(village, index, village_shapes[village], parent, tolerance, out)
            continue
        if any(village not in village_shapes for village in members):
            continue
        union = shapely.union_all([village_shapes[v] for v in members])
        polygon = _single_polygon(union, tolerance)
        if polygon is None:
            out.add(
                code, first_grid.get(code, -1), f"the villages of town {code} are not contiguous"
            )
            continue
        shapes[code] = polygon
    return shapes


def _name_en(props: dict[str, Any], fallback: str) -> str:
    value = props.get("name_en")
    return value if isinstance(value, str) and value.strip() else fallback


def _build(
    district_code: str,
    district_shape: Polygon,
    grids: list[_Feature],
    villages: dict[str, _Feature],
    towns: dict[str, _Feature],
    village_shapes: dict[str, Polygon],
    town_shapes: dict[str, Polygon],
) -> Geography:
    """Assemble the Geography from features that passed every check."""
    town_areas: dict[str, Area] = {}
    village_areas: dict[str, Area] = {}
    grid_areas: list[Area] = []
    for grid in grids:
        props = grid.props
        v_code, t_code = props["village_code"], props["town_code"]
        assert grid.code is not None and grid.geometry is not None
        grid_areas.append(
            Area(
                level="grid",
                code=grid.code,
                name=str(props["name"]),
                name_en=_name_en(props, str(props["name"])),
                kind="grid",
                parent_code=v_code,
                town_code=t_code,
                village_code=v_code,
                geometry=grid.geometry,
            )
        )
        if v_code not in village_areas:
            feature = villages.get(v_code)
            v_props = feature.props if feature is not None else {}
            v_name = str(v_props.get("name") or props["village_name"])
            kind = v_props.get("kind")
            village_areas[v_code] = Area(
                level="village",
                code=v_code,
                name=v_name,
                name_en=_name_en(v_props, str(props.get("village_name_en") or v_name)),
                kind=kind if kind in ("community", "village") else village_kind(v_code),
                parent_code=t_code,
                town_code=t_code,
                village_code=None,
                geometry=village_shapes[v_code],
            )
        if t_code not in town_areas:
            feature = towns.get(t_code)
            t_props = feature.props if feature is not None else {}
            t_name = str(t_props.get("name") or props["town_name"])
            kind = t_props.get("kind")
            town_areas[t_code] = Area(
                level="town",
                code=t_code,
                name=t_name,
                name_en=_name_en(t_props, str(props.get("town_name_en") or t_name)),
                kind=kind if kind in ("subdistrict", "town") else town_kind(t_code),
                parent_code=district_code,
                town_code=None,
                village_code=None,
                geometry=town_shapes[t_code],
            )
    is_home = district_code == DISTRICT_CODE
    district = Area(
        level="district",
        code=district_code,
        name=DISTRICT_NAME if is_home else district_code,
        name_en=DISTRICT_NAME_EN if is_home else district_code,
        kind="district",
        parent_code=None,
        town_code=None,
        village_code=None,
        geometry=district_shape,
    )
    return Geography(
        district=district,
        towns=tuple(sorted(town_areas.values(), key=lambda a: a.code)),
        villages=tuple(sorted(village_areas.values(), key=lambda a: a.code)),
        grids=tuple(sorted(grid_areas, key=lambda a: a.code)),
    )
