"""The docs stand alone and describe the code as it is.

- No product file, README.md, doc under docs/ or deploy file cites a file outside the repository
  (the design texts the project started from, or a path on a development machine): the
  interfaces, figures and facts live in docs/contract.md, docs/figures.md and docs/facts.md.
- No comment in the product packages narrates development history ("since session 5"): comments
  say what the code does and why; the history is in docs/changelog.md.
- Every relative link in README.md and docs/*.md points at a file that exists.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("dashboard", "layouts", "callbacks", "datasources", "geo")
SKIPPED_SUFFIXES = {".geojson", ".png", ".jpg", ".ico", ".pyc", ".gz", ".woff", ".woff2"}

OUTSIDE = re.compile(r"CONTRACT\.md|DESIGN\.md|FACTS\.md|\.\./shared|/work/")
HISTORY = re.compile(r"\b(?:since|in|from) session [0-9]+|\bsession [0-9]+'s", re.IGNORECASE)
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def _files(*folders: str) -> list[Path]:
    out = []
    for folder in folders:
        for path in sorted((ROOT / folder).rglob("*")):
            if (
                path.is_file()
                and "__pycache__" not in path.parts
                and path.suffix.lower() not in SKIPPED_SUFFIXES
            ):
                out.append(path)
    return out


def _docs() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _hits(pattern: re.Pattern[str], paths: list[Path]) -> list[str]:
    hits = []
    for path in paths:
        text = path.read_text(encoding="utf-8", errors="replace")
        for number, line in enumerate(text.splitlines(), 1):
            if pattern.search(line):
                hits.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    return hits


def _broken_links(path: Path, base: Path = ROOT) -> list[str]:
    """Return ``file:line: target`` for each relative link whose file does not exist."""
    broken = []
    text = path.read_text(encoding="utf-8")
    for number, line in enumerate(text.splitlines(), 1):
        for target in LINK.findall(line):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.IGNORECASE) or target.startswith("#"):
                continue  # a URL or an anchor on the same page
            file_part = target.split("#", 1)[0]
            if not (path.parent / file_part).exists():
                broken.append(f"{path.relative_to(base)}:{number}: {target}")
    return broken


def test_the_checks_catch_what_they_are_for(tmp_path: Path) -> None:
    assert OUTSIDE.search("the headline figures of DESIGN.md")
    assert OUTSIDE.search("see ../shared/CONTRACT.md")
    assert OUTSIDE.search("calibrated to FACTS.md")
    assert not OUTSIDE.search("the headline figures of docs/figures.md")
    assert HISTORY.search("# restyled in place since session 5")
    assert HISTORY.search("# (as in Session 3)")
    assert HISTORY.search("# session 6's change")
    assert not HISTORY.search("# the session cookie is signed; a session lasts 12 hours")
    page = tmp_path / "page.md"
    page.write_text(
        "[here](other.md) [there](page.md#top) [web](https://example.org) [anchor](#top)\n",
        encoding="utf-8",
    )
    assert _broken_links(page, base=tmp_path) == ["page.md:1: other.md"]
    (tmp_path / "other.md").write_text("", encoding="utf-8")
    assert _broken_links(page, base=tmp_path) == []


def test_nothing_cites_a_file_outside_the_repository() -> None:
    paths = [*_files(*PACKAGES, "deploy"), *_docs()]
    assert len(paths) > 50, "the product files were not found"
    assert _hits(OUTSIDE, paths) == []


def test_product_comments_do_not_narrate_development_history() -> None:
    paths = [p for p in _files(*PACKAGES) if p.suffix in {".py", ".js", ".css"}]
    assert _hits(HISTORY, paths) == []


@pytest.mark.parametrize("path", _docs(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_in_the_docs_points_at_a_file(path: Path) -> None:
    assert _broken_links(path) == []


def test_the_docs_that_stand_in_for_the_design_texts_exist() -> None:
    for name in ("contract.md", "figures.md", "facts.md", "changelog.md"):
        assert (ROOT / "docs" / name).is_file(), name
