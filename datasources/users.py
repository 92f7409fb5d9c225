"""Logins: create, list, disable and check them; passwords are argon2id hashes.

Every change is written to the audit log. Functions return frozen dataclasses, never ORM rows,
and never the password hash itself (``password_tag`` changes whenever the password does, so a
session can be bound to the password it was opened with).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from datasources.audit import record
from datasources.db import session_scope
from datasources.models import Town, Village
from datasources.models import User as UserRow
from datasources.scope import ROLES

USERNAME_RE = re.compile(r"[a-z0-9_.-]{3,32}")
MIN_PASSWORD = 8
# An upper bound keeps a huge "password" from costing more than a normal one to refuse.
MAX_PASSWORD = 256


class UserError(ValueError):
    """A user that cannot be created or changed as asked; the message says why."""


@dataclass(frozen=True)
class User:
    """A login as plain values."""

    id: int
    username: str
    display_name: str
    role: str
    area_code: str | None
    area_name: str | None
    disabled: bool
    created_at: dt.datetime
    last_login_at: dt.datetime | None
    password_tag: str


@dataclass(frozen=True)
class LoginCheck:
    """The outcome of a login attempt: the user, or None and why (for the audit log only)."""

    user: User | None
    reason: str  # ok | unknown_user | disabled | wrong_password


@cache
def _hasher() -> PasswordHasher:
    # OWASP's argon2id profile (19 MiB, t=2, p=1): as strong as the library default against
    # guessing but about a tenth of its CPU, so a burst of logins cannot starve a small server.
    return PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)


@cache
def _dummy_hash() -> str:
    return _hasher().hash("not a password of anybody")


def hash_password(password: str) -> str:
    """Return an argon2id hash of ``password``."""
    return _hasher().hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """Return whether ``password`` matches ``password_hash`` (argon2 compares in constant time)."""
    try:
        return _hasher().verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def password_needs_rehash(password_hash: str) -> bool:
    """Return whether ``password_hash`` was made with other parameters than the current ones."""
    try:
        return _hasher().check_needs_rehash(password_hash)
    except InvalidHashError:
        return True


def _tag(password_hash: str) -> str:
    return hashlib.sha256(password_hash.encode()).hexdigest()[:32]


def _area_names(session: Session) -> dict[str, str]:
    names = {code: name for code, name in session.execute(select(Town.code, Town.name))}
    names.update((code, name) for code, name in session.execute(select(Village.code, Village.name)))
    return names


def _area_name(session: Session, row: UserRow) -> str | None:
    if not row.area_code:
        return None
    area = session.get(Town, row.area_code) if row.role == "town" else None
    village = session.get(Village, row.area_code) if row.role == "village" else None
    return area.name if area else village.name if village else None


def _plain(row: UserRow, area_name: str | None) -> User:
    return User(
        id=row.id,
        username=row.username,
        display_name=row.display_name,
        role=row.role,
        area_code=row.area_code,
        area_name=area_name,
        disabled=row.disabled,
        created_at=row.created_at,
        last_login_at=row.last_login_at,
        password_tag=_tag(row.password_hash),
    )


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise UserError(f"the password must have at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise UserError(f"the password must have at most {MAX_PASSWORD} characters")


def _check_area(session: Session, role: str, area_code: str | None) -> None:
    if role not in ROLES:
        raise UserError(f"unknown role {role!r}; use one of {', '.join(ROLES)}")
    if role == "district":
        if area_code:
            raise UserError("a district user sees everything and takes no area")
        return
    if not area_code:
        raise UserError(f"a {role} user needs --area with a {role} code")
    model = Town if role == "town" else Village
    if session.get(model, area_code) is None:
        raise UserError(f"no {role} with code {area_code}")


def add_user(
    engine: Engine,
    username: str,
    password: str,
    role: str,
    area_code: str | None,
    display_name: str = "",
    *,
    actor: str | None = None,
) -> User:
    """Create a login; ``actor`` is who did it (None: the command line's OS user)."""
    if not USERNAME_RE.fullmatch(username):
        raise UserError("the username must be 3-32 characters of a-z, 0-9, '_', '.' and '-'")
    _check_password(password)
    if len(display_name) > 64:
        raise UserError("the display name must have at most 64 characters")
    area_code = area_code or None
    with session_scope(engine) as session:
        _check_area(session, role, area_code)
        if session.scalar(select(UserRow.id).where(UserRow.username == username)) is not None:
            raise UserError(f"user {username} exists already")
        row = UserRow(
            username=username,
            display_name=display_name,
            password_hash=hash_password(password),
            role=role,
            area_code=area_code,
            disabled=False,
            created_at=dt.datetime.now(dt.UTC),
        )
        session.add(row)
        session.flush()
        user = _plain(row, _area_names(session).get(area_code or ""))
    record(
        engine,
        action="user.add",
        username=actor,
        area_code=area_code,
        detail={"user": username, "role": role},
    )
    return user


def get_user(engine: Engine, username: str) -> User | None:
    """Return the login called ``username``, or None."""
    with Session(engine) as session:
        row = session.scalar(select(UserRow).where(UserRow.username == username))
        if row is None:
            return None
        return _plain(row, _area_name(session, row))


def list_users(engine: Engine) -> list[User]:
    """Return every login, ordered by username."""
    with Session(engine) as session:
        names = _area_names(session)
        rows = session.scalars(select(UserRow).order_by(UserRow.username))
        return [_plain(row, names.get(row.area_code or "")) for row in rows]


def _change(
    engine: Engine, username: str, action: str, actor: str | None, **values: object
) -> None:
    with session_scope(engine) as session:
        row = session.scalar(select(UserRow).where(UserRow.username == username))
        if row is None:
            raise UserError(f"no user {username}")
        for name, value in values.items():
            setattr(row, name, value)
        area_code = row.area_code
    record(engine, action=action, username=actor, area_code=area_code, detail={"user": username})


def disable_user(engine: Engine, username: str, *, actor: str | None = None) -> None:
    """Stop ``username`` from logging in; open sessions end within the web's cache time."""
    _change(engine, username, "user.disable", actor, disabled=True)


def enable_user(engine: Engine, username: str, *, actor: str | None = None) -> None:
    """Let a disabled ``username`` log in again."""
    _change(engine, username, "user.enable", actor, disabled=False)


def set_password(engine: Engine, username: str, password: str, *, actor: str | None = None) -> None:
    """Replace the password of ``username``; sessions opened with the old one end."""
    _check_password(password)
    _change(engine, username, "user.password", actor, password_hash=hash_password(password))


def verify_login(engine: Engine, username: str, password: str) -> LoginCheck:
    """Check a login attempt, taking as long for unknown or disabled users as for real ones."""
    with session_scope(engine) as session:
        row = session.scalar(select(UserRow).where(UserRow.username == username))
        if row is None:
            # Hash anyway, so the response time does not tell which usernames exist.
            verify_password(_dummy_hash(), password)
            return LoginCheck(None, "unknown_user")
        if not verify_password(row.password_hash, password):
            return LoginCheck(None, "wrong_password")
        if row.disabled:
            return LoginCheck(None, "disabled")
        if password_needs_rehash(row.password_hash):
            row.password_hash = hash_password(password)
        row.last_login_at = dt.datetime.now(dt.UTC)
        session.flush()
        return LoginCheck(_plain(row, _area_name(session, row)), "ok")


def authenticate(engine: Engine, username: str, password: str) -> User | None:
    """Return the user if ``password`` is right and the login is enabled, else None."""
    return verify_login(engine, username, password).user
