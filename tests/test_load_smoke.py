"""``benchmarks/load.py`` in a tiny configuration, so that the load script cannot rot.

Two tablets and two socket walls for a few seconds at 20 events/s against a copy of the
session's seeded SQLite database: the real web server, worker, simulator and an embedded Redis,
the protocol captured from a real Chromium. Takes about 40 s; the full run is a separate
command (docs/performance.md, "Load and soak").
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from browser import require_chromium

ROOT = Path(__file__).resolve().parents[1]


def test_load_script_runs_clean(seeded_templates, tmp_path):
    """Filter changes and live pushes are answered, every probe reaches both walls, no errors."""
    require_chromium()
    out = tmp_path / "load.json"
    cmd = [
        sys.executable,
        str(ROOT / "benchmarks" / "load.py"),
        "--db",
        f"sqlite:///{seeded_templates['sqlite']}",
        "--tablets",
        "2",
        "--walls",
        "2",
        "--rate",
        "20",
        "--warmup",
        "3",
        "--duration",
        "6",
        "--drain",
        "5",
        "--think",
        "0.5:1.5",
        "--json",
        str(out),
    ]
    proc = subprocess.run(
        cmd, capture_output=True, text=True, timeout=240, cwd=tmp_path, env=dict(os.environ)
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert "| figure | value | target |" in proc.stdout
    summary = json.loads(out.read_text())["summary"]
    assert summary["errors"] == {}
    assert summary["by_tag"]["filter"]["n"] > 0
    # Live pushes carry the feed, tiles and map over the socket and trigger no HTTP callback.
    assert "live" not in summary["by_tag"]
    pushes = summary["pushes"]
    for pushed in (
        "/ live-feed-html",
        "/wall live-feed-html",
        "/ kpi-tiles-html",
        "/ grid-style",
        "/wall grid-style",
    ):
        assert pushes.get(pushed, 0) > 0, (pushed, pushes)
    assert summary["interactions"]["n"] > 0
    ws = summary["event_ws"]
    assert ws["expected"] > 0 and ws["seen"] == ws["expected"]
    assert {"web", "worker", "redis", "simulator"} <= set(summary["memory"])
