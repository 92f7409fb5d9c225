"""Benchmark: time every dashboard panel query (``datasources.panels``) for the district and a town.

Seeds a temporary database once per backend through the CLI (``wushi db upgrade`` and
``wushi seed --demo``, about 75 s each), or reuses an existing one given with ``--db``, then
times each function for the last full calendar year: one warm-up call, then ``--repeat`` timed
calls; prints the median and the maximum in milliseconds.

    python benchmarks/panels.py [--backends sqlite,postgresql] [--db URL_OR_SQLITE_PATH]

Target: each call <= 100 ms at scale 1 on SQLite for a one-year district period.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"
TARGET_MS = 100.0
WUSHI = Path(sys.executable).with_name("wushi")


def log(message: str) -> None:
    """Print a progress line (stderr, flushed, with the wall-clock time)."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def seed(url: str, workdir: Path) -> None:
    """Migrate and seed the demo history into ``url`` through the CLI."""
    env = {**os.environ, "WUSHI_DATABASE_URL": url, "WUSHI_VAR_DIR": str(workdir)}
    for args in (["db", "upgrade"], ["seed", "--demo"]):
        t0 = time.perf_counter()
        subprocess.run([str(WUSHI), *args], env=env, check=True, stdout=subprocess.DEVNULL)
        log(f"wushi {' '.join(args)}: {time.perf_counter() - t0:.1f} s")


def pg_admin(pg_url: str) -> Any:
    from datasources.db import make_engine

    return make_engine(pg_url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 2})


def create_pg(pg_url: str) -> str | None:
    """Create an empty PostgreSQL database and return its URL, or None if unreachable."""
    from sqlalchemy import text

    name = f"wushi_bench_panels_{uuid.uuid4().hex[:8]}"
    try:
        admin = pg_admin(pg_url)
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable" here
        log(f"PostgreSQL not reachable ({type(exc).__name__}): skipped")
        return None
    return f"{pg_url.rpartition('/')[0]}/{name}"


def drop_pg(pg_url: str, url: str) -> None:
    from sqlalchemy import text

    admin = pg_admin(pg_url)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{url.rpartition("/")[2]}" WITH (FORCE)'))
    admin.dispose()


def calls(engine: Any, area: Any, period: Any, now: dt.datetime) -> dict[str, Callable[[], Any]]:
    """Return one zero-argument call per timed function (grid_values once per metric)."""
    from datasources import panels
    from datasources.figures import MAP_METRICS

    out: dict[str, Callable[[], Any]] = {
        "children_figures": lambda: panels.children_figures(engine, area, period),
        "monthly_series": lambda: panels.monthly_series(engine, area, period),
        "petition_trend": lambda: panels.petition_trend(engine, area, period),
        "response_distribution": lambda: panels.response_distribution(engine, area, period),
        "resolution_levels_counts": lambda: panels.resolution_levels_counts(engine, area, period),
        "open_tickets": lambda: panels.open_tickets(engine, area, now),
        "overdue_tickets": lambda: panels.overdue_tickets(engine, area, now),
        "supervision_items": lambda: panels.supervision_items(engine, area, period),
        "device_health": lambda: panels.device_health(engine, area, now),
    }
    for metric in MAP_METRICS:
        out[f"grid_values[{metric}]"] = (
            lambda m=metric: panels.grid_values(engine, area, period, m, now)  # type: ignore[misc]
        )
    out["grid_directory"] = lambda: panels.grid_directory(engine, area)
    out["area_options"] = lambda: panels.area_options(engine, area)
    return out


def time_all(url: str, repeat: int) -> dict[str, dict[str, tuple[float, float, float]]]:
    """Return {area: {function: (median, min, max) ms}} for the district and a town."""
    from sqlalchemy import select

    from datasources.db import make_engine
    from datasources.kpi import resolve_area
    from datasources.models import Town
    from datasources.periods import Period

    engine = make_engine(url)
    try:
        now = dt.datetime.now(dt.UTC)
        period = Period.year(now.year - 1)
        with engine.connect() as conn:
            town = conn.scalar(select(Town.code).order_by(Town.code).limit(1))
        areas = {"district": resolve_area(engine), f"town {town}": resolve_area(engine, town=town)}
        results: dict[str, dict[str, tuple[float, float, float]]] = {}
        for label, area in areas.items():
            results[label] = {}
            for name, call in calls(engine, area, period, now).items():
                call()
                times = []
                for _ in range(repeat):
                    t0 = time.perf_counter()
                    call()
                    times.append((time.perf_counter() - t0) * 1000)
                results[label][name] = (statistics.median(times), min(times), max(times))
        return results
    finally:
        engine.dispose()


def report(backend: str, results: dict[str, dict[str, tuple[float, float, float]]]) -> str:
    labels = list(results)
    names = list(results[labels[0]])
    width = max(len(n) for n in names)
    head = f"{backend:<{width}} " + " ".join(f"{lb + ' med/min/max ms':>32}" for lb in labels)
    lines = [head, "-" * len(head)]
    worst = 0.0
    for name in names:
        cells = []
        for label in labels:
            med, low, top = results[label][name]
            worst = max(worst, med)
            cells.append(f"{f'{med:.1f}/{low:.1f}/{top:.1f}':>32}")
        lines.append(f"{name:<{width}} " + " ".join(cells))
    verdict = "met" if worst <= TARGET_MS else "MISSED"
    lines.append(f"slowest median {worst:.1f} ms: target <= {TARGET_MS:g} ms {verdict}")
    lines.append(f"load average while timing: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default="sqlite,postgresql", help="sqlite,postgresql")
    parser.add_argument("--db", help="time this database (URL or SQLite path) instead of seeding")
    parser.add_argument("--repeat", type=int, default=10, help="timed calls per function")
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("WUSHI_BENCH_PG_URL", DEFAULT_PG),
        help="an existing PostgreSQL database to connect to for CREATE/DROP DATABASE",
    )
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

    if args.db:
        url = args.db if "://" in args.db else f"sqlite:///{Path(args.db).resolve()}"
        print(report(url.partition(":")[0], time_all(url, args.repeat)), flush=True)
        return
    for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
        with tempfile.TemporaryDirectory(prefix="wushi_bench_panels_") as tmp:
            if backend == "sqlite":
                url: str | None = f"sqlite:///{Path(tmp) / 'wushi.db'}"
            elif backend == "postgresql":
                url = create_pg(args.pg_url)
            else:
                parser.error(f"unknown backend {backend!r}")
            if url is None:
                continue
            try:
                log(f"{backend}: seeding {url}")
                seed(url, Path(tmp))
                print(report(backend, time_all(url, args.repeat)), flush=True)
            finally:
                if backend == "postgresql":
                    drop_pg(args.pg_url, url)


if __name__ == "__main__":
    main()
