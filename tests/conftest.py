"""Shared fixtures: real SQLite files and, where reachable, a real PostgreSQL database.

PostgreSQL is taken from ``WUSHI_TEST_POSTGRES_URL`` (default: this machine's
``postgresql://postgres@127.0.0.1:5432/test``); set it empty to skip the PostgreSQL runs.
Each test that asks for one gets a freshly created database, dropped afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from functools import cache

import pytest
from sqlalchemy import Engine, text

from datasources.db import make_engine, upgrade

DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"


@cache
def postgres_admin_url() -> str | None:
    """Return the PostgreSQL URL to create test databases from, or None if unreachable."""
    url = os.environ.get("WUSHI_TEST_POSTGRES_URL", DEFAULT_PG)
    if not url:
        return None
    try:
        engine = make_engine(url, connect_args={"connect_timeout": 2})
        with engine.connect() as conn:
            conn.execute(text("select 1"))
        engine.dispose()
    except Exception:
        if os.environ.get("WUSHI_TEST_REQUIRE_POSTGRES"):
            raise
        return None
    return url


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """Yield the URL of a new, empty PostgreSQL database, dropped after the test."""
    admin_url = postgres_admin_url()
    if admin_url is None:
        pytest.skip("PostgreSQL not reachable (WUSHI_TEST_POSTGRES_URL)")
    name = f"wushi_t_{uuid.uuid4().hex[:12]}"
    admin = make_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    base, _, _ = admin_url.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path) -> str:
    """A URL of an empty database: a SQLite file, then (where reachable) PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'wushi.db'}"
    return request.getfixturevalue("postgres_url")  # type: ignore[no-any-return]


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """An engine on a migrated, empty database of each backend."""
    eng = make_engine(database_url)
    upgrade(eng)
    yield eng
    eng.dispose()


