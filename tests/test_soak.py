"""The soak (``benchmarks/soak.py``): 10 minutes at 50 events/s with 10 wall pages.

Not in the default run (marker ``soak``, excluded by ``addopts``); run it on its own, on a quiet
machine:

    .venv/bin/pytest -m soak

It seeds a fresh PostgreSQL database (the demo history, a few minutes), so it needs the test
server (``WUSHI_TEST_POSTGRES_URL``). The script's defaults hold the simulated state at its
steady state (stream capped at 5,000 entries, ``--speed 300`` for the ticket stories) and run
the ``redis-server`` on PATH if there is one (see its docstring for why). Extra options for the
script can be given in ``WUSHI_SOAK_ARGS`` (e.g. ``--db postgresql://.../seeded --duration
300`` or ``--redis-server bundled``).
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from browser import require_chromium
from conftest import postgres_admin_url

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.soak
def test_soak_memory_stays_flat(tmp_path):
    """No error in 10 minutes, and web, worker, simulator and Redis grow by at most 10%."""
    require_chromium()
    extra = shlex.split(os.environ.get("WUSHI_SOAK_ARGS", ""))
    if "--db" not in extra and postgres_admin_url() is None:
        pytest.skip("PostgreSQL not reachable (WUSHI_TEST_POSTGRES_URL)")
    cmd = [sys.executable, str(ROOT / "benchmarks" / "soak.py"), *extra]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=3600, cwd=tmp_path)
    print(proc.stdout)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
