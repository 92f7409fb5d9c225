"""No import cycles between the product's modules.

Every import statement of the product packages is read with ``ast`` (those inside functions
too, since a deferred import that closes a loop is still a loop, only a quieter one) and
resolved to a product module: ``from a.b import c`` names ``a.b`` (Python runs it first) and
``a.b.c`` when that is a module. So a package's ``__init__`` that imported its own submodules
would sit in a cycle with every submodule that imports a sibling through the package; the
callbacks' ordered list therefore lives in ``callbacks/registry.py``, not in the package.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("dashboard", "layouts", "callbacks", "datasources", "geo")
EXCLUDED = ("datasources/migrations",)


def product_modules() -> dict[str, Path]:
    """Return every product module's dotted name and file."""
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            if relative.startswith(EXCLUDED):
                continue
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def _base(module: str, path: Path, node: ast.ImportFrom) -> str:
    """Return the absolute module name an ``ImportFrom`` starts from."""
    if node.level == 0:
        return node.module or ""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    package = package[: len(package) - (node.level - 1)]
    return ".".join([*package, *([node.module] if node.module else [])])


def _product(name: str, modules: dict[str, Path]) -> str | None:
    """Return the longest product module ``name`` is or lies in (None for third-party)."""
    parts = name.split(".")
    for end in range(len(parts), 0, -1):
        candidate = ".".join(parts[:end])
        if candidate in modules:
            return candidate
    return None


def imported(module: str, path: Path, modules: dict[str, Path]) -> Iterator[str]:
    """Yield the product modules ``module`` imports, anywhere in its file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                target = _product(alias.name, modules)
                if target is not None:
                    yield target
        elif isinstance(node, ast.ImportFrom):
            base = _base(module, path, node)
            package = _product(base, modules)
            if package is not None:
                yield package
            for alias in node.names:
                target = _product(f"{base}.{alias.name}", modules)
                if target is not None:
                    yield target


def import_graph() -> dict[str, set[str]]:
    """Return each product module's imported product modules (itself excluded)."""
    modules = product_modules()
    return {
        name: {t for t in imported(name, path, modules) if t != name}
        for name, path in modules.items()
    }


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Return one cycle (a path back to its start) for each strongly connected group."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = set()
            while True:
                top = stack.pop()
                on_stack.discard(top)
                group.add(top)
                if top == node:
                    break
            if len(group) > 1:
                groups.append(group)

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return [_cycle_in(graph, group) for group in groups]


def _cycle_in(graph: dict[str, set[str]], group: set[str]) -> list[str]:
    """Return a shortest cycle through the group's first module, within the group."""
    start = min(group)
    paths = {start: [start]}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for nxt in sorted(graph[node] & group):
            if nxt == start:
                return [*paths[node], start]
            if nxt not in paths:
                paths[nxt] = [*paths[node], nxt]
                queue.append(nxt)
    raise AssertionError(f"no cycle found in {sorted(group)}")


def test_the_product_modules_import_each_other_without_cycles():
    found = cycles(import_graph())
    assert not found, "import cycles:\n" + "\n".join(" -> ".join(c) for c in found)


def test_the_check_sees_imports_inside_functions_and_relative_ones(tmp_path):
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c", "a"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
    modules = {"pkg": tmp_path / "pkg/__init__.py", "pkg.x": tmp_path / "pkg/x.py"}
    modules["pkg.y"] = tmp_path / "pkg/y.py"
    source = tmp_path / "pkg/x.py"
    source.parent.mkdir()
    source.write_text("import json\n\ndef f():\n    from . import y\n    from pkg import x\n")
    assert set(imported("pkg.x", source, modules)) == {"pkg", "pkg.y", "pkg.x"}
