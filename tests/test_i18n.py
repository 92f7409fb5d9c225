"""The UI-string catalogues: one gettext PO file per language, complete, in step with the code."""

from __future__ import annotations

import ast
import re
import shutil
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from datasources.figures import FIGURES
from datasources.kinds import KINDS
from layouts import i18n

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("dashboard", "layouts", "callbacks", "datasources", "geo")
PLACEHOLDER = re.compile(r"\{(\w*)\}")


def _read(lang: str):
    with i18n.catalogue_path(lang).open("rb") as f:
        return read_po(f)


def test_every_key_has_a_text_in_both_languages() -> None:
    zh, en = _read("zh"), _read("en")
    zh_ids = [m.id for m in zh if m.id]
    en_ids = [m.id for m in en if m.id]
    assert len(zh_ids) > 200
    assert set(zh_ids) == set(en_ids), set(zh_ids) ^ set(en_ids)
    for catalogue in (zh, en):
        empty = [m.id for m in catalogue if m.id and not str(m.string).strip()]
        assert not empty, f"{catalogue.locale}: keys without a text: {empty}"
        fuzzy = [m.id for m in catalogue if m.id and m.fuzzy]
        assert not fuzzy, f"{catalogue.locale}: fuzzy entries: {fuzzy}"


def test_the_chinese_catalogue_is_chinese_and_placeholders_match() -> None:
    zh, en = i18n.catalogue("zh"), i18n.catalogue("en")
    for key, text in zh.items():
        assert sorted(PLACEHOLDER.findall(text)) == sorted(PLACEHOLDER.findall(en[key])), key
    chinese = sum(bool(re.search(r"[\u4e00-\u9fff]", text)) for text in zh.values())
    assert chinese > 0.8 * len(zh)
    assert i18n.t("app_title", "zh") != i18n.t("app_title", "en")


def _named_keys() -> set[tuple[str, str]]:
    """Return (file, key) for every literal key the product code passes to t() or both()."""
    found = set()
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Name)
                    and node.func.id in ("t", "both")
                    and node.args
                    and isinstance(node.args[0], ast.Constant)
                    and isinstance(node.args[0].value, str)
                ):
                    found.add((str(path.relative_to(ROOT)), node.args[0].value))
    return found


def test_every_key_the_code_names_is_in_the_catalogues() -> None:
    named = _named_keys()
    assert len(named) > 50
    missing = sorted((f, k) for f, k in named if k not in i18n.catalogue("zh"))
    assert not missing


def test_declared_figures_and_event_kinds_have_their_texts() -> None:
    for kind in KINDS:
        assert f"event.{kind}" in i18n.STRINGS
    for figure in FIGURES:
        assert figure.label in i18n.STRINGS, figure.key


def test_a_translators_edit_of_the_po_file_changes_the_page_text(tmp_path, monkeypatch) -> None:
    """A translator edits the English PO file; the text shown changes, no Python touched."""
    locale = tmp_path / "locale"
    shutil.copytree(i18n.LOCALE_DIR, locale)
    po = locale / "en" / "LC_MESSAGES" / "wushi.po"
    text = po.read_text(encoding="utf-8")
    edited = text.replace('msgstr "Yeji “Wushi” Command Center"', 'msgstr "Yeji Command Centre"')
    assert edited != text
    po.write_text(edited, encoding="utf-8")
    monkeypatch.setattr(i18n, "LOCALE_DIR", locale)
    i18n.catalogue.cache_clear()
    try:
        assert i18n.t("app_title", "en") == "Yeji Command Centre"
        assert i18n.t("app_title", "zh") == "叶集区“无事找书记”指挥中心"
    finally:
        monkeypatch.undo()
        i18n.catalogue.cache_clear()
    assert i18n.t("app_title", "en") == "Yeji “Wushi” Command Center"


def test_an_unknown_key_is_an_error_and_labels_fall_back() -> None:
    with pytest.raises(KeyError):
        i18n.t("no.such.key", "en")
    assert i18n.category_label("livelihood", "zh") == "生活服务"
    assert i18n.category_label("nonsense", "en") == i18n.t("category.other", "en")
    assert i18n.action_label("made.up", "en") == "made.up"
    assert i18n.both("login.locked", n=3).endswith("try again in 3 s")
