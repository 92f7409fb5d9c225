"""``Sources.cached``: a user's choice may take a prepared value, a live push asks a fresh one."""

from __future__ import annotations

import time

from dashboard.settings import Settings
from dashboard.sources import CHOICE_MAX_AGE_S, Sources
from datasources.db import make_engine


def _aged(sources: Sources, key: str, seconds: float) -> None:
    """Make the cached value of ``key`` look ``seconds`` old."""
    stamp, value = sources._short._data[key]
    sources._short._data[key] = (time.monotonic() - seconds, value)


def test_a_choice_takes_a_prepared_value_and_a_live_push_a_fresh_one(tmp_path):
    url = f"sqlite:///{tmp_path / 'wushi.db'}"
    sources = Sources(
        Settings(database_url=url, var_dir=tmp_path, redis_url=""), make_engine(url), None, ""
    )  # type: ignore[arg-type]
    computed: list[int] = []

    def compute() -> int:
        computed.append(len(computed) + 1)
        return computed[-1]

    sources.refresh("kpi", compute)  # what the warmer does
    assert computed == [1]
    _aged(sources, "kpi", 30)
    # A town chosen: the prepared value, no query.
    assert sources.cached("kpi", compute, max_age=CHOICE_MAX_AGE_S) == 1
    assert computed == [1]
    # A live push (two seconds' freshness) computes afresh and keeps the result...
    assert sources.cached("kpi", compute) == 2
    # ...which the next choice then gets.
    assert sources.cached("kpi", compute, max_age=CHOICE_MAX_AGE_S) == 2
    # Older than a choice accepts: computed again.
    _aged(sources, "kpi", CHOICE_MAX_AGE_S + 1)
    assert sources.cached("kpi", compute, max_age=CHOICE_MAX_AGE_S) == 3
    assert computed == [1, 2, 3]
