"""What a wall screen's kiosk token may do: open /wall, read its data, nothing else.

A kiosk may GET ``/wall``, Dash's layout and callback list and the map's GeoJSON, open the live
socket, and run the callbacks that write only to components of the wall. Which components
those are is a value, ``KioskGuard.from_layout``, built by ``dashboard/web.py::create_web``
from the app's wall layout, so this module needs neither the layouts nor the app.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from dashboard.dash_requests import DASH_CALLBACK_PATH, DASH_SOCKET_PATH, ASGIScope
from layouts.i18n import both

WALL_PATH = "/wall"


KIOSK_GET_PATHS = frozenset(
    {
        WALL_PATH,
        "/_dash-layout",
        "/_dash-dependencies",
        "/api/v1/grids.geojson",
        "/api/v1/villages.geojson",
        "/api/v1/towns.geojson",
    }
)
KIOSK_ONLY_WALL = both("kiosk.wall_only")
KIOSK_INVALID = both("kiosk.invalid")


def page_path(path: str) -> str:
    """Return a request path without its trailing slash (``/`` stays ``/``)."""
    return path.rstrip("/") or "/"


def kiosk_param(scope: ASGIScope) -> bool:
    """Return whether the request's query names a kiosk token (``/wall?kiosk=TOKEN``)."""
    query = scope.get("query_string", b"").decode("latin-1")
    return any(k == "kiosk" for k, _ in parse_qsl(query, keep_blank_values=True))


@dataclass(frozen=True)
class KioskGuard:
    """The wall's component ids, and the rule of what a kiosk may request with them.

    ``plain`` holds the wall's string ids (with the page's shell), ``dicts`` its pattern-matching
    ids; ``url_id`` is the id of the page's ``dcc.Location``, whose pathname a kiosk's callback
    must report as ``/wall``. The default has no ids: every kiosk callback is refused.
    """

    plain: frozenset[str] = frozenset()
    dicts: tuple[dict[str, Any], ...] = ()
    url_id: str = "url"

    @classmethod
    def from_layout(cls, *trees: Any, url_id: str) -> KioskGuard:
        """Collect the ids of the component trees a wall screen shows."""
        plain: set[str] = set()
        dicts: list[dict[str, Any]] = []
        for tree in trees:
            for component in [tree, *tree._traverse()]:
                ident = getattr(component, "id", None)
                if isinstance(ident, str):
                    plain.add(ident)
                elif isinstance(ident, dict):
                    dicts.append(ident)
        return cls(frozenset(plain), tuple(dicts), url_id)

    def refusal(self, kind: str, method: str, path: str, body: bytes | None) -> int:
        """Return 0 if a kiosk may make this request, 204 if it has nothing to do, else 403.

        A kiosk may open ``/wall``, load Dash's layout and callback list, the map's GeoJSON, the
        live socket, and run the callbacks that write only to components of the wall (so no
        export, no table, no other page's chart, no audit log), with ``/wall`` as the page
        wherever a callback is told the page. Everything else is refused.
        """
        if kind == "websocket":
            return 0 if path == DASH_SOCKET_PATH else 403
        if method in ("GET", "HEAD"):
            return 0 if page_path(path) in KIOSK_GET_PATHS else 403
        if method == "POST" and path == DASH_CALLBACK_PATH and body is not None:
            return self._callback_refusal(body)
        return 403

    def _callback_refusal(self, body: bytes) -> int:
        try:
            request = json.loads(body)
        except ValueError:
            return 403
        output = request.get("output") if isinstance(request, dict) else None
        if not isinstance(output, str):
            return 403
        plain, dicts = self.plain, self.dicts
        parts = output[2:-2].split("...") if output.startswith("..") else [output]
        patterns = []
        for part in parts:
            ident, _, _prop = part.rpartition(".")
            if ident.startswith("{"):
                try:
                    pattern = json.loads(ident)
                except ValueError:
                    return 403
                if not isinstance(pattern, dict):
                    return 403
                patterns.append(pattern)
            elif ident not in plain:
                return 403
        wall_keys = {_ident_key(d) for d in dicts}
        concrete = [dep.get("id") for dep in _dependencies(request.get("outputs"))]
        for target in concrete:
            if isinstance(target, dict) and _ident_key(target) in wall_keys:
                continue
            if isinstance(target, str) and target in plain:
                continue
            return 403
        if not concrete and not any(_matches(p, d) for p in patterns for d in dicts):
            # A wildcard callback for components the wall does not have: nothing to write.
            return 204
        for dep in _dependencies(request.get("inputs")) + _dependencies(request.get("state")):
            if dep.get("id") == self.url_id and dep.get("property") == "pathname":
                if page_path(str(dep.get("value") or "")) != WALL_PATH:
                    return 403
        return 0


def _ident_key(ident: Any) -> str:
    return json.dumps(ident, sort_keys=True, separators=(",", ":"))


def _matches(pattern: dict[str, Any], ident: dict[str, Any]) -> bool:
    """Return whether a callback's wildcard id (``["ALL"]`` etc.) matches a concrete id."""
    if set(pattern) != set(ident):
        return False
    return all(isinstance(v, list) or ident[k] == v for k, v in pattern.items())


def _dependencies(value: Any) -> list[dict[str, Any]]:
    """Flatten a callback request's outputs, inputs or state (nested for wildcards)."""
    if isinstance(value, dict):
        return [value]
    if isinstance(value, list):
        return [d for item in value for d in _dependencies(item)]
    return []
