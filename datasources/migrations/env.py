"""Alembic environment: runs against the engine handed over in ``config.attributes``."""

from __future__ import annotations

from typing import Any, Literal

from alembic import context

from datasources.models import Base, UTCDateTime

config = context.config


def _render_item(type_: str, obj: Any, autogen_context: Any) -> str | Literal[False]:
    """Render model-only types as plain SQLAlchemy types so migrations never import models."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


target_metadata = Base.metadata


def run_migrations_online() -> None:
    """Run migrations on the engine given by ``datasources.db.alembic_config``."""
    engine = config.attributes["engine"]
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
            render_item=_render_item,
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


if context.is_offline_mode():
    raise SystemExit("offline (SQL script) migrations are not supported; run `wushi db upgrade`")
run_migrations_online()
