"""The audit log: who did what, when, from where and in which area."""

from __future__ import annotations

import datetime as dt
import getpass
from typing import Any

from sqlalchemy import Engine

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
