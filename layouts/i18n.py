"""UI strings in Chinese (first) and English, read from one gettext catalogue per language.

Every label, unit, tooltip and message lives in ``layouts/locale/<lang>/LC_MESSAGES/wushi.po``
(``zh`` and ``en``): a translator edits those files with any PO editor and never touches Python.
Message ids are stable keys, namespaced by what they name: ``figure.<key>`` a headline figure
(``datasources/figures.py``), ``event.<kind>`` / ``feed.<kind>`` / ``value.<param>.<code>`` an
event kind and its feed line (``datasources/kinds.py``), ``alert.<code>`` an alert,
``category.<code>`` a ticket category, ``audit_action.<action>`` / ``audit_group.<group>`` the
audit log, ``u_<unit>`` a unit and ``u_<unit>.one`` its English singular. ``tests/test_i18n.py``
checks that both catalogues hold the same keys, each with a text.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

from babel.messages.pofile import read_po

LANGS = ("zh", "en")
LOCALE_DIR = Path(__file__).with_name("locale")
DOMAIN = "wushi"


def catalogue_path(lang: str) -> Path:
    """Return the PO file of ``lang``."""
    return LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po"


@cache
def catalogue(lang: str) -> dict[str, str]:
    """Return the key → text table of ``lang`` (read once per process)."""
    with catalogue_path(lang).open("rb") as f:
        po = read_po(f)
    return {str(m.id): str(m.string) for m in po if m.id and m.string}


def _pairs() -> dict[str, tuple[str, str]]:
    zh, en = catalogue("zh"), catalogue("en")
    return {key: (zh[key], en.get(key, zh[key])) for key in zh}


# Every key with its (Chinese, English) texts, for code that lists keys of a namespace.
STRINGS: Mapping[str, tuple[str, str]] = _pairs()


def _namespace(prefix: str) -> dict[str, tuple[str, str]]:
    return {k.removeprefix(prefix): v for k, v in STRINGS.items() if k.startswith(prefix)}


# Audit log: the filter's groups (a group matches "group" and "group.*") and the actions' labels.
AUDIT_GROUPS = _namespace("audit_group.")
AUDIT_ACTIONS = _namespace("audit_action.")


def normal_lang(value: str | None) -> str:
    """Return ``en`` or ``zh`` for any input (Chinese is the default)."""
    return "en" if value == "en" else "zh"


def t(key: str, lang: str = "zh") -> str:
    """Return the string ``key`` in ``lang`` (Chinese unless ``en``); an unknown key is an error."""
    return catalogue(normal_lang(lang))[key]


def both(key: str, **params: Any) -> str:
    """Return ``key`` as "中文 / English", for the server's own pages shown before a language is
    known (login, refusals); ``params`` fill ``{name}`` placeholders."""
    return f"{t(key, 'zh').format(**params)} / {t(key, 'en').format(**params)}"


def action_label(action: str, lang: str = "zh") -> str:
    """Return an audit action's label in ``lang`` (the action itself when unknown)."""
    key = f"audit_action.{action}"
    return t(key, lang) if key in STRINGS else action


def category_label(category: str, lang: str = "zh") -> str:
    """Return a ticket category's label in ``lang`` ("other"'s for an unknown category)."""
    key = f"category.{category}"
    return t(key if key in STRINGS else "category.other", lang)


# English units for a count of one ("1 batch", not "1 batches"); Chinese has no plural.
SINGULAR = {
    STRINGS[k][1]: STRINGS[f"{k}.one"][1]
    for k in STRINGS
    if k.startswith("u_") and f"{k}.one" in STRINGS
}


def count_unit(value_text: str, unit: str) -> str:
    """Return ``unit`` for a count shown as ``value_text`` (singular after "1" in English)."""
    return SINGULAR.get(unit, unit) if value_text == "1" else unit


# The live feed and the alerts: the worker and the scheduler store a code and its parameters
# (datasources/kinds.py declares each event kind's code); the page renders them here in the
# viewer's language. ``event.<kind>`` is a kind's label, ``feed.<kind>`` the line with its
# parameters (a kind without one shows its label), ``value.<param>.<value>`` a parameter value
# that is a code, ``alert.<code>`` an alert. Entries stored before codes existed carry a Chinese
# ``text`` and are shown from it.
FEED_TEXT_LENGTH = 80


def _param(name: str, value: Any, lang: str) -> str:
    """Return a parameter as shown: its label when it is a code with one, else itself."""
    key = f"value.{name}.{value}"
    return t(key, lang) if key in STRINGS else str(value)


def event_label(kind: str, lang: str = "zh") -> str:
    """Return an event kind's label (the kind itself when it has none)."""
    key = f"event.{kind}"
    return t(key, lang) if key in STRINGS else kind


def feed_text(entry: Mapping[str, Any], lang: str = "zh") -> str:
    """Return a live-feed entry's line in ``lang`` from its code and parameters.

    An entry without a code (stored before codes existed) shows its Chinese ``text``, or in
    English its kind's label.
    """
    code = entry.get("code")
    if not isinstance(code, str):
        text = str(entry.get("text", ""))
        return event_label(str(entry.get("kind", "")), lang) if lang == "en" else text
    params = entry.get("params") or {}
    template = f"feed.{code}"
    label = event_label(code, lang)
    if template not in STRINGS or not isinstance(params, dict):
        return label[:FEED_TEXT_LENGTH]
    shown = _Params({k: _param(k, v, lang) for k, v in params.items()})
    shown["label"] = label
    return t(template, lang).format_map(shown)[:FEED_TEXT_LENGTH]


def alert_text(alert: Mapping[str, Any], lang: str = "zh") -> str:
    """Return an alert's text in ``lang`` from its code and parameters (else its stored text)."""
    code = alert.get("code")
    if isinstance(code, str) and f"alert.{code}" in STRINGS:
        params = alert.get("params") or {}
        shown = _Params({k: _param(k, v, lang) for k, v in dict(params).items()})
        return t(f"alert.{code}", lang).format_map(shown)
    kind = f"alert.{alert.get('kind', '')}"
    if lang == "en" and kind in STRINGS and "{" not in STRINGS[kind][1]:
        return t(kind, lang)
    return str(alert.get("text", ""))


class _Params(dict[str, str]):
    """Template parameters; one that is missing shows as nothing rather than failing."""

    def __missing__(self, key: str) -> str:
        return ""
