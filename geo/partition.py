"""Deterministic demo partition of Yeji District into 6 towns, 77 villages and 607 grids.

Real town, village and grid boundaries are not public, so the demo invents plausible ones inside
the real district outline (``geo/data/yeji_district_boundary.geojson``):

* towns: the two subdistricts 史河街道 and 平岗街道 form a small urban core (about 10% of the
  district) on the western edge, on the Shi River; 洪集镇 and 姚李镇 lie to the north, 三元镇
  and 孙岗镇 to the south and east. The town layout does not depend on the seed.
* villages and grids: seed points drawn with ``numpy.random.default_rng(seed)`` by rejection
  sampling inside the parent, relaxed by a few Lloyd iterations, then Voronoi cells clipped to
  the parent. Communities are small and hold more grids, so grids are denser in the urban core.
* finally all grid outlines are noded and snapped together to a 1e-6 degree grid and rebuilt
  as faces, so villages are exact unions of their grids and towns exact unions of villages.

Codes (see ``geo.codes``) follow the shape of the national statistical division codes but are
NOT the official ones: district ``341504``; town = district + 3 digits (subdistricts ``001``,
``002``; towns ``100``-``103``); village = town + 3 digits (communities ``001``-``199``,
villages ``200``-``399``); grid = village + 3 digits ``001``... e.g. ``341504102201003`` is
桥元村第3网格 in 三元镇.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache

import numpy as np
import shapely
from shapely.geometry import MultiPoint, Point, Polygon

import geo.codes as codes
from geo.boundary import load_district_boundary
from geo.model import Area, Geography
from geo.names import (
    DISTRICT_NAME,
    DISTRICT_NAME_EN,
    TOWNS,
    TownSpec,
    grid_name,
    grid_name_en,
    village_name_en,
)

GRID_SIZE = 1e-6
TOTAL_GRIDS = 607
LLOYD_ITERATIONS = 10

# Work in a locally isotropic plane (longitude scaled by cos(latitude)) so that Voronoi cells are
# not stretched east-west; the transform is linear, so it maps back exactly enough.
_LAT0 = 31.87
_XSCALE = math.cos(math.radians(_LAT0))

# The urban core is a lobed disc centred on the Shi River bank, sized to this share of the
# district; Yeji's built-up area sits on the river at about 115.91 E, 31.86 N.
_CORE_CENTRE = (115.897, 31.860)
_CORE_SHARE = 0.10
# Fixed town seeds (lon, lat), keyed by town number. Each town owns a few Voronoi seeds so that
# town borders bend like real ones instead of running dead straight; the first seed is its centre.
_TOWN_SEEDS: dict[int, tuple[tuple[float, float], ...]] = {
    1: ((115.905, 31.876), (115.928, 31.884)),  # 史河街道: riverside, north half of the core
    2: ((115.925, 31.845), (115.905, 31.830)),  # 平岗街道: south-east half of the core
    100: ((115.975, 31.945), (116.010, 31.915), (115.955, 31.905)),  # 洪集镇: north-west
    101: ((116.115, 31.905), (116.075, 31.935), (116.165, 31.900)),  # 姚李镇: north-east
    102: ((115.990, 31.800), (116.035, 31.830), (115.970, 31.840)),  # 三元镇: south-west
    103: ((116.160, 31.815), (116.115, 31.790), (116.180, 31.860)),  # 孙岗镇: south-east
}

# Grids per community cycle through 8..14 and per village through 5..9; the totals are then
# nudged so that the district has exactly TOTAL_GRIDS grids.
_COMMUNITY_PATTERN = (12, 10, 13, 9, 11, 14, 8, 12, 10, 11, 13, 9, 12, 10, 11, 8, 14)
_VILLAGE_PATTERN = (7, 5, 8, 6, 9, 7, 6, 8, 5, 7, 9, 6)


def _to_plane(geometry: shapely.Geometry) -> shapely.Geometry:
    return shapely.transform(geometry, lambda xy: np.column_stack([xy[:, 0] * _XSCALE, xy[:, 1]]))


def _from_plane(geometry: shapely.Geometry) -> shapely.Geometry:
    return shapely.transform(geometry, lambda xy: np.column_stack([xy[:, 0] / _XSCALE, xy[:, 1]]))


def _plane_point(lon: float, lat: float) -> tuple[float, float]:
    return lon * _XSCALE, lat


def _parts(geometry: shapely.Geometry) -> list[Polygon]:
    return [p for p in shapely.get_parts(geometry) if isinstance(p, Polygon) and not p.is_empty]


def _voronoi_cells(
    parent: Polygon, seeds: np.ndarray, owners: Sequence[int] | None = None
) -> list[Polygon]:
    """Clip the Voronoi cells of seeds to parent, then make every cell a single polygon.

    With owners, seed i belongs to cell owners[i] and a cell is the union of its seeds' regions
    (cells are numbered 0..max(owners)); the first seed of each cell is its anchor. A clipped cell
    can fall apart where the parent outline is concave; the pieces away from the anchor are handed
    to the neighbour they share the longest edge with.
    """
    owner = list(range(len(seeds))) if owners is None else list(owners)
    diagram = shapely.voronoi_polygons(MultiPoint(seeds), extend_to=parent, ordered=True)
    regions = shapely.intersection(shapely.get_parts(diagram), parent)
    n = max(owner) + 1
    anchors = [Point(seeds[owner.index(k)]) for k in range(n)]
    # Snap to a fine grid while merging so float noise on shared edges leaves no sliver.
    cells: list[shapely.Geometry] = [
        shapely.union_all(
            [r for r, o in zip(regions, owner, strict=True) if o == k], grid_size=1e-10
        )
        if owner.count(k) > 1
        else regions[owner.index(k)]
        for k in range(n)
    ]
    orphans: list[Polygon] = []
    for k, cell in enumerate(cells):
        parts = _parts(cell)
        if len(parts) <= 1:
            continue
        keep = max(parts, key=lambda p: (p.distance(anchors[k]) == 0.0, p.area))
        cells[k] = keep
        orphans.extend(p for p in parts if p is not keep)
    # Big pieces first so that small ones can find them as neighbours afterwards.
    for orphan in sorted(orphans, key=lambda p: -p.area):
        halo = orphan.buffer(1e-9)
        shared = [
            halo.intersection(c.boundary).length if c.intersects(halo) else 0.0 for c in cells
        ]
        j = int(np.argmax(shared))
        cells[j] = shapely.union_all([cells[j], orphan], grid_size=1e-10)
    return [_largest_part(c) for c in cells]


def _largest_part(geometry: shapely.Geometry) -> Polygon:
    return max(_parts(geometry), key=lambda p: p.area)


def _sample_inside(parent: Polygon, n: int, rng: np.random.Generator) -> np.ndarray:
    """Draw n uniform points inside parent by rejection sampling."""
    minx, miny, maxx, maxy = parent.bounds
    shapely.prepare(parent)
    found: list[np.ndarray] = []
    count = 0
    while count < n:
        batch = rng.uniform((minx, miny), (maxx, maxy), size=(max(4 * n, 16), 2))
        inside = batch[shapely.contains_xy(parent, batch[:, 0], batch[:, 1])]
        found.append(inside)
        count += len(inside)
    return np.concatenate(found)[:n]


def _relaxed_cells(parent: Polygon, n: int, rng: np.random.Generator) -> list[Polygon]:
    """Split parent into n similar-sized cells: random seeds, Lloyd-relaxed Voronoi."""
    seeds = _sample_inside(parent, n, rng)
    cells = _voronoi_cells(parent, seeds)
    for _ in range(LLOYD_ITERATIONS):
        moved = []
        for cell in cells:
            centre = cell.centroid
            if not parent.contains(centre):
                centre = cell.representative_point()
            moved.append((centre.x, centre.y))
        seeds = np.array(moved)
        cells = _voronoi_cells(parent, seeds)
    # Number cells from north to south (west to east within a row) so codes read like a map.
    keys = [(-round(c.centroid.y, 3), c.centroid.x) for c in cells]
    return [cells[i] for i in sorted(range(n), key=lambda i: keys[i])]


def _core_shape(scale: float) -> Polygon:
    cx, cy = _plane_point(*_CORE_CENTRE)
    angles = np.linspace(0.0, 2.0 * math.pi, 96, endpoint=False)
    radius = scale * (1.0 + 0.10 * np.sin(3 * angles + 0.7) + 0.06 * np.cos(5 * angles + 1.3))
    return Polygon(np.column_stack([cx + radius * np.cos(angles), cy + radius * np.sin(angles)]))


def _town_cells(district: Polygon) -> dict[int, Polygon]:
    """Lay out the six towns (in the plane): an urban core on the river, four rural towns."""
    target = _CORE_SHARE * district.area
    low, high = 0.0, 0.2
    for _ in range(40):
        mid = (low + high) / 2.0
        if _largest_part(_core_shape(mid).intersection(district)).area < target:
            low = mid
        else:
            high = mid
    core = _largest_part(_core_shape(high).intersection(district))
    rural = _largest_part(district.difference(core, grid_size=1e-10))
    core = _largest_part(district.difference(rural, grid_size=1e-10))

    urban_numbers = [t.number for t in TOWNS if t.kind == "subdistrict"]
    rural_numbers = [t.number for t in TOWNS if t.kind == "town"]
    cells: dict[int, Polygon] = {}
    for numbers, parent in ((urban_numbers, core), (rural_numbers, rural)):
        seeds = np.array([_plane_point(*p) for n in numbers for p in _TOWN_SEEDS[n]])
        owners = [k for k, n in enumerate(numbers) for _ in _TOWN_SEEDS[n]]
        cells.update(zip(numbers, _voronoi_cells(parent, seeds, owners), strict=True))
    return cells


def _grid_counts() -> dict[tuple[int, int], int]:
    """Return the number of grids for each (town number, village index); they sum to 607."""
    counts: dict[tuple[int, int], int] = {}
    c = v = 0
    for town in TOWNS:
        for i in range(len(town.villages)):
            if town.kind == "subdistrict":
                counts[(town.number, i)] = _COMMUNITY_PATTERN[c % len(_COMMUNITY_PATTERN)]
                c += 1
            else:
                counts[(town.number, i)] = _VILLAGE_PATTERN[v % len(_VILLAGE_PATTERN)]
                v += 1
    keys = sorted(counts)
    step = 1 if sum(counts.values()) < TOTAL_GRIDS else -1
    k = 0
    while sum(counts.values()) != TOTAL_GRIDS:
        key = keys[k % len(keys)]
        low, high = (8, 14) if key[0] < 100 else (5, 9)
        if low <= counts[key] + step <= high:
            counts[key] += step
        k += 1
    return counts


def _snap_coverage(cells: Sequence[Polygon]) -> list[Polygon]:
    """Snap a near-exact coverage to the 1e-6 degree grid so that shared edges match exactly.

    All outlines are noded together at that precision and polygonized; every resulting face goes
    to the input cell it overlaps most, so T-junctions and float noise leave no gaps or overlaps.
    """
    lines = shapely.union_all(
        shapely.boundary(np.asarray(cells, dtype=object)), grid_size=GRID_SIZE
    )
    faces = _parts(shapely.polygonize(shapely.get_parts(lines)))
    tree = shapely.STRtree(cells)
    owned: list[list[Polygon]] = [[] for _ in cells]
    for face in faces:
        candidates = tree.query(face, predicate="intersects")
        if len(candidates) == 0:
            candidates = np.array([tree.query_nearest(face)[0]])
        overlap = shapely.area(
            shapely.intersection(np.asarray(cells, dtype=object)[candidates], face)
        )
        owned[int(candidates[int(np.argmax(overlap))])].append(face)
    return [shapely.union_all(faces, grid_size=GRID_SIZE) for faces in owned]


def _merge_stray_parts(groups: list[list[int]], polygons: list[shapely.Geometry]) -> None:
    """Hand every detached piece of a polygon to the sibling it shares the longest edge with."""
    for members in groups:
        for i in members:
            parts = _parts(polygons[i])
            if len(parts) <= 1:
                continue
            main = max(parts, key=lambda p: p.area)
            polygons[i] = main
            for part in parts:
                if part is main:
                    continue
                shared = [
                    part.boundary.intersection(polygons[j].boundary).length if j != i else -1.0
                    for j in members
                ]
                j = members[int(np.argmax(shared))]
                polygons[j] = shapely.union_all([polygons[j], part], grid_size=GRID_SIZE)


def _single(geometry: shapely.Geometry, what: str) -> Polygon:
    if not isinstance(geometry, Polygon) or geometry.is_empty or not geometry.is_valid:
        raise RuntimeError(f"demo partition produced a bad {what}: {geometry.geom_type}")
    return geometry


@lru_cache(maxsize=8)
def build_demo_geography(seed: int = 2022) -> Geography:
    """Build the demo district, towns, villages and grids deterministically from seed."""
    rng = np.random.default_rng(seed)
    district_plane = _to_plane(load_district_boundary())
    town_cells = _town_cells(district_plane)
    counts = _grid_counts()

    # Float cells in the plane, with the labels needed to build Areas later.
    grid_cells: list[Polygon] = []
    grid_keys: list[tuple[TownSpec, int, int]] = []
    for town in TOWNS:
        village_cells = _relaxed_cells(town_cells[town.number], len(town.villages), rng)
        for index, village_cell in enumerate(village_cells):
            for g in range(counts[(town.number, index)]):
                grid_keys.append((town, index, g + 1))
            grid_cells.extend(_relaxed_cells(village_cell, counts[(town.number, index)], rng))

    snapped = _snap_coverage([_from_plane(c) for c in grid_cells])
    by_village: dict[tuple[int, int], list[int]] = {}
    for i, (town, index, _) in enumerate(grid_keys):
        by_village.setdefault((town.number, index), []).append(i)
    _merge_stray_parts(list(by_village.values()), snapped)

    district_code = codes.DISTRICT_CODE
    grids: list[Area] = []
    villages: list[Area] = []
    towns: list[Area] = []
    for town in TOWNS:
        t_code = codes.town_code(district_code, town.number)
        community_no = village_no = 0
        village_polygons = []
        for index, (v_name, pinyin) in enumerate(town.villages):
            kind = "community" if town.kind == "subdistrict" else "village"
            if kind == "community":
                community_no += 1
                v_code = codes.village_code(t_code, community_no)
            else:
                v_code = codes.village_code(t_code, 200 + village_no)
                village_no += 1
            v_name_en = village_name_en(pinyin, kind)
            members = by_village[(town.number, index)]
            for n, i in enumerate(members, start=1):
                grids.append(
                    Area(
                        level="grid",
                        code=codes.grid_code(v_code, n),
                        name=grid_name(v_name, n),
                        name_en=grid_name_en(v_name_en, n),
                        kind="grid",
                        parent_code=v_code,
                        town_code=t_code,
                        village_code=v_code,
                        geometry=_single(snapped[i], f"grid {v_code}/{n}"),
                    )
                )
            v_geometry = shapely.union_all([snapped[i] for i in members], grid_size=GRID_SIZE)
            village_polygons.append(v_geometry)
            villages.append(
                Area(
                    level="village",
                    code=v_code,
                    name=v_name,
                    name_en=v_name_en,
                    kind=kind,
                    parent_code=t_code,
                    town_code=t_code,
                    village_code=None,
                    geometry=_single(v_geometry, f"village {v_code}"),
                )
            )
        t_geometry = shapely.union_all(village_polygons, grid_size=GRID_SIZE)
        towns.append(
            Area(
                level="town",
                code=t_code,
                name=town.name,
                name_en=town.name_en,
                kind=town.kind,
                parent_code=district_code,
                town_code=None,
                village_code=None,
                geometry=_single(t_geometry, f"town {t_code}"),
            )
        )
    district = Area(
        level="district",
        code=district_code,
        name=DISTRICT_NAME,
        name_en=DISTRICT_NAME_EN,
        kind="district",
        parent_code=None,
        town_code=None,
        village_code=None,
        geometry=_single(
            shapely.union_all([t.geometry for t in towns], grid_size=GRID_SIZE), "district"
        ),
    )
    return Geography(
        district=district,
        towns=tuple(sorted(towns, key=lambda a: a.code)),
        villages=tuple(sorted(villages, key=lambda a: a.code)),
        grids=tuple(sorted(grids, key=lambda a: a.code)),
    )
