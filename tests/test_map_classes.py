"""The map's colour classes and the legend's labels (``callbacks/map_.py``)."""

from __future__ import annotations

import random
import re

from callbacks.map_ import CLASSES, breaks_for, hideout_for


def _class_of(value: float, breaks: list[float]) -> int:
    """The class a value falls in, as wushi_map.js colours it (a break starts its class)."""
    return sum(value >= b for b in breaks)


def test_a_value_most_grids_share_gets_its_own_class_and_the_rest_are_split():
    rng = random.Random(5)
    # A year's closure rate: 500 grids at 100 %, the others between 85 % and 99.9 %.
    values = [100.0] * 500 + [round(rng.uniform(85, 99.9), 1) for _ in range(107)]
    breaks = breaks_for(values)
    assert len(breaks) == CLASSES - 1
    assert breaks[-1] == 100.0  # 100 % alone in the top class
    assert all(_class_of(v, breaks) < CLASSES - 1 for v in values if v < 100)
    # The 107 below 100 % fill six classes of about 18 grids each.
    sizes = [sum(_class_of(v, breaks) == k for v in values if v < 100) for k in range(6)]
    assert min(sizes) >= 10, sizes


def test_no_calls_today_is_a_class_and_spread_values_get_quantiles():
    rng = random.Random(6)
    values = [0.0] * 400 + [float(rng.randint(1, 30)) for _ in range(207)]
    breaks = breaks_for(values)
    assert breaks[0] == min(v for v in values if v > 0)  # 0 alone in the first class
    assert len(breaks) <= CLASSES - 1 and breaks == sorted(breaks)
    spread = [rng.uniform(0, 100) for _ in range(607)]
    classes = [_class_of(v, breaks_for(spread)) for v in spread]
    assert all(abs(classes.count(k) - 607 / CLASSES) < 20 for k in range(CLASSES))


def test_few_or_equal_values_never_make_more_classes_than_colours():
    assert breaks_for([]) == []
    assert breaks_for([5.0] * 12) == []
    assert breaks_for([1.0, 2.0]) == [2.0]
    # Two heavy values and a spread between them: still at most seven classes.
    rng = random.Random(7)
    mixed = [0.0] * 200 + [100.0] * 200 + [rng.uniform(1, 99) for _ in range(207)]
    breaks = breaks_for(mixed)
    assert 0 < len(breaks) <= CLASSES - 1 and breaks[-1] == 100.0


def test_the_legend_shows_rates_to_a_tenth_and_large_counts_whole():
    values = {f"g{i}": v / 100 for i, v in enumerate([100.0] * 60 + [96.5, 97.25, 98.5, 99.5])}
    _hideout, legend = hideout_for(values, "closure_rate", "zh")
    assert "≥100" in legend and "&lt;97.2" in legend  # 97.25 % shown to a tenth
    points = {f"g{i}": float(1000 + 250 * i) for i in range(20)}
    _hideout, legend = hideout_for(points, "points_redeemed", "en")
    assert re.search(r"≥\d,\d{3}<", legend)  # e.g. ≥5,250: whole, with a separator
