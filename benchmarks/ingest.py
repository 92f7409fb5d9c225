"""Time the worker draining a full stream into SQLite and PostgreSQL; check nothing is lost.

    .venv/bin/python benchmarks/ingest.py [--events 200000] [--workers 1 2] [--backend sqlite]

Fills an embedded Redis stream with N cheap events (petitions and points spread over all
villages), starts ``wushi worker`` processes and measures events/s from the first stored row to
the last. PostgreSQL comes from WUSHI_TEST_POSTGRES_URL (default: the local test server).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import func, select, text

from dashboard.embedded_redis import EmbeddedRedis
from datasources.db import make_engine, upgrade
from datasources.events import parse_event
from datasources.models import Household, Petition, PointsTransaction
from datasources.stream import append_events, redis_client

DISTRICT = "341504"


def seed(url: str) -> None:
    """Migrate and seed the demo geography, people and devices."""
    from datasources.demo.seed import seed_demo
    from geo.partition import build_demo_geography

    engine = make_engine(url)
    upgrade(engine)
    seed_demo(engine, build_demo_geography(2022), now=dt.datetime.now(dt.UTC))
    engine.dispose()


def events(url: str, n: int) -> list:
    """Build ``n`` validated petition and points events over every village."""
    engine = make_engine(url)
    with engine.connect() as conn:
        homes: dict[str, str] = {}
        for hid, village in conn.execute(select(Household.id, Household.village_code)):
            homes.setdefault(village, hid)
    engine.dispose()
    villages = sorted(homes)
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    out = []
    for i in range(n):
        village = villages[i % len(villages)]
        base = {"v": 1, "id": uuid.uuid4().hex, "ts": now.isoformat(), "village": village}
        if i % 2:
            raw = base | {"kind": "petition.filed", "level": "district", "persons": 2}
            raw |= {"repeat": False}
        else:
            raw = base | {"kind": "points.earned", "household": homes[village], "points": 5}
            raw |= {"activity": "志愿服务"}
        out.append(parse_event(json.dumps(raw)))
    return out


def stored(url: str) -> int:
    engine = make_engine(url)
    with engine.connect() as conn:
        n = conn.scalar(select(func.count()).select_from(Petition)) or 0
        n += conn.scalar(select(func.count()).select_from(PointsTransaction)) or 0
    engine.dispose()
    return n


def run(url: str, n: int, workers: int, workdir: Path) -> float:
    """Fill the stream, drain it with ``workers`` processes; return events per second."""
    batch = events(url, n)
    with EmbeddedRedis(workdir / f"redis-{uuid.uuid4().hex[:6]}") as server:
        redis = redis_client(server.url)
        key = f"wushi:{{{DISTRICT}}}:events"
        for start in range(0, n, 10_000):
            append_events(redis, key, batch[start : start + 10_000], 10**7)
        env = dict(
            os.environ,
            WUSHI_DATABASE_URL=url,
            WUSHI_REDIS_URL=server.url,
            WUSHI_DISTRICT_CODE=DISTRICT,
            WUSHI_VAR_DIR=str(workdir / "var"),
            WUSHI_LOG_LEVEL="WARNING",
        )
        procs = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "dashboard.cli",
                    "worker",
                    "--consumer",
                    f"b{i}",
                    "--no-scheduler",
                ],
                env=env,
                stdin=subprocess.DEVNULL,
            )
            for i in range(workers)
        ]
        try:
            engine = make_engine(url)
            first = last = None
            first_n = 0
            deadline = time.monotonic() + 600
            while time.monotonic() < deadline:
                with engine.connect() as conn:
                    got = conn.scalar(select(func.count()).select_from(Petition)) or 0
                    got += conn.scalar(select(func.count()).select_from(PointsTransaction)) or 0
                moment = time.perf_counter()
                if got and first is None:
                    first, first_n = moment, got
                if got >= n:
                    last = moment
                    break
                time.sleep(0.05)
            engine.dispose()
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                proc.wait(30)
        assert last is not None and first is not None, "the workers did not finish in time"
        total = stored(url)
        assert total == n, f"expected {n} rows, found {total}"
        assert redis.xlen(f"wushi:{{{DISTRICT}}}:deadletter") == 0
        redis.close()
    return (n - first_n) / max(last - first, 1e-6)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument(
        "--backend", choices=["sqlite", "postgresql"], nargs="+", default=["sqlite", "postgresql"]
    )
    args = parser.parse_args()
    pg_admin = os.environ.get(
        "WUSHI_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
    )
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        for backend in args.backend:
            for workers in args.workers:
                if backend == "sqlite":
                    url = f"sqlite:///{workdir / f'bench-{workers}.db'}"
                    seed(url)
                    rate = run(url, args.events, workers, workdir)
                else:
                    name = f"wushi_bench_{uuid.uuid4().hex[:8]}"
                    admin = make_engine(pg_admin, isolation_level="AUTOCOMMIT")
                    with admin.connect() as conn:
                        conn.execute(text(f'CREATE DATABASE "{name}"'))
                    url = f"{pg_admin.rpartition('/')[0]}/{name}"
                    try:
                        seed(url)
                        rate = run(url, args.events, workers, workdir)
                    finally:
                        with admin.connect() as conn:
                            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                        admin.dispose()
                print(
                    f"{backend:10s} workers={workers} events={args.events}: "
                    f"{rate:,.0f} events/s, {args.events} rows stored, no loss",
                    flush=True,
                )


if __name__ == "__main__":
    main()
