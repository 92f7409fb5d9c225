"""Soak: 10 minutes of live updates; does any server process keep growing?

    .venv/bin/python benchmarks/soak.py [--duration 600] [--rate 50] [--walls 10]
        [--settle 120] [--max-growth 10] [any option of benchmarks/load.py]

Runs ``benchmarks/load.py`` with soak defaults (10 wall pages on live updates, no tablets,
50 events/s, 10 minutes measured, RSS sampled every 30 s) and then compares each process
group's RSS: the baseline is the first sample ``--settle`` seconds into the window (caches
filled, the stream at its cap), the end is the last sample of the window. Growth above
``--max-growth`` percent (default 10) for web, worker, simulator or Redis, or any error of the
load run, exits 1.

The stream is capped at ``--stream-maxlen`` entries (default 5,000, reached in 100 s at
50 events/s): with the production default of 2,000,000 the stream is retained by design and
Redis would grow by the size of every event kept (about half a kilobyte each), which measures
retention, not a leak. The PostgreSQL backends, this load generator and Chromium are reported
but not checked: a backend's RSS counts the shared buffers it has touched, so it grows towards
``shared_buffers`` by design.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import log, markdown_table, pg_admin_url, raise_on_signal  # noqa: E402
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
    args = p.parse_args()
    check_args(p, args)
    if args.settle >= args.duration:
        p.error("--settle must be shorter than --duration")
    raise_on_signal()
    log(
        f"soak: {args.duration:g} s at {args.rate:g} events/s, {args.walls} walls, "
        f"{args.tablets} tablets; PostgreSQL admin {pg_admin_url()}"
    )
    result, summary = execute(args)
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
            f"of the {args.duration:g} s window (MiB):"
        )
    print(markdown_table(["process group", "baseline", "end", "peak", "growth", "target"], rows))
    print()
    print("RSS every sample (MiB):")
    print(timeline(result))
    errors = sum(summary["errors"].values())
    if over:
        print(f"\nRSS grew more than {args.max_growth:g}%: {', '.join(over)}")
    if errors:
        print(f"\n{errors} error(s) during the soak")
    sys.exit(1 if over or errors or not grown else 0)


if __name__ == "__main__":
    main()
