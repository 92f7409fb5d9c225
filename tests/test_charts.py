"""Chart figures: plain dicts that Plotly accepts, with the labels and units of each language."""

from __future__ import annotations

import datetime as dt
import json
import math

import pandas as pd
import plotly.graph_objects as go
import pytest

from layouts import charts
from layouts.i18n import t

MONTHS = [dt.date(2025, m, 1) for m in (1, 2, 3)]


def _monthly() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "month": MONTHS,
            "requests": [10, 12, 9],
            "closed": [9, 12, 7],
            "points_earned": [100, 120, 90],
            "points_redeemed": [80, float("nan"), 70],
            "placements_public_welfare": [1, 2, 3],
            "placements_doorstep": [4, 5, 6],
            "placements_urban": [7, 8, 9],
        }
    )


def _children() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "code": ["341504100", "341504101", "341504102"],
            "name": ["洪集镇", "姚李镇", "三元镇"],
            "name_en": ["Hongji", "Yaoli", "Sanyuan"],
            "requests": [100, 0, 50],
            "closed": [98, 0, 45],
            "closure_rate": [0.98, float("nan"), 0.9],
            "points_earned": [10, 20, 30],
            "points_redeemed": [5, 15, float("nan")],
        }
    )


def _trend() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "month": MONTHS,
            "batches_district": [3, 1, 2],
            "persons_district": [9, 2, 5],
            "batches_district_prev": [2, 2, 2],
            "batches_city": [0, 0, 0],
            "persons_city": [0, 0, 0],
            "batches_city_prev": [0, 0, 0],
        }
    )


def _every_figure(lang: str, dark: bool) -> dict[str, dict]:
    items = pd.DataFrame(
        {
            "posted_at": pd.to_datetime(["2025-01-02", "2025-01-01"]),
            "approval_share": [0.9, 0.5],
            "approved": [True, False],
            "title": ["修路", "路灯"],
            "village": ["桥元村", "新建村"],
        }
    )
    dist = pd.DataFrame({"label": ["0–10", "10–20"], "count": [5, 3]})
    return {
        "closure": charts.closure_bars(_children(), lang, dark),
        "requests": charts.requests_monthly(_monthly(), lang, dark),
        "petitions": charts.petition_trend(_trend(), lang, dark),
        "points": charts.points_over_time(_monthly(), lang, dark),
        "points_village": charts.children_bars(
            _children(),
            {"points_redeemed": "redeemed", "points_earned": "earned"},
            lang,
            dark,
            t("u_points", lang),
        ),
        "employment": charts.employment_kinds(_monthly(), lang, dark),
        "response": charts.response_histogram(dist, lang, dark),
        "levels": charts.resolution_donut({"grid": 7, "village": 2, "town": 1}, lang, dark),
        "supervision": charts.supervision_votes(items, lang, dark),
        "devices": charts.device_health(
            {"installed": 10, "online": 8, "offline": 2, "low_battery": 1}, lang, dark
        ),
        "empty": charts.empty(lang, dark),
    }


@pytest.mark.parametrize("dark", [False, True])
@pytest.mark.parametrize("lang", ["zh", "en"])
def test_every_figure_is_valid_plain_json(lang, dark):
    for name, fig in _every_figure(lang, dark).items():
        go.Figure(fig)  # Plotly's validators reject any unknown property or bad value
        text = json.dumps(fig, ensure_ascii=False, allow_nan=False)  # no numpy, no NaN
        template = json.dumps(fig["layout"]["template"], separators=(",", ":"))
        assert len(template) < 1500, name  # the full plotly_white template is 6.4 KB
        assert fig["layout"]["paper_bgcolor"] == "rgba(0,0,0,0)", name
        assert "NaN" not in text, name


def test_labels_and_units_follow_the_language():
    zh, en = _every_figure("zh", False), _every_figure("en", False)
    assert [d["name"] for d in zh["requests"]["data"]] == ["受理量", "办结"]
    assert [d["name"] for d in en["requests"]["data"]] == [t("requests", "en"), t("closed", "en")]
    assert zh["requests"]["layout"]["yaxis"]["title"]["text"] == t("u_tickets", "zh")
    assert en["points"]["layout"]["yaxis"]["title"]["text"] == t("u_points", "en")
    assert en["closure"]["data"][0]["y"] == ["Sanyuan", "Hongji"]  # sorted, empty areas left out
    assert zh["closure"]["data"][0]["text"] == ["90.0%", "98.0%"]
    assert zh["closure"]["layout"]["xaxis"] == {"range": [88.0, 100], "ticksuffix": "%"}
    assert zh["petitions"]["data"][0]["name"] == "来区访"
    assert zh["petitions"]["data"][1]["name"] == f"来区访（{t('year_before', 'zh')}）"
    assert len(zh["petitions"]["data"]) == 2  # a level with nothing in either year is left out
    assert zh["points_village"]["layout"]["xaxis"]["title"]["text"] == t("u_points", "zh")
    assert zh["supervision"]["layout"]["annotations"][0]["text"] == t("line_80", "zh")
    assert zh["empty"]["layout"]["annotations"][0]["text"] == "无数据"
    assert en["empty"]["layout"]["annotations"][0]["text"] == "No data"


def test_values_are_the_frames_values():
    fig = charts.points_over_time(_monthly(), "zh")
    earned, redeemed = fig["data"]
    assert earned["x"] == ["2025-01-01", "2025-02-01", "2025-03-01"]
    assert earned["y"] == [100, 120, 90]
    assert redeemed["y"][1] is None and redeemed["fill"] == "tozeroy"
    closure = charts.closure_bars(_children(), "zh")["data"][0]
    assert closure["x"] == [90.0, 98.0] and closure["customdata"] == [[50, 45], [100, 98]]
    stacked = charts.employment_kinds(_monthly(), "en")
    assert stacked["layout"]["barmode"] == "stack"
    assert [d["y"] for d in stacked["data"]] == [[1, 2, 3], [4, 5, 6], [7, 8, 9]]
    donut = charts.resolution_donut({"grid": 7, "village": 2, "town": 1}, "zh")["data"][0]
    assert donut["values"] == [7, 2, 1, 0]
    assert not any(isinstance(v, float) and math.isnan(v) for v in closure["x"])


def test_the_wall_is_dark_and_larger():
    light, dark = (
        charts.requests_monthly(_monthly(), "zh"),
        charts.requests_monthly(_monthly(), "zh", dark=True),
    )
    assert light["layout"]["font"]["size"] == 13 and dark["layout"]["font"]["size"] == 18
    assert dark["layout"]["template"]["layout"]["font"]["color"] == "#f2f5fa"
    assert light["layout"]["template"]["layout"]["font"]["color"] == "#2a3f5f"
    # The year before is left out on the wall, where there is no room for its legend.
    assert len(charts.petition_trend(_trend(), "zh", dark=True)["data"]) == 1


def test_a_failing_panel_leaves_the_others_to_show(caplog):
    from dash import no_update
    from dash.exceptions import PreventUpdate

    from callbacks.panels import _parts

    assert _parts([("tiles", "title"), {"data": []}]) == [("tiles", "title"), {"data": []}]
    with caplog.at_level("ERROR", logger="wushi.panels"):
        shown = _parts([("tiles", "title"), RuntimeError("chart")])
    assert shown == [("tiles", "title"), no_update]
    assert "a panel failed" in caplog.text
    with pytest.raises(PreventUpdate):  # an area the user may not see: nothing changes
        _parts([PreventUpdate(), {"data": []}])
    with pytest.raises(RuntimeError):  # everything failed: Dash reports it
        _parts([RuntimeError("a"), RuntimeError("b")])
