"""Helpers for the browser tests: a real web server, worker and Redis, and headless Chromium.

Nothing is stubbed: ``LiveStack`` starts ``uvicorn`` with the real app and a real ``wushi
worker`` as subprocesses against a copy of the seeded database and an embedded Redis server;
``browser_page`` drives Debian's Chromium through Playwright.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
ARTIFACTS = Path(
    os.environ.get("WUSHI_TEST_ARTIFACTS", Path(tempfile.gettempdir()) / "wushi-shots")
)


def free_port() -> int:
    """Return a free TCP port on 127.0.0.1."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, timeout: float = 60.0) -> None:
    """Wait until ``url`` answers 200."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except Exception:
            time.sleep(0.3)
    raise TimeoutError(f"{url} did not come up in {timeout} s")


@dataclass
class LiveStack:
    """A web server and a worker, as subprocesses, against a database and a Redis URL."""

    database_url: str
    redis_url: str
    var_dir: Path
    port: int = field(default_factory=free_port)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        return os.environ | {
            "WUSHI_DATABASE_URL": self.database_url,
            "WUSHI_REDIS_URL": self.redis_url,
            "WUSHI_VAR_DIR": str(self.var_dir),
            "WUSHI_PORT": str(self.port),
            "WUSHI_LOG_LEVEL": "WARNING",
        }

    def _spawn(self, args: list[str], log_name: str) -> None:
        # The child keeps its own copy of the log's descriptor; the parent closes its own.
        with open(self.var_dir / log_name, "ab") as log:
            self.processes.append(
                subprocess.Popen(
                    args,
                    env=self.env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )

    def start_web(self) -> None:
        self._spawn(
            [
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
            ],
            "web.log",
        )
        wait_http(f"{self.base}/healthz")

    def start_worker(self) -> None:
        self._spawn([sys.executable, "-m", "dashboard.cli", "worker"], "worker.log")

    def stop(self) -> None:
        for proc in self.processes:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.processes:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        self.processes.clear()


def copy_sqlite(url: str, target: Path) -> str:
    """Copy a SQLite database (checkpointing its WAL first) and return the copy's URL."""
    from datasources.db import make_engine

    engine = make_engine(url)
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    shutil.copyfile(url.removeprefix("sqlite:///"), target)
    return f"sqlite:///{target}"


def require_chromium() -> None:
    """Skip (or, in CI, fail) when Chromium is not installed."""
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            raise RuntimeError("Chromium is missing: `make system-deps` installs it")
        pytest.skip("Chromium not installed (make system-deps)")


@contextmanager
def browser_context(width: int = 1366, height: int = 1024, **options: Any) -> Iterator[Any]:
    """Yield a fresh Chromium context with its own profile (``options``: e.g. has_touch)."""
    from playwright.sync_api import sync_playwright

    require_chromium()
    profile = tempfile.mkdtemp(prefix="wushi-chromium-")
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            profile,
            executable_path=CHROMIUM,
            args=CHROMIUM_ARGS,
            viewport={"width": width, "height": height},
            **options,
        )
        try:
            yield context
        finally:
            context.close()
            shutil.rmtree(profile, ignore_errors=True)


def login(page: Any, base: str, username: str, password: str) -> None:
    """Log in through the real form."""
    page.goto(f"{base}/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(lambda url: "/login" not in url, timeout=15_000)


def watch_errors(page: Any) -> list[str]:
    """Collect console errors and page errors of ``page``."""
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    return errors


def wait_for(page: Any, predicate_js: str, timeout_s: float = 20.0) -> Any:
    """Poll a JS expression (evaluated, not eval'd: CSP-safe) until it is truthy."""
    deadline = time.monotonic() + timeout_s
    value = None
    while time.monotonic() < deadline:
        try:
            value = page.evaluate(predicate_js)
        except Exception as exc:  # the page may be between renders: try again
            value = repr(exc)[:200]
        else:
            if value:
                return value
        time.sleep(0.1)
    raise TimeoutError(f"{predicate_js!r} stayed falsy ({value!r})")
