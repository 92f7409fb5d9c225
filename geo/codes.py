"""The area code scheme.

Codes follow the *shape* of the national statistical division codes (统计用区划代码) but are
NOT the official codes; the demo assigns them, and an import brings its own.

==========  ======================  =========================================================
level       digits                  rule
==========  ======================  =========================================================
district    6                       ``341504`` (the adcode of 叶集区)
town        6 + 3 = 9               subdistricts (街道) ``001``-``099``, towns (镇) ``100``-``199``,
                                    e.g. ``341504001`` (史河街道), ``341504102`` (三元镇)
village     9 + 3 = 12              communities (社区, 居委会) ``001``-``199``, villages
                                    (村委会) ``200``-``399``, e.g. ``341504102201`` (桥元村)
grid        12 + 3 = 15             ``001``-``999`` within the village, e.g. ``341504102201003``
==========  ======================  =========================================================
"""

from __future__ import annotations

import re

DISTRICT_CODE = "341504"

# How many digits a code of each level has (the table above).
LEVEL_DIGITS = {"district": 6, "town": 9, "village": 12, "grid": 15}

_DIGITS = re.compile(r"[0-9]+")
_LENGTHS = {n: level for level, n in LEVEL_DIGITS.items()}


class CodeError(ValueError):
    """A code does not fit the scheme."""


def parse_code(code: str, district_code: str = DISTRICT_CODE) -> tuple[str, str | None, str | None]:
    """Return (level, town_code, village_code) for a code, or raise CodeError."""
    if not isinstance(code, str) or not _DIGITS.fullmatch(code):
        raise CodeError(f"code {code!r} is not a string of digits")
    level = _LENGTHS.get(len(code))
    if level is None:
        raise CodeError(f"code {code} has {len(code)} digits; expected 6, 9, 12 or 15")
    if not code.startswith(district_code):
        raise CodeError(f"code {code} does not start with the district code {district_code}")
    if level == "district":
        return level, None, None
    town_part = code[6:9]
    if not 1 <= int(town_part) <= 199:
        raise CodeError(f"code {code}: town part {town_part} is not in 001-199")
    if level == "town":
        return level, code, None
    village_part = code[9:12]
    if not 1 <= int(village_part) <= 399:
        raise CodeError(f"code {code}: village part {village_part} is not in 001-399")
    if level == "village":
        return level, code[:9], code
    if int(code[12:15]) == 0:
        raise CodeError(f"code {code}: grid part 000 is not allowed")
    return level, code[:9], code[:12]


def code_level(code: str, district_code: str = DISTRICT_CODE) -> str | None:
    """Return the level of a valid code, or None when it does not fit the scheme."""
    try:
        return parse_code(code, district_code)[0]
    except CodeError:
        return None


def is_valid_code(code: str, level: str | None = None, district_code: str = DISTRICT_CODE) -> bool:
    """Tell whether a code fits the scheme (and is of the given level, if one is given)."""
    found = code_level(code, district_code)
    return found is not None and (level is None or found == level)


def town_kind(town_code: str) -> str:
    """Return "subdistrict" or "town" from a town code."""
    return "subdistrict" if int(town_code[6:9]) < 100 else "town"


def village_kind(village_code: str) -> str:
    """Return "community" or "village" from a village code."""
    return "community" if int(village_code[9:12]) < 200 else "village"


def town_code(district_code: str, number: int) -> str:
    """Build a town code from its 3-digit number."""
    return f"{district_code}{number:03d}"


def village_code(town: str, number: int) -> str:
    """Build a village code from its town code and 3-digit number."""
    return f"{town}{number:03d}"


def grid_code(village: str, number: int) -> str:
    """Build a grid code from its village code and 3-digit number."""
    return f"{village}{number:03d}"


def town_of(code: str) -> str | None:
    """Return the town code a town, village or grid code lies in (None for shorter codes)."""
    return code[: LEVEL_DIGITS["town"]] if len(code) >= LEVEL_DIGITS["town"] else None


def village_of(code: str) -> str | None:
    """Return the village code a village or grid code lies in (None for shorter codes)."""
    n = LEVEL_DIGITS["village"]
    return code[:n] if len(code) >= n else None
