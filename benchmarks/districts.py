"""Beyond one machine: K districts' event streams at once through one Redis and one PostgreSQL.

    .venv/bin/python benchmarks/districts.py [--districts 1,2,5,10] [--events 100000]
        [--history-scale 0.1] [--workers-per-district 1] [--keep-seeds] [--json FILE]

How districts are kept apart (checked in the code, not assumed):

- Redis: every key of a district is ``wushi:{<district>}:...`` (``Settings.stream_key``,
  ``datasources.live.LiveKeys``), so K districts share one Redis without touching each other,
  and the hash tag keeps each district on one Redis Cluster slot.
- The worker is per district: ``WUSHI_DISTRICT_CODE`` sets the stream it reads, its consumer
  group, the live-state keys it writes and the registry it checks (codes must start with the
  district code).
- SQL: the schema holds **one district per database** (towns have no district column and the
  district-level figures, ``datasources.kpi.kpi`` for the district, read whole tables). So each
  district gets its own database on the same PostgreSQL server, seeded with the demo district's
  geography, people and history under its own codes (``common.recode_geography``).

For each K the script makes K fresh databases (``CREATE DATABASE ... TEMPLATE`` from seeded
templates, kept with ``--keep-seeds`` for the next run), fills each district's stream with
``--events`` realistic events from the simulator (``datasources.simulator``, the producer path
with validation), then starts K × ``--workers-per-district`` real ``wushi worker`` processes
(``--no-scheduler`` unless ``--scheduler``) and measures, until every stream is drained:

- stored events/s (acknowledged entries over all streams; an entry is acknowledged only after
  its SQL commit), from the first acknowledgement to the last;
- the time of ``kpi(district, this year)`` on the first district, in a loop in this process,
  before the workers start (idle) and while they drain (p50/p95);
- CPU of the workers, Redis, the PostgreSQL backends of the K databases, the server's background
  writers, this process and the whole machine (psutil), iowait and disk writes, and from them
  CPU microseconds per stored event for each part, which is what the province sizing in
  ``docs/scaling.md`` scales up.

Prints markdown tables ready to paste (rates and ``uptime`` of each step, CPU per stored event,
memory at the end of each drain); exits 1 if an event is lost, dead-lettered or a stream is not
drained.
"""

from __future__ import annotations

import argparse
import bisect
import datetime as dt
import json
import os
import shutil
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    Sampler,
    Stack,
    cpu_share,
    fmt_ms,
    group_backlog,
    log,
    machine_cpu_busy,
    markdown_table,
    pct,
    pg_admin_url,
    pg_create,
    pg_drop,
    pg_exists,
    raise_on_signal,
    seed_database,
    uptime,
)

# The demo district first, then made-up six-digit codes for the others.
CODES = ["341504", *(f"3416{i:02d}" for i in range(1, 100))]


def seed_templates(codes: list[str], scale: float, fresh: bool) -> dict[str, str]:
    """Return {district: template database name}, seeding the ones that are missing."""
    tag = f"{scale:g}".replace(".", "p")
    names = {}
    base = pg_admin_url().rpartition("/")[0]
    for code in codes:
        name = f"wushi_dseed_{code}_h{tag}"
        if fresh and pg_exists(name):
            pg_drop(f"{base}/{name}")
        if not pg_exists(name):
            url = pg_create(name)
            try:
                seconds = seed_database(url, code, scale)
            except BaseException:
                pg_drop(url)
                raise
            log(f"seeded district {code} (history scale {scale:g}) in {seconds:.0f} s")
        names[code] = name
    return names


def prefill(url: str, redis: Any, key: str, n: int, seed: int) -> list[str]:
    """Publish ``n`` simulator events for the district of ``url``; return their entry ids."""
    from datasources.db import make_engine
    from datasources.simulator import Simulator, load_world
    from datasources.stream import publish

    engine = make_engine(url)
    try:
        sim = Simulator(load_world(engine), seed=seed)
    finally:
        engine.dispose()
    ids: list[str] = []
    while len(ids) < n:
        batch = sim.next_events(min(5000, n - len(ids)))
        ids += publish(redis, key, batch, 10**8)
    return ids


def kpi_loop(url: str, district: str, stop: threading.Event, out: list[tuple[float, float]]):
    """Time ``kpi(district, this year)`` over and over until ``stop``."""
    from datasources.db import make_engine
    from datasources.kpi import kpi, resolve_area
    from datasources.periods import SHANGHAI, Period

    engine = make_engine(url)
    try:
        area = resolve_area(engine, district_code=district)
        while not stop.is_set():
            now = dt.datetime.now(dt.UTC)
            period = Period.year(now.astimezone(SHANGHAI).year)
            t0 = time.perf_counter()
            kpi(engine, area, period, now)
            out.append((time.time(), (time.perf_counter() - t0) * 1000))
            stop.wait(0.05)
    finally:
        engine.dispose()


def acked(redis: Any, key: str, ids: list[str]) -> int:
    """Entries of ``ids`` that the group has acknowledged (delivered and not pending)."""
    for info in redis.xinfo_groups(key):
        name = info.get("name", info.get(b"name"))
        if (name.decode() if isinstance(name, bytes) else name) != "workers":
            continue
        last = info.get("last-delivered-id", info.get(b"last-delivered-id"))
        last = last.decode() if isinstance(last, bytes) else str(last)
        delivered = bisect.bisect_right(ids, _id_key(last), key=_id_key) if last != "0-0" else 0
        return delivered - int(info.get("pending", info.get(b"pending", 0)))
    return 0


def _id_key(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def run_k(args: argparse.Namespace, k: int, templates: dict[str, str], workdir: Path) -> dict:
    """Run K districts at once; return the figures of this step."""
    from redis import Redis

    from dashboard.embedded_redis import EmbeddedRedis
    from dashboard.settings import Settings

    codes = CODES[:k]
    out: dict[str, Any] = {"k": k, "uptime_start": uptime()}
    log(f"K={k}: {out['uptime_start']}")
    base = pg_admin_url().rpartition("/")[0]
    urls: dict[str, str] = {}
    redis_server = EmbeddedRedis(workdir / f"redis-{k}").start()
    stacks: list[Stack] = []
    sampler = None
    stop = threading.Event()
    try:
        for code in codes:
            urls[code] = pg_create(f"wushi_drun_{code}_{uuid.uuid4().hex[:6]}", templates[code])
        redis = Redis.from_url(redis_server.url)
        ids: dict[str, list[str]] = {}
        t0 = time.perf_counter()
        for i, code in enumerate(codes):
            key = Settings(district_code=code).stream_key("events")
            ids[code] = prefill(urls[code], redis, key, args.events, seed=i + 1)
        out["prefill_s"] = time.perf_counter() - t0
        total = sum(len(v) for v in ids.values())
        log(f"K={k}: {total:,} events in {k} streams in {out['prefill_s']:.0f} s")
        idle: list[tuple[float, float]] = []
        first = codes[0]
        idle_stop = threading.Event()
        thread = threading.Thread(target=kpi_loop, args=(urls[first], first, idle_stop, idle))
        thread.start()
        time.sleep(args.kpi_idle_s)
        idle_stop.set()
        thread.join()
        out["kpi_idle_ms"] = [ms for _, ms in idle[1:]] or [ms for _, ms in idle]
        for code in codes:
            stack = Stack(urls[code], redis_server.url, workdir / f"k{k}-{code}", code)
            stacks.append(stack)
            for j in range(args.workers_per_district):
                stack.start_worker(f"d{code}-{j}", scheduler=args.scheduler)
        roots = {
            "workers": [p.pid for s in stacks for p in s.procs],
            "redis": [redis_server.process.pid] if redis_server.process else [],
        }
        dbs = [u.rpartition("/")[2] for u in urls.values()]
        sampler = Sampler(roots, f"{base}/{dbs[0]}", dbs)
        under: list[tuple[float, float]] = []
        thread = threading.Thread(target=kpi_loop, args=(urls[first], first, stop, under))
        thread.start()
        keys = {c: Settings(district_code=c).stream_key("events") for c in codes}
        t_first = None
        done_at = None
        base_acked = 0
        cpu0 = busy0 = io0 = disk0 = None
        deadline = time.monotonic() + args.timeout
        while time.monotonic() < deadline:
            now = time.time()
            got = sum(acked(redis, keys[c], ids[c]) for c in codes)
            if got and t_first is None:
                t_first, base_acked = now, got
                cpu0, busy0, io0, disk0 = sampler.sample(), machine_cpu_busy(), _iowait(), _disk()
            if got >= total:
                done_at = now
                break
            dead = [p for s in stacks for p in s.dead()]
            if dead:
                raise RuntimeError(f"a worker exited ({dead[0].popen.returncode}); {dead[0].log}")
            time.sleep(0.2)
        if done_at is None or t_first is None:
            raise RuntimeError(f"K={k}: the streams were not drained in {args.timeout:g} s")
        cpu1, busy1, io1, disk1 = sampler.sample(), machine_cpu_busy(), _iowait(), _disk()
        stop.set()
        thread.join()
        seconds = max(done_at - t_first, 1e-6)
        stored = total - base_acked
        out.update(
            events=total,
            drain_s=seconds,
            rate=stored / seconds,
            kpi_load_ms=[ms for t, ms in under if t_first <= t <= done_at],
            cores=cpu_share(cpu0, cpu1, seconds),
            machine=(busy1 - busy0) / seconds,
            iowait=(io1 - io0) / seconds,
            disk_mb_s=(disk1 - disk0) / seconds / 2**20,
            backlog={c: group_backlog(redis, keys[c]) for c in codes},
            deadletters={
                c: int(redis.xlen(Settings(district_code=c).stream_key("deadletter")))
                for c in codes
            },
            worker_rss_mb=cpu1.get("workers", {}).get("rss_mb", 0.0),
            redis_rss_mb=cpu1.get("redis", {}).get("rss_mb", 0.0),
            redis_used_mb=redis.info("memory")["used_memory"] / 2**20,
            pg_rss_mb=cpu1.get("postgres", {}).get("rss_mb"),
            log_errors=[line for s in stacks for line in s.log_errors()],
            uptime_end=uptime(),
        )
        redis.close()
        log(
            f"K={k}: {stored:,} events stored in {seconds:.1f} s = {out['rate']:,.0f}/s; "
            f"{out['uptime_end']}"
        )
    finally:
        stop.set()
        for stack in stacks:
            stack.stop()
        if sampler is not None:
            sampler.close()
        redis_server.stop()
        for url in urls.values():
            pg_drop(url)
    return out


def _iowait() -> float:
    import psutil

    return float(getattr(psutil.cpu_times(), "iowait", 0.0))


def _disk() -> float:
    import psutil

    io = psutil.disk_io_counters()
    return float(io.write_bytes) if io else 0.0


def saturation(r: dict[str, Any], per_district: int) -> str:
    """Name the part closest to its limit (each worker and Redis: one core; the box: nproc)."""
    ncpu = os.cpu_count() or 1
    workers = r["cores"].get("workers", 0.0)
    n_workers = r["k"] * per_district
    shares = {
        "worker CPU (per process)": workers / n_workers,
        "Redis CPU (one thread)": r["cores"].get("redis", 0.0),
        "PostgreSQL CPU": r["cores"].get("postgres", 0.0) / ncpu,
        "I/O wait": r["iowait"] / ncpu * 5,  # 20% of the CPUs waiting on disk counts as full
        "machine CPU (all users)": r["machine"] / ncpu,
    }
    name, value = max(shares.items(), key=lambda kv: kv[1])
    if name == "machine CPU (all users)":
        parts = {
            "workers": workers,
            "PostgreSQL": r["cores"].get("postgres", 0.0) + r["cores"].get("postgres-bg", 0.0),
            "Redis": r["cores"].get("redis", 0.0),
            "kpi loop": r["cores"].get("loadgen", 0.0),
        }
        parts["other users"] = max(0.0, r["machine"] - sum(parts.values()))
        top = max(parts, key=lambda p: parts[p])
        return f"machine CPU {value:.0%} (most: {top} {parts[top]:.2f} cores)"
    return f"{name} {value:.0%}"


def report(results: list[dict[str, Any]], args: argparse.Namespace) -> str:
    """Return the results as markdown tables: rates, CPU per stored event, memory."""
    header = [
        "K",
        "events",
        "drain s",
        "stored/s (all)",
        "stored/s per district",
        "kpi ms p50 / p95 idle",
        "kpi ms p50 / p95 loaded",
        "worker cores (each)",
        "PostgreSQL cores",
        "Redis cores",
        "machine busy / CPUs",
        "closest to its limit",
        "load average at end",
    ]
    rows = []
    cost = []
    memory = []
    for r in results:
        if "error" in r:
            rows.append([r["k"], "FAILED: " + r["error"], *[""] * (len(header) - 2)])
            continue
        c = r["cores"]
        n_workers = r["k"] * args.workers_per_district
        pg = c.get("postgres", 0.0) + c.get("postgres-bg", 0.0)
        idle, loaded = r["kpi_idle_ms"], r["kpi_load_ms"]
        rows.append(
            [
                r["k"],
                f"{r['events']:,}",
                f"{r['drain_s']:.1f}",
                f"{r['rate']:,.0f}",
                f"{r['rate'] / r['k']:,.0f}",
                f"{fmt_ms(pct(idle, 50))} / {fmt_ms(pct(idle, 95))}",
                f"{fmt_ms(pct(loaded, 50))} / {fmt_ms(pct(loaded, 95))}",
                f"{c.get('workers', 0.0):.2f} ({c.get('workers', 0.0) / n_workers:.2f})",
                f"{pg:.2f}",
                f"{c.get('redis', 0.0):.2f}",
                f"{r['machine']:.2f} / {os.cpu_count()}",
                saturation(r, args.workers_per_district),
                r["uptime_end"].split("load average:")[-1].strip(),
            ]
        )
        per = 1e6 / max(r["rate"], 1e-9)  # µs of one core per stored event, per core busy
        cost.append(
            [
                r["k"],
                f"{c.get('workers', 0.0) * per:.0f}",
                f"{pg * per:.0f}",
                f"{c.get('redis', 0.0) * per:.1f}",
                f"{c.get('loadgen', 0.0) * per:.1f}",
                f"{r['machine'] * per:.0f}",
                f"{r['iowait'] * 100 / (os.cpu_count() or 1):.0f}%",
                f"{r['disk_mb_s']:.1f}",
            ]
        )
        workers_mb = r.get("worker_rss_mb", 0.0)
        pg_mb = r.get("pg_rss_mb")
        used = r.get("redis_used_mb")
        memory.append(
            [
                r["k"],
                f"{workers_mb:,.0f} ({workers_mb / n_workers:,.0f})",
                f"{r.get('redis_rss_mb', 0.0):,.0f}",
                "–" if used is None else f"{used:,.0f}",
                f"{r['events']:,}",
                "–" if pg_mb is None else f"{pg_mb:,.0f}",
            ]
        )
    out = [markdown_table(header, rows), ""]
    out.append(
        markdown_table(
            [
                "K",
                "worker µs/event",
                "PostgreSQL µs/event",
                "Redis µs/event",
                "kpi loop µs/event",
                "machine µs/event",
                "iowait",
                "disk writes MB/s",
            ],
            cost,
        )
    )
    out += ["", "Memory at the end of the drain (RSS; the streams still hold every entry):", ""]
    out.append(
        markdown_table(
            [
                "K",
                "workers MiB (each)",
                "Redis RSS MiB",
                "Redis used_memory MiB",
                "stream entries held",
                "PostgreSQL backends MiB",
            ],
            memory,
        )
    )
    return "\n".join(out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--districts", default="1,2,5,10", help="values of K, comma-separated")
    p.add_argument("--events", type=int, default=100_000, help="events per district stream")
    p.add_argument("--history-scale", type=float, default=0.1, help="seeded history per district")
    p.add_argument("--workers-per-district", type=int, default=1)
    p.add_argument("--scheduler", action="store_true", help="run the workers' scheduler too")
    p.add_argument("--kpi-idle-s", type=float, default=5.0, help="seconds of idle kpi timing")
    p.add_argument("--timeout", type=float, default=900.0, help="seconds allowed per drain")
    p.add_argument("--keep-seeds", action="store_true", help="keep the seeded templates")
    p.add_argument("--fresh-seeds", action="store_true", help="re-seed kept templates")
    p.add_argument("--json", help="write the raw figures here")
    args = p.parse_args()
    ks = sorted({int(x) for x in args.districts.split(",") if x.strip()})
    if not ks or ks[0] < 1 or ks[-1] > len(CODES):
        p.error(f"K must be between 1 and {len(CODES)}")
    raise_on_signal()
    log(f"{os.cpu_count()} CPUs; PostgreSQL admin {pg_admin_url()}; {uptime()}")
    workdir = Path(tempfile.mkdtemp(prefix="wushi-districts-"))
    templates: dict[str, str] = {}
    results: list[dict[str, Any]] = []
    try:
        templates = seed_templates(CODES[: ks[-1]], args.history_scale, args.fresh_seeds)
        for k in ks:
            try:
                results.append(run_k(args, k, templates, workdir))
            except KeyboardInterrupt:
                raise
            except Exception as exc:
                log(f"K={k} failed: {exc!r}")
                results.append({"k": k, "error": repr(exc)[:200]})
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        if not args.keep_seeds:
            base = pg_admin_url().rpartition("/")[0]
            for name in templates.values():
                pg_drop(f"{base}/{name}")
    print(report(results, args), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1, default=str))
    bad = [
        r
        for r in results
        if "error" in r
        or any(r["deadletters"].values())
        or any(v != 0 for v in r["backlog"].values())
        or r["log_errors"]
    ]
    for r in bad:
        print(
            f"K={r['k']}: "
            + (
                r.get("error")
                or f"dead letters {r['deadletters']}, backlog "
                f"{r['backlog']}, log errors {r['log_errors'][:3]}"
            )
        )
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
