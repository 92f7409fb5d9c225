"""Headline tiles as HTML (``layouts/components.py``): units read right in both languages."""

from __future__ import annotations

from layouts.components import tile
from layouts.i18n import SINGULAR, STRINGS, count_unit


def test_a_count_of_one_takes_the_english_singular_and_chinese_is_unchanged():
    assert '<span class="unit">batch</span>' in tile("City petitions", "1", "batches")
    assert '<span class="unit">batches</span>' in tile("City petitions", "12", "batches")
    assert '<span class="unit">tickets</span>' in tile("Requests", "1,001", "tickets")
    assert '<span class="unit">件</span>' in tile("受理量", "1", "件")
    assert count_unit("1", "people") == "people" and count_unit("1", "%") == "%"
    # Every English count unit of the strings table has its singular.
    units = {en for key, (_zh, en) in STRINGS.items() if key.startswith("u_")}
    assert units - {"people", "min"} <= set(SINGULAR)
