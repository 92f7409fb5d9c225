"""Which areas a login may see: the pure rules, shared by the web layer and the data layer.

A district login sees everything; a town login its town and every village and grid in it; a
village login its village and its grids. The rules work on codes only, so any query function can
enforce them on an area it has resolved (``datasources.kpi.AreaRef`` fits ``Area``), whatever
the user interface offered: Dash accepts forged callback requests with any inputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

ROLES = ("district", "town", "village")


class Area(Protocol):
    """An area as the data layer resolves it (``datasources.kpi.AreaRef`` is one)."""

    @property
    def level(self) -> str: ...
    @property
    def code(self) -> str: ...
    @property
    def town_code(self) -> str | None: ...
    @property
    def village_code(self) -> str | None: ...


class OutOfScope(PermissionError):
    """An area the login may not see (or that does not exist, which is not told apart)."""


@dataclass(frozen=True)
class Scope:
    """What a login may see: its role and, below the district, its town or village code."""

    role: str
    area_code: str | None = None

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise ValueError(f"unknown role {self.role!r}; expected one of {', '.join(ROLES)}")
        if self.role == "district" and self.area_code is not None:
            raise ValueError("a district scope takes no area code")
        if self.role != "district" and not self.area_code:
            raise ValueError(f"a {self.role} scope needs an area code")


def allowed(scope: Scope, area: Area) -> bool:
    """Return whether ``scope`` may see ``area``."""
    if scope.role == "district":
        return True
    if scope.role == "town":
        return area.level in ("town", "village", "grid") and area.town_code == scope.area_code
    return area.level in ("village", "grid") and area.village_code == scope.area_code


def require(scope: Scope, area: Area) -> None:
    """Raise ``OutOfScope`` unless ``scope`` may see ``area``."""
    if not allowed(scope, area):
        raise OutOfScope(f"area {area.level} {area.code} is outside this login's area")


def own_filter(scope: Scope) -> dict[str, str]:
    """Return the town/village filter that selects the scope's own area (empty for the district)."""
    if scope.role == "town":
        assert scope.area_code is not None
        return {"town": scope.area_code}
    if scope.role == "village":
        assert scope.area_code is not None
        return {"village": scope.area_code}
    return {}
