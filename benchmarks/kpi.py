"""Benchmark: seed the demo history at several scales and time the headline-figure queries.

For each backend and scale this creates a fresh database, runs the equivalent of
``wushi db upgrade && wushi seed --demo --scale K`` (the same Python functions the CLI calls,
each step timed), then times ``datasources.kpi.kpi`` (everything ``wushi kpi --json`` computes)
for the year 2025 for the district, every town and 20 villages drawn with a fixed seed: one
warm-up call per area, then ``--repeat`` timed calls.

Each (backend, scale) runs in its own child process, so the peak RSS reported
(``resource.getrusage``) is that run's own.

    python benchmarks/kpi.py [--scales 1,20] [--backends sqlite,postgresql] [--keep DIR]

Targets (DESIGN): p95 of one ``kpi`` call <= 50 ms at scale 1 and <= 200 ms at scale 20.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"
TARGET_P95_MS = {1.0: 50.0, 20.0: 200.0}
LEVELS = ("district", "town", "village")


def log(message: str) -> None:
    """Print a progress line (stderr, flushed, with the wall-clock time)."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def scale_tag(scale: float) -> str:
    return f"{scale:g}".replace(".", "_")


# --- Databases -------------------------------------------------------------------------------


def pg_admin_url(url: str) -> str:
    return url if "+psycopg" in url else url.replace("postgresql://", "postgresql+psycopg://", 1)


def create_database(
    backend: str, scale: float, workdir: Path, pg_url: str, fresh: bool = True
) -> str:
    """Create an empty database for one run (unless not ``fresh``) and return its URL."""
    name = f"wushi_bench_{scale_tag(scale)}"
    if backend == "sqlite":
        path = workdir / f"{name}.db"
        if not fresh:
            if not path.exists():
                raise SystemExit(f"--reuse: {path} does not exist")
            return f"sqlite:///{path}"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return f"sqlite:///{path}"
    if not fresh:
        return pg_url.rsplit("/", 1)[0] + "/" + name
    from sqlalchemy import create_engine, text

    admin = create_engine(pg_admin_url(pg_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return pg_url.rsplit("/", 1)[0] + "/" + name


def drop_database(backend: str, url: str, pg_url: str) -> None:
    if backend == "sqlite":
        path = url.removeprefix("sqlite:///")
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return
    from sqlalchemy import create_engine, text

    name = url.rsplit("/", 1)[1]
    admin = create_engine(pg_admin_url(pg_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def database_bytes(engine: Any) -> int:
    from sqlalchemy import text

    if engine.dialect.name == "sqlite":
        path = Path(engine.url.database)
        return sum(
            Path(f"{path}{s}").stat().st_size for s in ("", "-wal") if Path(f"{path}{s}").exists()
        )
    with engine.connect() as conn:
        return int(conn.execute(text("SELECT pg_database_size(current_database())")).scalar())


def count_rows(engine: Any) -> int:
    from sqlalchemy import func, select

    from datasources.models import Base

    with engine.connect() as conn:
        return sum(
            int(conn.execute(select(func.count()).select_from(table)).scalar() or 0)
            for table in Base.metadata.sorted_tables
        )


# --- One run ---------------------------------------------------------------------------------


def seed(engine: Any, scale: float, now: dt.datetime, label: str) -> dict[str, Any]:
    """``wushi db upgrade && wushi seed --demo --scale K``, step by step, timed."""
    from datasources.db import upgrade
    from datasources.demo.history import HISTORY_START, generate_history
    from datasources.demo.seed import seed_demo
    from datasources.periods import local_day
    from datasources.rollups import rebuild_rollups
    from geo.partition import build_demo_geography

    out: dict[str, Any] = {}
    t0 = time.perf_counter()
    upgrade(engine)
    out["upgrade_s"] = time.perf_counter() - t0
    log(f"{label}: db upgrade {out['upgrade_s']:.1f} s")

    t0 = time.perf_counter()
    summary = seed_demo(engine, build_demo_geography(2022), now=now, seed=2022, replace=True)
    out["seed_s"] = time.perf_counter() - t0
    log(
        f"{label}: seed (geography + people) {out['seed_s']:.1f} s: {summary.grids} grids, "
        f"{summary.households} households, {summary.devices} callers"
    )

    t0 = time.perf_counter()
    last = [t0]
    state = {"table": "", "stored": 0}

    def progress(table: str, n: int) -> None:
        # The generator reports "tickets" (generated in memory) and "generated"; then _store
        # reports each inserted chunk by table name.
        if table == "generated":
            state["table"] = "generated"
            log(
                f"{label}: history generated in memory at {time.perf_counter() - t0:.0f} s, "
                f"peak RSS {peak_rss_mb():.0f} MiB; storing"
            )
            return
        if state["table"] != "generated":
            log(f"{label}: history {n} {table} generated at {time.perf_counter() - t0:.0f} s")
            return
        state["stored"] += n
        if time.perf_counter() - last[0] >= 30:
            last[0] = time.perf_counter()
            log(
                f"{label}: history storing {table}: {state['stored']:,} rows stored at "
                f"{last[0] - t0:.0f} s, peak RSS {peak_rss_mb():.0f} MiB"
            )

    history = generate_history(engine, now=now, scale=scale, seed=2022, progress=progress)
    out["history_s"] = time.perf_counter() - t0
    out["history_rows"] = sum(history.rows.values())
    out["history_tables"] = history.rows
    out["history_peak_rss_mb"] = peak_rss_mb()
    log(
        f"{label}: history {out['history_rows']} rows in {out['history_s']:.1f} s, "
        f"peak RSS {out['history_peak_rss_mb']:.0f} MiB"
    )

    t0 = time.perf_counter()
    out["rollup_rows"] = rebuild_rollups(engine, HISTORY_START, local_day(now))
    out["rollup_s"] = time.perf_counter() - t0
    log(f"{label}: rollups {out['rollup_rows']} rows in {out['rollup_s']:.1f} s")
    return out


def pick_areas(engine: Any, villages: int, rng_seed: int) -> list[Any]:
    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from datasources.kpi import resolve_area
    from datasources.models import Town, Village

    with Session(engine) as session:
        towns = session.scalars(select(Town.code).order_by(Town.code)).all()
        all_villages = session.scalars(select(Village.code).order_by(Village.code)).all()
    chosen = random.Random(rng_seed).sample(list(all_villages), min(villages, len(all_villages)))
    areas = [resolve_area(engine)]
    areas += [resolve_area(engine, town=code) for code in towns]
    areas += [resolve_area(engine, village=code) for code in chosen]
    return areas


def time_kpi(
    engine: Any, areas: list[Any], repeat: int, now: dt.datetime
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Wall-clock and process-CPU milliseconds of each timed ``kpi`` call, by area level."""
    from datasources.kpi import kpi
    from datasources.periods import Period

    period = Period.year(2025)
    wall: dict[str, list[float]] = {level: [] for level in LEVELS}
    cpu: dict[str, list[float]] = {level: [] for level in LEVELS}
    for area in areas:
        kpi(engine, area, period, now)  # warm-up: caches, connection pool, statement cache
        for _ in range(repeat):
            c0, t0 = time.process_time(), time.perf_counter()
            kpi(engine, area, period, now)
            wall[area.level].append((time.perf_counter() - t0) * 1000)
            cpu[area.level].append((time.process_time() - c0) * 1000)
    return wall, cpu


def run_one(args: argparse.Namespace) -> dict[str, Any]:
    from datasources.db import make_engine

    backend, scale = args.one_backend, args.one_scale
    label = f"{backend} x{scale:g}"
    keep = Path(args.keep) if args.keep else None
    if keep:
        keep.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="wushi_bench_") as tmp:
        workdir = keep or Path(tmp)
        url = create_database(backend, scale, workdir, args.pg_url, fresh=not args.reuse)
        log(f"{label}: database {url}")
        engine = make_engine(url)
        try:
            now = dt.datetime.now(dt.UTC)
            result: dict[str, Any] = {"backend": backend, "scale": scale, "url": url}
            if args.reuse:
                log(f"{label}: --reuse: skipping the seed")
            else:
                result |= seed(engine, scale, now, label)
            result["rows_stored"] = count_rows(engine)
            result["db_bytes"] = database_bytes(engine)
            areas = pick_areas(engine, args.villages, args.area_seed)
            log(f"{label}: timing kpi() for {len(areas)} areas x {args.repeat} (+1 warm-up)")
            t0 = time.perf_counter()
            result["load_before"] = os.getloadavg()[0]
            result["kpi_ms"], result["kpi_cpu_ms"] = time_kpi(engine, areas, args.repeat, now)
            result["load_after"] = os.getloadavg()[0]
            log(
                f"{label}: kpi timing done in {time.perf_counter() - t0:.1f} s "
                f"(1-min load average {result['load_before']:.1f} -> {result['load_after']:.1f})"
            )
            result["peak_rss_mb"] = peak_rss_mb()
        finally:
            engine.dispose()
            if not keep and not args.reuse:
                drop_database(backend, url, args.pg_url)
    return result


# --- Report ----------------------------------------------------------------------------------


def stats(values: list[float]) -> tuple[float, float]:
    import numpy as np

    if not values:
        return float("nan"), float("nan")
    median, p95 = np.percentile(np.array(values), [50, 95])
    return float(median), float(p95)


def _fmt(r: dict[str, Any], key: str, width: int, spec: str = ".1f") -> str:
    return f"{format(r[key], spec):>{width}}" if key in r else f"{'-':>{width}}"


def report(results: list[dict[str, Any]]) -> str:
    header = (
        f"{'backend':<10} {'scale':>5} {'rows stored':>12} {'db MiB':>7} {'seed s':>7} "
        f"{'history s':>9} {'peak RSS MiB':>12} {'rollup s':>8} "
        f"{'median ms':>9} {'p95 ms':>7} {'cpu p95':>7} "
        + " ".join(f"{lv + ' med/p95':>18}" for lv in LEVELS)
        + "  target"
    )
    lines = [header, "-" * len(header)]
    verdicts = []
    for r in results:
        if "error" in r:
            lines.append(f"{r['backend']:<10} {r['scale']:>5g}  FAILED: {r['error']}")
            continue
        every = [v for level in LEVELS for v in r["kpi_ms"][level]]
        med, p95 = stats(every)
        cpu_p95 = stats([v for level in LEVELS for v in r.get("kpi_cpu_ms", {}).get(level, [])])[1]
        per_level = []
        for level in LEVELS:
            lm, lp = stats(r["kpi_ms"][level])
            per_level.append(f"{f'{lm:.1f}/{lp:.1f}':>18}")
        target = TARGET_P95_MS.get(float(r["scale"]))
        if target is None:
            verdict = "n/a"
        else:
            verdict = f"{'MET' if p95 <= target else 'MISSED'} (p95 <= {target:g} ms)"
            verdicts.append(
                f"{r['backend']} scale {r['scale']:g}: p95 {p95:.1f} ms vs target "
                f"{target:g} ms: {'met' if p95 <= target else 'MISSED'}"
            )

        lines.append(
            f"{r['backend']:<10} {r['scale']:>5g} {r['rows_stored']:>12,} "
            f"{r['db_bytes'] / 2**20:>7.0f} {_fmt(r, 'seed_s', 7)} {_fmt(r, 'history_s', 9)} "
            f"{_fmt(r, 'history_peak_rss_mb', 12, '.0f')} {_fmt(r, 'rollup_s', 8)} "
            f"{med:>9.1f} {p95:>7.1f} {cpu_p95:>7.1f} " + " ".join(per_level) + f"  {verdict}"
        )
    loads = [
        f"{r['backend']} scale {r['scale']:g}: 1-min load average {r['load_before']:.1f} before "
        f"and {r['load_after']:.1f} after the kpi timing ({os.cpu_count()} CPUs)"
        for r in results
        if "load_before" in r
    ]
    notes = [
        "times in ms per kpi() call; per level: median/p95 wall clock; 'cpu p95' is this "
        "process's CPU time (SQLite runs in-process; PostgreSQL's server time is not in it)"
    ]
    return "\n".join([*lines, "", *verdicts, *loads, *notes])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scales", default="1,20", help="comma-separated history scales")
    parser.add_argument("--backends", default="sqlite,postgresql", help="sqlite,postgresql")
    parser.add_argument("--keep", help="keep the databases (SQLite files go in this directory)")
    parser.add_argument("--repeat", type=int, default=5, help="timed kpi() calls per area")
    parser.add_argument("--villages", type=int, default=20, help="random villages to time")
    parser.add_argument("--area-seed", type=int, default=20250101, help="seed of the villages")
    parser.add_argument(
        "--pg-url",
        default=os.environ.get("WUSHI_BENCH_PG_URL", DEFAULT_PG),
        help="an existing PostgreSQL database to connect to for CREATE/DROP DATABASE",
    )
    parser.add_argument("--json", help="also write the raw results to this file")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="time kpi() on databases kept by an earlier --keep run (no seeding); needs --keep",
    )
    parser.add_argument("--one-backend", help=argparse.SUPPRESS)
    parser.add_argument("--one-scale", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--one-out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.reuse and not args.keep:
        parser.error("--reuse needs --keep DIR")

    if args.one_backend:  # child process: one backend and scale
        result = run_one(args)
        Path(args.one_out).write_text(json.dumps(result))
        return

    scales = [float(s) for s in args.scales.split(",") if s]
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    for b in backends:
        if b not in ("sqlite", "postgresql"):
            parser.error(f"unknown backend {b!r}")
    results = []
    for backend in backends:
        for scale in scales:
            with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as out:
                out_path = out.name
            passthrough = [
                "--repeat",
                str(args.repeat),
                "--villages",
                str(args.villages),
                "--area-seed",
                str(args.area_seed),
                "--pg-url",
                args.pg_url,
            ]
            if args.keep:
                passthrough += ["--keep", args.keep]
            if args.reuse:
                passthrough.append("--reuse")
            cmd = [
                sys.executable,
                __file__,
                *passthrough,
                "--one-backend",
                backend,
                "--one-scale",
                str(scale),
                "--one-out",
                out_path,
            ]
            t0 = time.perf_counter()
            proc = subprocess.run(cmd, check=False)
            if proc.returncode == 0:
                results.append(json.loads(Path(out_path).read_text()))
            else:
                why = "killed (out of memory?)" if proc.returncode < 0 else "failed"
                results.append(
                    {
                        "backend": backend,
                        "scale": scale,
                        "error": f"{why}: exit {proc.returncode} after "
                        f"{time.perf_counter() - t0:.0f} s",
                    }
                )
            Path(out_path).unlink(missing_ok=True)
    print(report(results), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
