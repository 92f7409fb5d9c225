"""Settings: defaults, environment, generated secrets, and the README's settings table."""

from __future__ import annotations

import re
import stat
from pathlib import Path

import pytest
from pydantic import ValidationError

from dashboard.settings import Settings

README = Path(__file__).resolve().parents[1] / "README.md"


def test_every_setting_is_documented_in_the_readme():
    documented = set(re.findall(r"`(WUSHI_[A-Z_]+)`", README.read_text(encoding="utf-8")))
    declared = {f"WUSHI_{name.upper()}" for name in Settings.model_fields}
    assert declared - documented == set(), "settings missing from the README table"
    assert documented - declared == set(), "README documents settings that do not exist"


def test_every_setting_has_help():
    for name, field in Settings.model_fields.items():
        assert field.description and len(field.description) > 10, name


def test_defaults_and_environment(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    settings = Settings(var_dir=tmp_path / "var")
    assert settings.district_code == "341504"
    assert settings.port == 8050
    assert settings.resolved_database_url == f"sqlite:///{tmp_path / 'var' / 'wushi.db'}"
    assert settings.stream_key() == "wushi:{341504}:events"
    monkeypatch.setenv("WUSHI_PORT", "9001")
    monkeypatch.setenv("WUSHI_DATABASE_URL", "postgresql://x@h/db")
    settings = Settings()
    assert settings.port == 9001
    assert settings.resolved_database_url == "postgresql://x@h/db"


def test_dotenv_file_is_read(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("WUSHI_DISTRICT_CODE=341502\n", encoding="utf-8")
    assert Settings().district_code == "341502"
    assert Settings().stream_key("deadletter") == "wushi:{341502}:deadletter"


def test_bad_values_are_refused_with_the_field_named(monkeypatch):
    monkeypatch.setenv("WUSHI_DISTRICT_CODE", "yeji")
    with pytest.raises(ValidationError, match="district_code"):
        Settings()


def test_secrets_are_generated_once_and_kept_private(tmp_path):
    first = Settings(var_dir=tmp_path)
    key, token = first.resolved_secret_key, first.resolved_ingest_token
    assert len(key) >= 40 and len(token) >= 40 and key != token
    again = Settings(var_dir=tmp_path)
    assert (again.resolved_secret_key, again.resolved_ingest_token) == (key, token)
    mode = stat.S_IMODE((tmp_path / "secret_key").stat().st_mode)
    assert mode == 0o600
    other = Settings(var_dir=tmp_path / "elsewhere")
    assert other.resolved_secret_key != key


def test_configured_secret_wins(tmp_path):
    settings = Settings(var_dir=tmp_path, secret_key="from-the-environment")
    assert settings.resolved_secret_key == "from-the-environment"
    assert not (tmp_path / "secret_key").exists()
