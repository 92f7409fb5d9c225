"""One typed settings object, read from ``WUSHI_*`` environment variables and ``.env``.

Every setting has a default and one line of help (the field description); the README's
settings table is checked against this class by ``tests/test_settings.py``.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from functools import cached_property
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """The process settings; build one with ``Settings()`` and pass it down explicitly."""

    model_config = SettingsConfigDict(
        env_prefix="WUSHI_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    var_dir: Path = Field(
        default=Path("var"),
        description="Folder for local state: the SQLite file, embedded Redis, generated secrets.",
    )
    database_url: str = Field(
        default="",
        description="SQLAlchemy URL of the database; empty means a SQLite file under the var dir.",
    )
    redis_url: str = Field(
        default="",
        description="Redis URL (redis://host:port/db); empty starts an embedded Redis under the "
        "var dir.",
    )
    district_code: str = Field(
        default="341504",
        description="Administrative code of the district; part of every Redis key.",
    )
    secret_key: str = Field(
        default="",
        description="Key that signs session cookies; empty means generated once and kept in "
        "var/secret_key.",
    )
    ingest_token: str = Field(
        default="",
        description="Bearer token for POST /api/v1/events; empty means generated once and kept "
        "in var/ingest_token.",
    )
    host: str = Field(default="127.0.0.1", description="Address the web server listens on.")
    port: int = Field(default=8050, description="Port the web server listens on.")
    tile_url: str = Field(
        default="",
        description="URL template of a base-map tile service; empty draws boundaries on a "
        "plain background (offline).",
    )
    stream_maxlen: int = Field(
        default=2_000_000,
        description="Approximate maximum length of the event stream (XADD MAXLEN ~).",
    )
    log_level: str = Field(
        default="INFO", description="Logging level: DEBUG, INFO, WARNING or ERROR."
    )
    log_format: str = Field(
        default="text",
        description="Log line format: 'text' (readable) or 'json' (one JSON object per line, "
        "for log collectors).",
    )
    metrics_token: str = Field(
        default="",
        description="Bearer token for GET /metrics (web and worker); empty allows direct "
        "loopback clients only.",
    )
    worker_metrics_port: int = Field(
        default=0,
        ge=0,
        le=65535,
        description="Port on which `wushi worker` serves its own /metrics; 0 means not at all.",
    )
    worker_metrics_host: str = Field(
        default="127.0.0.1", description="Address the worker's metrics port listens on."
    )
    worker_batch: int = Field(
        default=2000,
        ge=1,
        le=5000,
        description="Stream entries the worker reads and stores per batch.",
    )
    worker_block_ms: int = Field(
        default=2000,
        ge=100,
        le=8000,
        description="How long XREADGROUP waits for new entries (kept under the socket timeout).",
    )
    worker_consumer: str = Field(
        default="",
        description="Consumer name of this worker in the group; empty means the host name "
        "(give each worker on one host its own).",
    )
    park_timeout_s: float = Field(
        default=600.0,
        description="Seconds a ticket event whose ticket is not stored yet is retried before "
        "it is dead-lettered as 'unknown ticket'.",
    )
    reclaim_idle_ms: int = Field(
        default=60_000,
        description="Idle time after which a worker claims another consumer's pending entries.",
    )
    reclaim_interval_s: float = Field(
        default=30.0,
        description="Seconds between the worker's XAUTOCLAIM sweeps for dead consumers.",
    )
    registry_refresh_s: float = Field(
        default=60.0, description="Seconds between reloads of the known grids, devices and staff."
    )
    deadlines: str = Field(
        default="",
        description='JSON overrides of the ticket deadlines per category, e.g. {"safety": '
        '{"arrive_hours": 1, "close_hours": 48}}; empty keeps the defaults.',
    )
    device_offline_hours: float = Field(
        default=24.0,
        description="Hours without a heartbeat after which a caller is marked offline.",
    )
    ingest_max_events: int = Field(
        default=5000,
        description="Most events one POST /api/v1/events request may carry (413 beyond).",
    )
    ingest_max_bytes: int = Field(
        default=5_000_000, description="Largest POST /api/v1/events body in bytes (413 beyond)."
    )
    session_hours: float = Field(
        default=12.0,
        gt=0,
        le=24 * 30,
        description="Hours a login session lasts before the user must log in again.",
    )
    trusted_proxies: str = Field(
        default="",
        description="Comma-separated IP addresses (or networks) of reverse proxies whose "
        "X-Forwarded-For header names the client; empty trusts no proxy.",
    )

    @field_validator("district_code")
    @classmethod
    def _district_code_is_six_digits(cls, value: str) -> str:
        if not (len(value) == 6 and value.isdigit()):
            raise ValueError("must be a six-digit administrative code, e.g. 341504")
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _trusted_proxies_are_addresses(cls, value: str) -> str:
        for item in filter(None, (part.strip() for part in value.split(","))):
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"{item!r} is not an IP address or network") from None
        return value

    @field_validator("log_format")
    @classmethod
    def _log_format_is_known(cls, value: str) -> str:
        value = value.strip().lower()
        if value not in ("text", "json"):
            raise ValueError("must be 'text' or 'json'")
        return value

    @field_validator("port")
    @classmethod
    def _port_in_range(cls, value: int) -> int:
        if not 0 < value < 65536:
            raise ValueError("must be between 1 and 65535")
        return value

    @cached_property
    def resolved_database_url(self) -> str:
        """Return the database URL, defaulting to a SQLite file under the var dir."""
        if self.database_url:
            return self.database_url
        self.var_dir.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{(self.var_dir / 'wushi.db').resolve()}"

    @cached_property
    def resolved_secret_key(self) -> str:
        """Return the session-signing key, generating and keeping one on first use."""
        return self.secret_key or _kept_secret(self.var_dir / "secret_key")

    @cached_property
    def resolved_ingest_token(self) -> str:
        """Return the ingest bearer token, generating and keeping one on first use."""
        return self.ingest_token or _kept_secret(self.var_dir / "ingest_token")

    def stream_key(self, name: str = "events") -> str:
        """Return a Redis key of this district, hash-tagged so one district stays on one shard."""
        return f"wushi:{{{self.district_code}}}:{name}"


def _kept_secret(path: Path) -> str:
    """Read a secret from ``path``, creating it (mode 0600) with a random value if missing."""
    if path.exists():
        value = path.read_text(encoding="utf-8").strip()
        if value:
            return value
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(32)
    # O_EXCL so two processes starting at once cannot both write different secrets.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text(encoding="utf-8").strip()
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(value + "\n")
    return value
