"""Headline tiles as HTML (``layouts/components.py``): units read right in both languages."""

from __future__ import annotations

from layouts.components import alert_item, feed_item, tile
from layouts.i18n import SINGULAR, STRINGS, count_unit, feed_text

NAMES = {"341504102201": "孙岗村", "341504102": "孙岗镇"}
WHERE = {"grid": "341504102201003", "village": "341504102201", "town": "341504102"}


def test_a_count_of_one_takes_the_english_singular_and_chinese_is_unchanged():
    assert '<span class="unit">batch</span>' in tile("City petitions", "1", "batches")
    assert '<span class="unit">batches</span>' in tile("City petitions", "12", "batches")
    assert '<span class="unit">tickets</span>' in tile("Requests", "1,001", "tickets")
    assert '<span class="unit">件</span>' in tile("受理量", "1", "件")
    assert count_unit("1", "people") == "people" and count_unit("1", "%") == "%"
    # Every English count unit of the strings table has its singular.
    units = {en for key, (_zh, en) in STRINGS.items() if key.startswith("u_") and "." not in key}
    assert units - {"people", "min"} <= set(SINGULAR)


def test_a_feed_entry_is_rendered_from_its_code_in_the_viewers_language():
    entry = {
        "id": "e<1>",
        "kind": "call.key",
        "ts": "2026-11-24T09:30:05+08:00",
        **WHERE,
        "code": "call.key",
        "params": {"key": "call"},
        "key": "call",
    }
    zh, en = feed_item(entry, NAMES, "zh"), feed_item(entry, NAMES, "en")
    assert zh.startswith('<li data-event-id="e&lt;1&gt;" data-kind="call.key">')
    assert '<span class="time">09:30:05</span>孙岗村 一键呼叫：绿键（找书记）</li>' in zh
    assert "孙岗村 One-key call: green key (call the secretary)</li>" in en
    # Parameters are text: escaped in the HTML, not read as markup or as template fields.
    titled = entry | {"kind": "ticket.created", "code": "ticket.created"}
    titled["params"] = {"title": "<b>{key}</b>" + "长" * 100}
    line = feed_item(titled, NAMES, "en")
    assert "New request: &lt;b&gt;{key}&lt;/b&gt;长" in line and "<b>" not in line
    assert len(feed_text(titled, "zh")) == 80  # a line is cut at 80 characters
    # A parameter the entry lacks shows as nothing rather than failing the whole feed.
    assert feed_text(titled | {"params": {}}, "en") == "New request: "


def test_an_old_feed_entry_without_a_code_is_shown_from_its_text():
    old = {
        "id": "e2",
        "kind": "ticket.created",
        "ts": "2026-11-24T09:31:00+08:00",
        **WHERE,
        "text": "新诉求：路灯损坏",
    }
    assert "孙岗村 新诉求：路灯损坏</li>" in feed_item(old, NAMES, "zh")
    assert "孙岗村 New request</li>" in feed_item(old, NAMES, "en")
    assert 'data-event-id="e2"' in feed_item(old, NAMES, "en")


def test_alerts_are_rendered_from_their_code_and_old_ones_from_their_text():
    new = {
        "id": "device:D1",
        "kind": "device_offline",
        "ts": "2026-11-24T09:31:00+08:00",
        **WHERE,
        "ticket": None,
        "code": "device_offline",
        "params": {"hours": "24"},
    }
    expected = '<div class="alert">09:31 孙岗村 呼叫器24小时无心跳</div>'
    assert alert_item(new, NAMES, "zh") == expected
    assert alert_item(new, NAMES, "en").endswith("孙岗村 Caller silent for 24 hours</div>")
    old = {k: v for k, v in new.items() if k not in ("code", "params")}
    old |= {"kind": "unanswered_call", "text": "绿键呼叫5分钟未响应"}
    assert alert_item(old, NAMES, "zh").endswith("孙岗村 绿键呼叫5分钟未响应</div>")
    assert alert_item(old, NAMES, "en").endswith(
        "孙岗村 Green-key call not answered within 5 minutes</div>"
    )
    stale = old | {"kind": "device_offline", "text": "呼叫器24小时无心跳"}
    assert alert_item(stale, NAMES, "en").endswith("孙岗村 呼叫器24小时无心跳</div>")
