"""Immutable areas of the district hierarchy: district, towns, villages and grids."""

from __future__ import annotations

from dataclasses import dataclass, field

from shapely.geometry import Polygon

LEVELS: tuple[str, ...] = ("district", "town", "village", "grid")


@dataclass(frozen=True)
class Area:
    """One administrative or governance area with its WGS84 outline."""

    level: str
    code: str
    name: str
    name_en: str
    kind: str
    parent_code: str | None
    town_code: str | None
    village_code: str | None
    geometry: Polygon

    @property
    def centroid(self) -> tuple[float, float]:
        """Return a (lon, lat) label point that is guaranteed to lie inside the area."""
        point = self.geometry.representative_point()
        return round(point.x, 6), round(point.y, 6)

    @property
    def area_deg2(self) -> float:
        """Return the planar area in square degrees (cheap, for relative comparisons)."""
        return float(self.geometry.area)


@dataclass(frozen=True)
class Geography:
    """The whole hierarchy; every tuple is sorted by code."""

    district: Area
    towns: tuple[Area, ...]
    villages: tuple[Area, ...]
    grids: tuple[Area, ...]
    _index: dict[str, Area] = field(init=False, repr=False, compare=False, hash=False)
    _children: dict[str, tuple[Area, ...]] = field(
        init=False, repr=False, compare=False, hash=False
    )

    def __post_init__(self) -> None:
        index: dict[str, Area] = {}
        children: dict[str, list[Area]] = {}
        for area in (self.district, *self.towns, *self.villages, *self.grids):
            index[area.code] = area
            if area.parent_code is not None:
                children.setdefault(area.parent_code, []).append(area)
        # The dataclass is frozen, so the lookup tables are attached behind its back once.
        object.__setattr__(self, "_index", index)
        object.__setattr__(
            self,
            "_children",
            {code: tuple(sorted(kids, key=lambda a: a.code)) for code, kids in children.items()},
        )

    def by_code(self, code: str) -> Area:
        """Return the area with this code, or raise KeyError."""
        return self._index[code]

    def children(self, code: str) -> tuple[Area, ...]:
        """Return the direct children of the area with this code, sorted by code."""
        if code not in self._index:
            raise KeyError(code)
        return self._children.get(code, ())

    def level(self, level: str) -> tuple[Area, ...]:
        """Return all areas of one level ("district", "town", "village" or "grid")."""
        if level == "district":
            return (self.district,)
        if level == "town":
            return self.towns
        if level == "village":
            return self.villages
        if level == "grid":
            return self.grids
        raise ValueError(f"unknown level {level!r}; expected one of {', '.join(LEVELS)}")

    def __contains__(self, code: object) -> bool:
        return code in self._index
