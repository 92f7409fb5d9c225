"""Kiosk tokens: named, revocable credentials that let an unattended wall screen show ``/wall``.

A district admin issues one per screen from the command line (``wushi kiosk issue``), for the
whole district or one town or village. The token is printed once; only its SHA-256 is stored, so
a copy of the database cannot be used to open a screen. A token does not expire (a wall screen
must not be logged out at night); it ends when it is revoked (``wushi kiosk revoke``). Every
issue and revocation is written to the audit log. The web checks tokens in
``dashboard.sessions``.
"""

from __future__ import annotations

import datetime as dt
import getpass
import hashlib
import re
import secrets
from dataclasses import dataclass

from sqlalchemy import Engine, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from datasources.audit import record
from datasources.db import session_scope
from datasources.models import KioskToken, Town, Village
from datasources.models import User as UserRow

# Letters (Chinese too), digits, '_', '.', '-': a name fits a command line and an audit entry.
NAME_RE = re.compile(r"[\w.-]{2,40}")
TOKEN_PREFIX = "wk_"
# A token is the prefix and 43 URL-safe characters (256 random bits); anything longer is junk.
MAX_TOKEN = 100
# How often a screen's "last seen" time is written: often enough to spot a dark screen, rarely
# enough that a wall costs no writes between checks.
TOUCH_EVERY = dt.timedelta(minutes=5)


class KioskError(ValueError):
    """A kiosk token that cannot be issued or revoked as asked; the message says why."""


@dataclass(frozen=True)
class Kiosk:
    """A kiosk token as plain values (never the token itself)."""

    id: int
    name: str
    level: str  # district | town | village
    area_code: str | None
    area_name: str | None
    created_by: str
    created_at: dt.datetime
    revoked_at: dt.datetime | None
    revoked_by: str | None
    last_seen_at: dt.datetime | None

    @property
    def active(self) -> bool:
        """Whether the token still opens the wall."""
        return self.revoked_at is None


def hash_token(token: str) -> str:
    """Return the stored form of ``token`` (SHA-256, hex)."""
    return hashlib.sha256(token.encode("utf-8", errors="replace")).hexdigest()


def _area_name(session: Session, level: str, code: str | None) -> str | None:
    if code is None:
        return None
    if level == "town":
        town = session.get(Town, code)
        return town.name if town is not None else None
    village = session.get(Village, code)
    return village.name if village is not None else None


def _plain(session: Session, row: KioskToken) -> Kiosk:
    return Kiosk(
        id=row.id,
        name=row.name,
        level=row.level,
        area_code=row.area_code,
        area_name=_area_name(session, row.level, row.area_code),
        created_by=row.created_by,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
        revoked_by=row.revoked_by,
        last_seen_at=row.last_seen_at,
    )


def _check_admin(session: Session, username: str) -> None:
    row = session.scalar(select(UserRow).where(UserRow.username == username))
    if row is None:
        raise KioskError(f"no user {username}: --by must name an enabled district admin")
    if row.role != "district":
        raise KioskError(
            f"{username} is a {row.role} user: only a district admin may issue kiosk tokens"
        )
    if row.disabled:
        raise KioskError(f"{username} is disabled: only an enabled district admin may act")


def issue(
    engine: Engine,
    name: str,
    *,
    by: str,
    town: str | None = None,
    village: str | None = None,
) -> tuple[Kiosk, str]:
    """Create the token ``name`` for the district, a town or a village; return it and the token.

    ``by`` must be an enabled district admin. The token is returned only here.
    """
    if not NAME_RE.fullmatch(name):
        raise KioskError(
            "the name must be 2-40 letters, digits, '_', '.' or '-' (no spaces), e.g. hall-wall"
        )
    if town and village:
        raise KioskError("give --town or --village, not both")
    level, area_code = (
        ("town", town) if town else ("village", village) if village else ("district", None)
    )
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    try:
        with session_scope(engine) as session:
            _check_admin(session, by)
            if area_code is not None and _area_name(session, level, area_code) is None:
                raise KioskError(f"no {level} with code {area_code}")
            existing = session.scalar(select(KioskToken).where(KioskToken.name == name))
            if existing is not None:
                state = "revoked" if existing.revoked_at else "active"
                raise KioskError(
                    f"a kiosk token named {name} exists already ({state}); names are kept for "
                    "the audit trail, choose another one"
                )
            row = KioskToken(
                name=name,
                token_hash=hash_token(token),
                level=level,
                area_code=area_code,
                created_by=by,
                created_at=dt.datetime.now(dt.UTC),
            )
            session.add(row)
            session.flush()
            kiosk = _plain(session, row)
    except IntegrityError:  # two issues of one name at the same moment
        raise KioskError(f"a kiosk token named {name} exists already") from None
    record(
        engine,
        action="kiosk.issue",
        username=by,
        area_code=area_code,
        detail={"kiosk": name, "level": level, "cli": _cli_user()},
    )
    return kiosk, token


def _cli_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "?"


def list_kiosks(engine: Engine) -> list[Kiosk]:
    """Return every kiosk token, active and revoked, ordered by name."""
    with Session(engine) as session:
        rows = session.scalars(select(KioskToken).order_by(KioskToken.name))
        return [_plain(session, row) for row in rows]


def get_kiosk(engine: Engine, name: str) -> Kiosk | None:
    """Return the kiosk token called ``name``, or None."""
    with Session(engine) as session:
        row = session.scalar(select(KioskToken).where(KioskToken.name == name))
        return _plain(session, row) if row is not None else None


def revoke(engine: Engine, name: str, *, by: str | None = None) -> Kiosk:
    """End the token ``name``: web requests are refused within seconds, its socket within a minute.

    ``by`` (optional) must be an enabled district admin; without it the command line's OS user
    is recorded. Revoking twice is an error, so a typo in the name is never silent.
    """
    with session_scope(engine) as session:
        if by is not None:
            _check_admin(session, by)
        row = session.scalar(select(KioskToken).where(KioskToken.name == name))
        if row is None:
            raise KioskError(f"no kiosk token named {name} (see `wushi kiosk list`)")
        if row.revoked_at is not None:
            raise KioskError(
                f"the kiosk token {name} was revoked already at {row.revoked_at:%Y-%m-%d %H:%M} UTC"
            )
        row.revoked_at = dt.datetime.now(dt.UTC)
        row.revoked_by = by or f"cli:{_cli_user()}"
        session.flush()
        kiosk = _plain(session, row)
    record(
        engine,
        action="kiosk.revoke",
        username=by,
        area_code=kiosk.area_code,
        detail={"kiosk": name, "level": kiosk.level},
    )
    return kiosk


def verify(engine: Engine, token: str, *, now: dt.datetime | None = None) -> Kiosk | None:
    """Return the active kiosk of ``token``, or None; notes when the screen was last seen."""
    if not token or len(token) > MAX_TOKEN or not token.startswith(TOKEN_PREFIX):
        return None
    now = now or dt.datetime.now(dt.UTC)
    with session_scope(engine) as session:
        row = session.scalar(select(KioskToken).where(KioskToken.token_hash == hash_token(token)))
        if row is None or row.revoked_at is not None:
            return None
        if row.last_seen_at is None or now - row.last_seen_at >= TOUCH_EVERY:
            session.execute(
                update(KioskToken).where(KioskToken.id == row.id).values(last_seen_at=now)
            )
            session.refresh(row)
        return _plain(session, row)
