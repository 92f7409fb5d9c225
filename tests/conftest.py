"""Shared fixtures: real SQLite files and, where reachable, a real PostgreSQL database.

PostgreSQL is taken from ``WUSHI_TEST_POSTGRES_URL`` (default: this machine's
``postgresql://postgres@127.0.0.1:5432/test``); set it empty to skip the PostgreSQL runs.
Each test that asks for one gets a freshly created database, dropped afterwards.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from functools import cache
from pathlib import Path

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
    url = _create_pg_database()
    yield url
    _drop_pg_database(url)


def _create_pg_database(template: str | None = None) -> str:
    admin_url = postgres_admin_url()
    if admin_url is None:
        pytest.skip("PostgreSQL not reachable (WUSHI_TEST_POSTGRES_URL)")
    name = f"wushi_t_{uuid.uuid4().hex[:12]}"
    admin = make_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        suffix = f' TEMPLATE "{template}"' if template else ""
        conn.execute(text(f'CREATE DATABASE "{name}"{suffix}'))
    admin.dispose()
    return f"{admin_url.rpartition('/')[0]}/{name}"


def _drop_pg_database(url: str) -> None:
    admin_url = postgres_admin_url()
    assert admin_url is not None
    admin = make_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{url.rpartition("/")[2]}" WITH (FORCE)'))
    admin.dispose()


BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@pytest.fixture(scope="session", params=BACKENDS)
def history_url(request: pytest.FixtureRequest, tmp_path_factory) -> Iterator[str]:
    """A database seeded once per session by ``wushi db upgrade`` and ``wushi seed --demo``.

    Read-only: tests that change rows take ``history_copy`` instead. When the session will
    need both backends, the PostgreSQL one is seeded in a second process while the SQLite one
    is seeded here: two and a half minutes each, one core each.
    """
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('seeded') / 'wushi.db'}"
        beside = _seed_postgres_beside(request, tmp_path_factory)
        _seed_history(url, tmp_path_factory.mktemp("var"))
        if beside is not None:
            beside.wait_ready()
        yield url
        return
    beside = _HISTORY_BESIDE.pop("postgresql", None)
    if beside is not None:
        url = beside.wait_ready()
    else:
        url = _create_pg_database()
        _seed_history(url, tmp_path_factory.mktemp("var"))
    yield url
    _drop_pg_database(url)


def _seed_history(url: str, var_dir: Path) -> None:
    from click.testing import CliRunner

    from dashboard.cli import main

    env = {"WUSHI_DATABASE_URL": url, "WUSHI_VAR_DIR": str(var_dir)}
    runner = CliRunner()
    for args in (["db", "upgrade"], ["seed", "--demo"]):
        result = runner.invoke(main, args, env=env, catch_exceptions=False)
        assert result.exit_code == 0, result.output


class _SeedProcess:
    """``wushi db upgrade && wushi seed --demo`` into a new PostgreSQL database, in a child."""

    def __init__(self, var_dir: Path) -> None:
        self.url = _create_pg_database()
        self.log = var_dir / "seed.log"
        env = os.environ | {"WUSHI_DATABASE_URL": self.url, "WUSHI_VAR_DIR": str(var_dir)}
        cli = f"{shlex.quote(sys.executable)} -m dashboard.cli"
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                ["bash", "-c", f"{cli} db upgrade && {cli} seed --demo"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=var_dir,
            )

    def wait_ready(self) -> str:
        code = self.proc.wait()
        assert code == 0, self.log.read_text(errors="replace")[-3000:]
        return self.url

    def cleanup(self) -> None:
        """Stop the child; drop the database unless the fixture took it (and drops it)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if _HISTORY_BESIDE.get("postgresql") is self:
            _drop_pg_database(self.url)


_HISTORY_BESIDE: dict[str, _SeedProcess] = {}  # started, not yet taken by the fixture
_BESIDE_STARTED: list[_SeedProcess] = []


def _seed_postgres_beside(request: pytest.FixtureRequest, tmp_path_factory) -> _SeedProcess | None:
    """Start seeding the PostgreSQL history in a child if a test of this session needs it."""
    if _BESIDE_STARTED or postgres_admin_url() is None:
        return None
    wanted = any(
        getattr(item, "callspec", None) is not None
        and item.callspec.params.get("history_url") == "postgresql"
        for item in request.session.items
    )
    if not wanted:
        return None
    beside = _SeedProcess(tmp_path_factory.mktemp("var-pg"))
    _HISTORY_BESIDE["postgresql"] = beside
    _BESIDE_STARTED.append(beside)
    request.config.add_cleanup(beside.cleanup)
    return beside


@pytest.fixture
def history_copy(history_url: str, tmp_path) -> Iterator[str]:
    """A private copy of the history database, for tests that add or change rows."""
    if history_url.startswith("sqlite"):
        source = make_engine(history_url)
        with source.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        source.dispose()
        copy = tmp_path / "copy.db"
        shutil.copyfile(history_url.removeprefix("sqlite:///"), copy)
        yield f"sqlite:///{copy}"
        return
    url = _create_pg_database(template=history_url.rpartition("/")[2])
    yield url
    _drop_pg_database(url)


@pytest.fixture(params=BACKENDS)
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


# --- Live pipeline (issue #4): Redis servers and seeded databases -----------------------------
# Keys are per district code, so each test session uses its own random district (a recoded copy
# of the demo geography): runs sharing the system Redis never see each other's keys.

DEFAULT_REDIS = "redis://127.0.0.1:6379/0"


def recode_geography(geography, district: str):
    """Return ``geography`` with every code's district prefix replaced by ``district``."""
    import dataclasses

    from geo.model import Geography

    def fix(code):
        return None if code is None else district + code[6:]

    def area(a):
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


@pytest.fixture(scope="session")
def test_district() -> str:
    """A random six-digit district code for this test session."""
    import random

    return f"9{random.SystemRandom().randrange(10**5):05d}"


@pytest.fixture(scope="session")
def seeded_templates(tmp_path_factory, test_district) -> Iterator[dict[str, str]]:
    """Seed one SQLite file and (where reachable) one PostgreSQL template database."""
    import datetime as dt

    from datasources.demo.seed import seed_demo
    from geo.partition import build_demo_geography

    geography = recode_geography(build_demo_geography(2022), test_district)
    now = dt.datetime.now(dt.UTC)
    templates: dict[str, str] = {}
    path = tmp_path_factory.mktemp("seeded") / "template.db"
    eng = make_engine(f"sqlite:///{path}")
    upgrade(eng)
    seed_demo(eng, geography, now=now)
    eng.dispose()
    templates["sqlite"] = str(path)
    admin_url = postgres_admin_url()
    name = None
    if admin_url is not None:
        name = f"wushi_tpl_{uuid.uuid4().hex[:12]}"
        admin = make_engine(admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        base, _, _ = admin_url.rpartition("/")
        eng = make_engine(f"{base}/{name}")
        upgrade(eng)
        seed_demo(eng, geography, now=now)
        eng.dispose()
        templates["postgresql"] = name
    yield templates
    if name is not None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def seeded_url(request: pytest.FixtureRequest, tmp_path, seeded_templates) -> Iterator[str]:
    """A URL of a migrated database holding the demo geography, staff and devices."""
    import shutil

    if request.param == "sqlite":
        target = tmp_path / "seeded.db"
        shutil.copyfile(seeded_templates["sqlite"], target)
        yield f"sqlite:///{target}"
        return
    admin_url = postgres_admin_url()
    if admin_url is None or "postgresql" not in seeded_templates:
        pytest.skip("PostgreSQL not reachable (WUSHI_TEST_POSTGRES_URL)")
    name = f"wushi_t_{uuid.uuid4().hex[:12]}"
    admin = make_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{seeded_templates["postgresql"]}"'))
    base, _, _ = admin_url.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def seeded_engine(seeded_url: str) -> Iterator[Engine]:
    """An engine on a seeded database of each backend."""
    eng = make_engine(seeded_url)
    yield eng
    eng.dispose()


@pytest.fixture(scope="session")
def embedded_redis_url(tmp_path_factory) -> Iterator[str]:
    """The URL of one embedded Redis server for the whole session."""
    from dashboard.embedded_redis import EmbeddedRedis

    with EmbeddedRedis(tmp_path_factory.mktemp("redis")) as server:
        yield server.url


@cache
def system_redis_url() -> str | None:
    """Return the system Redis URL for tests, or None if disabled or unreachable."""
    url = os.environ.get("WUSHI_TEST_REDIS_URL", DEFAULT_REDIS)
    if not url:
        return None
    from redis import Redis

    try:
        with Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2) as client:
            client.ping()
    except Exception:
        if os.environ.get("WUSHI_TEST_REQUIRE_REDIS"):
            raise
        return None
    return url


@pytest.fixture(params=["embedded", "system"])
def redis_url(request: pytest.FixtureRequest, test_district: str) -> Iterator[str]:
    """A Redis URL: the session's embedded server, then the system Redis where reachable.

    The test's district keys (``wushi:{<district>}:*``) are deleted before and after.
    """
    from redis import Redis

    if request.param == "embedded":
        url = request.getfixturevalue("embedded_redis_url")
    else:
        url = system_redis_url()
        if url is None:
            pytest.skip("system Redis not reachable (WUSHI_TEST_REDIS_URL)")

    def clean() -> None:
        with Redis.from_url(url) as client:
            names = list(client.scan_iter(match=f"wushi:{{{test_district}}}:*", count=1000))
            for start in range(0, len(names), 500):
                client.delete(*names[start : start + 500])

    clean()
    yield url
    clean()
