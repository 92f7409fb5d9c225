"""Migrations: they build the schema on SQLite and PostgreSQL, and it matches the models."""

from __future__ import annotations

import datetime as dt

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, select

from datasources.db import current_revision, downgrade, make_engine, session_scope, upgrade
from datasources.models import AuditLog, Base


def test_migrated_schema_matches_the_models(engine):
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []
    assert set(inspect(engine).get_table_names()) >= set(Base.metadata.tables)


def test_upgrade_is_repeatable_and_downgrade_empties(database_url):
    engine = make_engine(database_url)
    assert current_revision(engine) is None
    upgrade(engine)
    head = current_revision(engine)
    upgrade(engine)
    assert current_revision(engine) == head
    downgrade(engine, "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    engine.dispose()


def test_times_come_back_timezone_aware_utc(engine):
    shanghai = dt.timezone(dt.timedelta(hours=8))
    with session_scope(engine) as session:
        session.add(
            AuditLog(
                ts=dt.datetime(2022, 12, 31, 23, 30, tzinfo=shanghai),
                action="test",
                username="t",
                detail={},
            )
        )
    with session_scope(engine) as session:
        ts = session.scalar(select(AuditLog.ts))
    assert ts == dt.datetime(2022, 12, 31, 15, 30, tzinfo=dt.UTC)
    assert ts.utcoffset() == dt.timedelta(0)
