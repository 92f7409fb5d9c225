"""The audit log: who did what, when, from where and in which area."""

from __future__ import annotations

import datetime as dt
import getpass
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from datasources.db import session_scope
from datasources.models import AuditLog


def record(
    engine: Engine,
    *,
    action: str,
    username: str | None,
    address: str | None = None,
    area_code: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Append one entry; command-line actions without a login are recorded as ``cli:<user>``."""
    if username is None:
        try:
            username = f"cli:{getpass.getuser()}"
        except (KeyError, OSError):
            username = "cli"
    with session_scope(engine) as session:
        session.add(
            AuditLog(
                ts=dt.datetime.now(dt.UTC),
                username=username,
                action=action,
                address=address,
                area_code=area_code,
                detail=detail or {},
            )
        )


@dataclass(frozen=True)
class AuditEntry:
    """One audit log entry as plain values."""

    ts: dt.datetime
    username: str | None
    action: str
    address: str | None
    area_code: str | None
    detail: dict[str, Any]


def entries(
    engine: Engine,
    *,
    limit: int = 50,
    username: str | None = None,
    action: str | None = None,
    since: dt.datetime | None = None,
    before: dt.datetime | None = None,
) -> list[AuditEntry]:
    """Return the newest entries first; ``action`` "login" also matches "login.failed" etc.

    ``since`` and ``before`` (timezone-aware) keep entries with ``since <= ts < before``.
    """
    stmt = select(AuditLog).order_by(AuditLog.ts.desc(), AuditLog.id.desc()).limit(limit)
    if username:
        stmt = stmt.where(AuditLog.username == username)
    if since is not None:
        stmt = stmt.where(AuditLog.ts >= since)
    if before is not None:
        stmt = stmt.where(AuditLog.ts < before)
    if action:
        stmt = stmt.where(
            (AuditLog.action == action) | AuditLog.action.startswith(action + ".", autoescape=True)
        )
    with Session(engine) as session:
        return [
            AuditEntry(r.ts, r.username, r.action, r.address, r.area_code, dict(r.detail or {}))
            for r in session.scalars(stmt)
        ]


def usernames(engine: Engine, *, limit: int = 500) -> list[str]:
    """Return the usernames that appear in the log (people, kiosks, ``cli:…``), sorted."""
    stmt = (
        select(AuditLog.username)
        .where(AuditLog.username.is_not(None))
        .distinct()
        .order_by(AuditLog.username)
        .limit(limit)
    )
    with Session(engine) as session:
        return [name for name in session.scalars(stmt) if name]
