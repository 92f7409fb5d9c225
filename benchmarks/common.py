"""Shared helpers of the load, soak and district benchmarks (``benchmarks/load.py``, ...).

Databases (a fresh seed, or a copy of a seeded one), the real processes (``uvicorn`` with the
app, ``wushi worker``, ``wushi simulate``) in their own sessions, an embedded Redis, per-process
CPU and memory sampling with psutil, probe events, percentiles and the machine's load.
Nothing here is stubbed: the processes are the ones production runs.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import os
import random
import secrets
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for _p in (str(ROOT), str(ROOT / "tests")):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from browser import free_port, wait_http  # noqa: E402  (tests/ is on the path from here on)

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"
DEMO_DISTRICT = "341504"


# --- Printing --------------------------------------------------------------------------------


def log(message: str) -> None:
    """Print a progress line (stderr, flushed, with the wall-clock time)."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def uptime() -> str:
    """Return what ``uptime`` prints (the load averages are the figures' context)."""
    try:
        out = subprocess.run(["uptime"], capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        out = ""
    return out or "load average: " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def pct(values: Iterable[float], q: float) -> float:
    """Nearest-rank percentile (``q`` in 0..100); NaN for no values."""
    ordered = sorted(values)
    if not ordered:
        return math.nan
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def fmt_ms(value: float) -> str:
    """Format milliseconds for a table ("–" for no value)."""
    return "–" if value is None or math.isnan(value) else f"{value:,.0f}"


def markdown_table(header: list[str], rows: list[list[Any]]) -> str:
    """Return a GitHub markdown table (numbers right-aligned)."""

    def cell(v: Any) -> str:
        return str(v)

    align = [
        "---:" if rows and all(_numeric(r[i]) for r in rows) else "---" for i in range(len(header))
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(cell(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def _numeric(value: Any) -> bool:
    text = str(value).replace(",", "").replace("%", "").replace("–", "").strip()
    try:
        float(text.split()[0] if text else "0")
    except ValueError:
        return False
    return True


# --- Databases -------------------------------------------------------------------------------


def pg_admin_url() -> str:
    """Return the PostgreSQL URL to CREATE/DROP databases from (``WUSHI_BENCH_PG_URL``)."""
    return os.environ.get("WUSHI_BENCH_PG_URL") or os.environ.get(
        "WUSHI_TEST_POSTGRES_URL", DEFAULT_PG
    )


def pg_create(name: str, template: str | None = None, admin_url: str | None = None) -> str:
    """Create the PostgreSQL database ``name`` (optionally from a template); return its URL."""
    from sqlalchemy import text

    from datasources.db import make_engine

    admin_url = admin_url or pg_admin_url()
    admin = make_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            suffix = f' TEMPLATE "{template}"' if template else ""
            conn.execute(text(f'CREATE DATABASE "{name}"{suffix}'))
    finally:
        admin.dispose()
    return f"{admin_url.rpartition('/')[0]}/{name}"


def pg_drop(url: str, admin_url: str | None = None) -> None:
    """Drop the PostgreSQL database of ``url`` (closing its connections)."""
    from sqlalchemy import text

    from datasources.db import make_engine

    admin = make_engine(admin_url or pg_admin_url(), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{url.rpartition("/")[2]}" WITH (FORCE)'))
    finally:
        admin.dispose()


def pg_exists(name: str, admin_url: str | None = None) -> bool:
    """Tell whether the PostgreSQL database ``name`` exists."""
    from sqlalchemy import text

    from datasources.db import make_engine

    admin = make_engine(admin_url or pg_admin_url(), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            return bool(
                conn.scalar(text("select 1 from pg_database where datname = :n"), {"n": name})
            )
    finally:
        admin.dispose()


def recode_geography(geography: Any, district: str) -> Any:
    """Return the demo geography with every code's district prefix replaced by ``district``.

    The same as ``tests/conftest.py``'s: each district of a multi-district run gets the demo
    district's shapes under its own codes (the registry refuses codes of another district).
    """
    from geo.model import Geography

    def fix(code: str | None) -> str | None:
        return None if code is None else district + code[6:]

    def area(a: Any) -> Any:
        return dataclasses.replace(
            a,
            code=fix(a.code),
            parent_code=fix(a.parent_code),
            town_code=fix(a.town_code),
            village_code=fix(a.village_code),
        )

    return Geography(
        district=area(geography.district),
        towns=tuple(area(a) for a in geography.towns),
        villages=tuple(area(a) for a in geography.villages),
        grids=tuple(area(a) for a in geography.grids),
    )


def seed_database(url: str, district: str = DEMO_DISTRICT, history_scale: float = 0.0) -> float:
    """Migrate and seed the demo district under ``district``'s codes; return the seconds taken.

    ``history_scale`` 0 seeds the geography, people and callers only (``wushi seed --demo
    --no-history``); above 0 it also generates that much of the demo history and its rollups
    (``wushi seed --demo --scale S``).
    """
    from datasources.db import make_engine, upgrade
    from datasources.demo.seed import seed_demo
    from geo.partition import build_demo_geography

    began = time.perf_counter()
    now = dt.datetime.now(dt.UTC)
    geography = build_demo_geography(2022)
    if district != DEMO_DISTRICT:
        geography = recode_geography(geography, district)
    engine = make_engine(url)
    try:
        upgrade(engine)
        seed_demo(engine, geography, now=now)
        if history_scale > 0:
            from datasources.demo.history import HISTORY_START, generate_history
            from datasources.periods import local_day
            from datasources.rollups import rebuild_rollups

            generate_history(engine, now=now, scale=history_scale)
            rebuild_rollups(engine, HISTORY_START, local_day(now))
    finally:
        engine.dispose()
    return time.perf_counter() - began


def copy_database(source: str, workdir: Path, label: str = "load") -> str:
    """Return the URL of a private copy of a seeded database (SQLite file or PostgreSQL URL).

    SQLite: the WAL is checkpointed and the file copied. PostgreSQL: ``CREATE DATABASE ...
    TEMPLATE`` (the source must have no other connections while it is copied).
    """
    from datasources.db import make_engine

    if source.startswith("sqlite"):
        engine = make_engine(source)
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        engine.dispose()
        target = workdir / f"{label}.db"
        shutil.copyfile(source.removeprefix("sqlite:///"), target)
        return f"sqlite:///{target}"
    if "://" not in source:  # a bare path
        return copy_database(f"sqlite:///{Path(source).resolve()}", workdir, label)
    template = source.rpartition("/")[2]
    admin = f"{source.rpartition('/')[0]}/{pg_admin_url().rpartition('/')[2]}"
    return pg_create(f"wushi_{label}_{uuid.uuid4().hex[:8]}", template=template, admin_url=admin)


def drop_database(url: str) -> None:
    """Delete a database made by ``copy_database`` or ``pg_create`` (SQLite: the file)."""
    if url.startswith("sqlite"):
        path = Path(url.removeprefix("sqlite:///"))
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)
        return
    admin = f"{url.rpartition('/')[0]}/{pg_admin_url().rpartition('/')[2]}"
    pg_drop(url, admin)


def district_of(url: str) -> str:
    """Return the district code of a seeded database (the first six digits of its towns)."""
    from sqlalchemy import select

    from datasources.db import make_engine
    from datasources.models import Town

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            code = conn.scalar(select(Town.code).limit(1))
    finally:
        engine.dispose()
    if not code:
        raise SystemExit(f"{url} holds no towns: seed it first (wushi seed --demo)")
    return str(code)[:6]


def add_users(url: str, users: list[tuple[str, str, str, str | None]], threads: int = 2) -> None:
    """Create logins (username, password, role, area) that do not exist yet."""
    from concurrent.futures import ThreadPoolExecutor

    from sqlalchemy import select

    from datasources.db import make_engine
    from datasources.models import User
    from datasources.users import add_user

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            have = set(conn.scalars(select(User.username)))
        todo = [u for u in users if u[0] not in have]
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(lambda u: add_user(engine, u[0], u[1], u[2], u[3]), todo))
    finally:
        engine.dispose()


def probe_devices(url: str, n: int = 200, seed: int = 7) -> list[tuple[str, str]]:
    """Return ``n`` (device id, grid code) pairs of the database, drawn with a fixed seed."""
    from sqlalchemy import select

    from datasources.db import make_engine
    from datasources.models import Device

    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            rows = [(str(d), str(g)) for d, g in conn.execute(select(Device.id, Device.grid_code))]
    finally:
        engine.dispose()
    return random.Random(seed).sample(rows, min(n, len(rows)))


def probe_event(device: str, grid: str) -> dict[str, Any]:
    """Return a valid ``call.key`` (thumbs-up) event for a real device: it shows in the feed."""
    from datasources.periods import SHANGHAI

    return {
        "v": 1,
        "id": uuid.uuid4().hex,
        "kind": "call.key",
        "ts": dt.datetime.now(SHANGHAI).isoformat(timespec="milliseconds"),
        "grid": grid,
        "device": device,
        "key": "satisfied",
    }


# --- Processes -------------------------------------------------------------------------------


@dataclasses.dataclass
class Proc:
    """A process started here, in its own session, with a role name for the report."""

    role: str
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid


class Stack:
    """Real ``uvicorn`` web process(es), ``wushi worker``(s) and ``wushi simulate`` as children.

    One district: its database URL, a Redis URL and a var dir; every child gets the same
    ``WUSHI_*`` environment (plus a fixed secret key, so several web processes accept each
    other's session cookies). ``stop()`` ends every child with SIGTERM, then SIGKILL.
    """

    def __init__(
        self,
        database_url: str,
        redis_url: str,
        workdir: Path,
        district: str = DEMO_DISTRICT,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.database_url = database_url
        self.redis_url = redis_url
        self.workdir = workdir
        self.district = district
        self.port = free_port()
        self.procs: list[Proc] = []
        (workdir / "var").mkdir(parents=True, exist_ok=True)
        self.env = os.environ | {
            "WUSHI_DATABASE_URL": database_url,
            "WUSHI_REDIS_URL": redis_url,
            "WUSHI_DISTRICT_CODE": district,
            "WUSHI_VAR_DIR": str(workdir / "var"),
            "WUSHI_PORT": str(self.port),
            "WUSHI_LOG_LEVEL": "WARNING",
            "WUSHI_SECRET_KEY": secrets.token_urlsafe(32),
        }
        self.env.update(extra_env or {})

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def spawn(self, role: str, args: list[str], log_name: str) -> Proc:
        """Start a child in its own session, its output appended to ``workdir/log_name``."""
        log_path = self.workdir / log_name
        with open(log_path, "ab") as out:
            popen = subprocess.Popen(
                args,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        proc = Proc(role, popen, log_path)
        self.procs.append(proc)
        return proc

    def start_web(self, workers: int = 1) -> Proc:
        """Start ``uvicorn dashboard.asgi:app_factory`` (with ``--workers`` when above 1)."""
        args = [
            sys.executable,
            "-m",
            "uvicorn",
            "dashboard.asgi:app_factory",
            "--factory",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--log-level",
            "warning",
            "--no-access-log",
        ]
        if workers > 1:
            args += ["--workers", str(workers)]
        proc = self.spawn("web", args, "web.log")
        wait_http(f"{self.base}/healthz", timeout=90.0)
        return proc

    def start_worker(self, consumer: str = "w1", scheduler: bool = True) -> Proc:
        """Start ``wushi worker --consumer NAME``."""
        args = [sys.executable, "-m", "dashboard.cli", "worker", "--consumer", consumer]
        if not scheduler:
            args.append("--no-scheduler")
        return self.spawn("worker", args, f"worker-{consumer}.log")

    def start_simulator(self, rate: float, seed: int | None = 1) -> Proc:
        """Start ``wushi simulate --rate RATE``."""
        args = [sys.executable, "-m", "dashboard.cli", "simulate", "--rate", f"{rate:g}"]
        if seed is not None:
            args += ["--seed", str(seed)]
        return self.spawn("simulator", args, "simulate.log")

    def stop_role(self, role: str) -> None:
        """Stop the children of one role."""
        stop_procs([p for p in self.procs if p.role == role])

    def stop(self) -> None:
        """Stop every child (SIGTERM to its session, SIGKILL after 15 s)."""
        stop_procs(self.procs)
        self.procs.clear()

    def dead(self) -> list[Proc]:
        """Return the children that exited."""
        return [p for p in self.procs if p.popen.poll() is not None]

    def log_errors(self, warnings: bool = False) -> list[str]:
        """Return error lines of the children's logs (tracebacks, ERROR and CRITICAL lines;
        with ``warnings``, WARNING lines too)."""
        found: list[str] = []
        for proc in self.procs:
            found += log_errors(proc.log, warnings)
        return found


def stop_procs(procs: list[Proc]) -> None:
    """SIGTERM each process's session, wait up to 15 s, then SIGKILL what is left."""
    for proc in procs:
        if proc.popen.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    for proc in procs:
        try:
            proc.popen.wait(timeout=15)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.popen.wait()


def log_errors(path: Path, warnings: bool = False) -> list[str]:
    """Return the lines of a log that report errors (deduplicated, at most 20).

    With ``warnings``, WARNING lines count too: the servers log a lost Redis, a page's
    queue overflowing or its live feed ending as warnings, and a load run with any of them
    did not serve every page.
    """
    if not path.exists():
        return []
    markers = ("Traceback", " ERROR ", " CRITICAL ", "ERROR:", "Exception in ")
    if warnings:
        markers += (" WARNING ", "WARNING:")
    lines = []
    for line in path.read_text(errors="replace").splitlines():
        if any(m in line for m in markers) and line not in lines:
            lines.append(f"{path.name}: {line.strip()[:300]}")
    return lines[:20]


def raise_on_signal() -> None:
    """Turn SIGTERM (and SIGINT, even in the background) into KeyboardInterrupt."""

    def handler(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


# --- Sampling --------------------------------------------------------------------------------


class Sampler:
    """Per-role CPU time and RSS of process trees (psutil), and PostgreSQL backends.

    Roles map to root pids; each root's descendants count for its role (uvicorn's workers).
    ``pg_url`` and ``pg_databases`` add the PostgreSQL backends serving those databases (from
    ``pg_stat_activity``) as role ``postgres``, and the server's shared background processes
    (checkpointer, WAL writer, ...) as ``postgres-bg``. With ``include_self``, this process is
    ``loadgen`` and any other descendant of it (Playwright's driver and Chromium) ``browser``.
    """

    def __init__(
        self,
        roots: dict[str, list[int]],
        pg_url: str | None = None,
        pg_databases: list[str] | None = None,
        include_self: bool = True,
    ) -> None:
        import psutil

        self._psutil = psutil
        self.roots = roots
        self.pg_databases = pg_databases or []
        self.include_self = include_self
        self._procs: dict[int, Any] = {}
        self._engine = None
        if pg_url and self.pg_databases:
            from datasources.db import make_engine

            self._engine = make_engine(pg_url, pool_size=1, max_overflow=0)

    def close(self) -> None:
        """Close the PostgreSQL connection."""
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def _proc(self, pid: int) -> Any:
        proc = self._procs.get(pid)
        if proc is None:
            proc = self._procs[pid] = self._psutil.Process(pid)
        return proc

    def pids(self) -> dict[str, list[int]]:
        """Return the live pids of each role (trees expanded)."""
        out: dict[str, list[int]] = {}
        taken: set[int] = set()
        for role, roots in self.roots.items():
            pids: list[int] = []
            for root in roots:
                try:
                    proc = self._proc(root)
                    pids += [root, *(c.pid for c in proc.children(recursive=True))]
                except self._psutil.Error:
                    continue
            out[role] = pids
            taken.update(pids)
        if self._engine is not None:
            try:
                out["postgres"], out["postgres-bg"] = self._pg_pids()
            except Exception:  # the server is shared: a failed look-up skips one sample
                pass
        if self.include_self:
            me = os.getpid()
            out["loadgen"] = [me]
            try:
                rest = [c.pid for c in self._proc(me).children(recursive=True)]
            except self._psutil.Error:
                rest = []
            browser = [p for p in rest if p not in taken]
            if browser:
                out["browser"] = browser
        return out

    def _pg_pids(self) -> tuple[list[int], list[int]]:
        from sqlalchemy import text

        assert self._engine is not None
        with self._engine.connect() as conn:
            backends = [
                int(p)
                for p in conn.scalars(
                    text(
                        "select pid from pg_stat_activity where datname = any(:d) "
                        "and pid <> pg_backend_pid()"
                    ),
                    {"d": self.pg_databases},
                )
            ]
            background = [
                int(p)
                for p in conn.scalars(
                    text(
                        "select pid from pg_stat_activity where backend_type in "
                        "('checkpointer', 'background writer', 'walwriter', "
                        "'autovacuum launcher', 'autovacuum worker')"
                    )
                )
            ]
        return backends, background

    def sample(self) -> dict[str, dict[str, float]]:
        """Return {role: {"rss_mb", "cpu_s", "n"}} now (CPU: user + system seconds so far)."""
        out: dict[str, dict[str, float]] = {}
        for role, pids in self.pids().items():
            rss = cpu = 0.0
            n = 0
            for pid in pids:
                try:
                    proc = self._proc(pid)
                    with proc.oneshot():
                        rss += proc.memory_info().rss
                        times = proc.cpu_times()
                        cpu += times.user + times.system
                    n += 1
                except self._psutil.Error:
                    continue
            out[role] = {"rss_mb": rss / 2**20, "cpu_s": cpu, "n": n}
        return out

    def per_process_rss(self) -> dict[str, float]:
        """Return {"role:pid": RSS MiB} of every process of every role."""
        out: dict[str, float] = {}
        for role, pids in self.pids().items():
            for pid in pids:
                try:
                    out[f"{role}:{pid}"] = self._proc(pid).memory_info().rss / 2**20
                except self._psutil.Error:
                    continue
        return out


def machine_cpu_busy() -> float:
    """Return the machine's busy CPU seconds so far (all cores, everyone's processes)."""
    import psutil

    t = psutil.cpu_times()
    return float(t.user + t.nice + t.system + t.irq + t.softirq + getattr(t, "steal", 0.0))


def cpu_share(
    before: dict[str, dict[str, float]], after: dict[str, dict[str, float]], seconds: float
) -> dict[str, float]:
    """Return each role's CPU use between two samples, in cores (1.0 = one core busy)."""
    return {
        role: max(0.0, after[role]["cpu_s"] - before.get(role, {"cpu_s": 0.0})["cpu_s"])
        / max(seconds, 1e-9)
        for role in after
    }


# --- Streams ---------------------------------------------------------------------------------


def _field(info: dict[Any, Any], name: str) -> Any:
    return info.get(name, info.get(name.encode()))


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def group_backlog(redis: Any, stream: str, group: str = "workers") -> int:
    """Return the entries of ``stream`` that ``group`` has not acknowledged (pending + unread).

    Redis >= 7 reports the unread count (``lag``); Redis 6.2 (the embedded server) does not,
    so the entries after the group's last-delivered id are counted with XRANGE.
    """
    for info in redis.xinfo_groups(stream):
        if _text(_field(info, "name")) != group:
            continue
        pending = int(_field(info, "pending") or 0)
        lag = _field(info, "lag")
        if lag is not None:
            return pending + int(lag)
        last = _text(_field(info, "last-delivered-id"))
        unread = len(redis.xrange(stream, min=f"({last}", max="+", count=10_000_000))
        return pending + unread
    return -1


def entries_added(redis: Any, stream: str) -> int | None:
    """Return how many entries were ever added to ``stream`` (Redis >= 7), else None."""
    try:
        info = redis.xinfo_stream(stream)
    except Exception:
        return None
    value = _field(info, "entries-added")
    return None if value is None else int(value)
