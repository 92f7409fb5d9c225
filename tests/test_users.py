"""Logins in datasources/users.py and the `wushi users` / `wushi audit` commands."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher
from click.testing import CliRunner
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from dashboard.cli import main
from datasources.audit import entries
from datasources.models import Town, Village
from datasources.models import User as UserRow
from datasources.users import (
    UserError,
    add_user,
    authenticate,
    disable_user,
    enable_user,
    get_user,
    list_users,
    set_password,
    verify_login,
    verify_password,
)

PASSWORD = "correct horse"


@pytest.fixture
def areas(seeded_engine) -> dict[str, str]:
    """A town code and a village code of the seeded geography, with their names."""
    with Session(seeded_engine) as session:
        town = session.scalars(select(Town).order_by(Town.code)).first()
        village = session.scalars(select(Village).order_by(Village.code)).first()
        return {
            "town": town.code,
            "town_name": town.name,
            "village": village.code,
            "village_name": village.name,
        }


def test_add_user_stores_an_argon2_hash_and_returns_plain_values(seeded_engine, areas):
    user = add_user(seeded_engine, "li.town", PASSWORD, "town", areas["town"], "李镇长")
    assert (user.username, user.role, user.area_code, user.area_name, user.disabled) == (
        "li.town",
        "town",
        areas["town"],
        areas["town_name"],
        False,
    )
    assert user.display_name == "李镇长" and user.last_login_at is None
    with Session(seeded_engine) as session:
        stored = session.scalar(select(UserRow.password_hash))
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    assert verify_password(stored, PASSWORD) and not verify_password(stored, "wrong password")
    assert not verify_password("not a hash", PASSWORD)
    village = add_user(seeded_engine, "wang_v", PASSWORD, "village", areas["village"])
    assert village.area_name == areas["village_name"]
    boss = add_user(seeded_engine, "boss", PASSWORD, "district", None)
    assert boss.area_code is None
    assert [u.username for u in list_users(seeded_engine)] == ["boss", "li.town", "wang_v"]


BAD_INPUT = [
    ("ab", PASSWORD, "district", None, "3-32 characters"),
    ("x" * 33, PASSWORD, "district", None, "3-32 characters"),
    ("Boss", PASSWORD, "district", None, "3-32 characters"),
    ("bo ss", PASSWORD, "district", None, "3-32 characters"),
    ("boss", "short", "district", None, "at least 8"),
    ("boss", PASSWORD, "kiosk", None, "unknown role"),
    ("boss", PASSWORD, "district", "town", "takes no area"),
    ("boss", PASSWORD, "town", None, "needs --area"),
    ("boss", PASSWORD, "town", "village", "no town with code"),
    ("boss", PASSWORD, "village", "town", "no village with code"),
    ("boss", PASSWORD, "village", "999999999999", "no village with code"),
]


def test_add_user_refuses_bad_input(seeded_engine, areas):
    for username, password, role, area, message in BAD_INPUT:
        area_code = areas.get(area, area) if area else None
        with pytest.raises(UserError, match=message):
            add_user(seeded_engine, username, password, role, area_code)
    assert list_users(seeded_engine) == []
    assert entries(seeded_engine, action="user") == []


def test_authenticate_checks_password_and_disabled_and_records_the_login_time(engine):
    add_user(engine, "boss", PASSWORD, "district", None)
    with pytest.raises(UserError, match="exists"):
        add_user(engine, "boss", "another password", "district", None)
    assert authenticate(engine, "boss", "wrong password") is None
    assert authenticate(engine, "nobody", PASSWORD) is None
    assert verify_login(engine, "nobody", PASSWORD).reason == "unknown_user"
    assert verify_login(engine, "boss", "wrong password").reason == "wrong_password"
    user = authenticate(engine, "boss", PASSWORD)
    assert user is not None and user.last_login_at is not None
    disable_user(engine, "boss")
    assert verify_login(engine, "boss", PASSWORD).reason == "disabled"
    enable_user(engine, "boss")
    assert authenticate(engine, "boss", PASSWORD) is not None


def test_set_password_rehash_and_the_audit_trail(engine):
    before = add_user(engine, "boss", PASSWORD, "district", None, actor="admin")
    disable_user(engine, "boss", actor="admin")
    enable_user(engine, "boss", actor="admin")
    set_password(engine, "boss", "a new password", actor="admin")
    assert authenticate(engine, "boss", PASSWORD) is None
    after = authenticate(engine, "boss", "a new password")
    assert after is not None and after.password_tag != before.password_tag
    with pytest.raises(UserError, match="at least 8"):
        set_password(engine, "boss", "short")
    with pytest.raises(UserError, match="no user"):
        set_password(engine, "nobody", "a new password")
    with pytest.raises(UserError, match="no user"):
        disable_user(engine, "nobody")

    log = entries(engine, username="admin")
    assert [e.action for e in log] == ["user.password", "user.enable", "user.disable", "user.add"]
    assert all(e.detail["user"] == "boss" for e in log)
    assert [e.action for e in entries(engine, action="user", limit=2)] == [
        "user.password",
        "user.enable",
    ]
    assert entries(engine, action="use") == []

    # A hash made with other (older, weaker) parameters is replaced at the next login.
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(PASSWORD)
    with Session(engine) as session, session.begin():
        session.execute(update(UserRow).values(password_hash=weak))
    assert authenticate(engine, "boss", PASSWORD) is not None
    with Session(engine) as session:
        upgraded = session.scalar(select(UserRow.password_hash))
    assert upgraded != weak and "m=19456,t=2,p=1" in upgraded
    assert authenticate(engine, "boss", PASSWORD) is not None


def _wushi(url: str, tmp_path, *args: str, stdin: str | None = None):
    env = {"WUSHI_DATABASE_URL": url, "WUSHI_VAR_DIR": str(tmp_path / "var")}
    return CliRunner().invoke(main, list(args), input=stdin, env=env)


def test_cli_users_add_list_disable_enable_and_set_password(seeded_url, seeded_engine, tmp_path):
    with Session(seeded_engine) as session:
        town = session.scalars(select(Town).order_by(Town.code)).first()
    result = _wushi(
        seeded_url,
        tmp_path,
        *("users", "add", "li.town", "--role", "town", "--area", town.code),
        *("--display-name", "李", "--password-stdin"),
        stdin=PASSWORD + "\n",
    )
    assert result.exit_code == 0, result.output
    assert f"added town user li.town of {town.name} ({town.code})" in result.output
    assert authenticate(seeded_engine, "li.town", PASSWORD) is not None

    result = _wushi(seeded_url, tmp_path, "users", "list")
    assert result.exit_code == 0, result.output
    header, _rule, row = result.output.splitlines()
    assert header.split()[:4] == ["username", "role", "area", "disabled"]
    assert row.split()[:5] == ["li.town", "town", town.code, town.name, "no"]

    assert _wushi(seeded_url, tmp_path, "users", "disable", "li.town").exit_code == 0
    assert authenticate(seeded_engine, "li.town", PASSWORD) is None
    assert " yes " in _wushi(seeded_url, tmp_path, "users", "list").output
    assert _wushi(seeded_url, tmp_path, "users", "enable", "li.town").exit_code == 0
    result = _wushi(
        seeded_url,
        tmp_path,
        *("users", "set-password", "li.town", "--password-stdin"),
        stdin="brand new password\r\n",
    )
    assert result.exit_code == 0, result.output
    assert authenticate(seeded_engine, "li.town", "brand new password") is not None

    result = _wushi(seeded_url, tmp_path, "audit", "--action", "user")
    assert result.exit_code == 0, result.output
    actions = [line.split()[3] for line in result.output.splitlines()[2:]]
    assert actions == ["user.password", "user.enable", "user.disable", "user.add"]
    result = _wushi(seeded_url, tmp_path, "audit", "--limit", "1")
    assert len(result.output.splitlines()) == 3


def test_cli_users_add_refuses_bad_input_with_a_message(engine, database_url, tmp_path):
    cases = [
        (["users", "add", "boss", "--role", "district"], PASSWORD, 2, "--password-stdin"),
        (["users", "add", "boss", "--role", "mayor", "--password-stdin"], PASSWORD, 2, "mayor"),
        (["users", "add", "boss", "--role", "district", "--password-stdin"], "", 2, "no password"),
        (
            ["users", "add", "boss", "--role", "district", "--password-stdin"],
            "short",
            1,
            "at least",
        ),
        (["users", "add", "boss", "--role", "town", "--password-stdin"], PASSWORD, 1, "--area"),
        (["users", "disable", "nobody"], None, 1, "no user nobody"),
    ]
    for args, stdin, code, message in cases:
        result = _wushi(
            database_url, tmp_path, *args, stdin=None if stdin is None else stdin + "\n"
        )
        assert result.exit_code == code, (args, result.output)
        assert message in result.output, (args, result.output)
    assert list_users(engine) == []
    assert get_user(engine, "boss") is None
