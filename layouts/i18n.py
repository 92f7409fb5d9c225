"""UI strings in Chinese (first) and English: every label, unit and tooltip."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

LANGS = ("zh", "en")

STRINGS: dict[str, tuple[str, str]] = {
    "app_title": ("叶集区“无事找书记”指挥中心", "Yeji “Wushi” Command Center"),
    "district": ("叶集区", "Yeji District"),
    "all_towns": ("全部乡镇", "All towns"),
    "all_villages": ("全部村（社区）", "All villages"),
    "all_grids": ("全部网格", "All grids"),
    "town": ("乡镇（街道）", "Town"),
    "village": ("村（社区）", "Village"),
    "grid": ("网格", "Grid"),
    "period": ("时间", "Period"),
    "metric": ("地图指标", "Map metric"),
    "up": ("返回上级", "Up one level"),
    "language": ("English", "中文"),
    "live": ("实时", "Live"),
    "reconnecting": ("重新连接中…", "Reconnecting…"),
    "connecting": ("连接中…", "Connecting…"),
    "data_as_of": ("数据截至", "Data as of"),
    "stale": ("数据已过期", "Data is stale"),
    "db_stale": ("数据暂停更新（自 {since} 起）", "Data stale since {since}"),
    "live_feed": ("实时动态", "Live feed"),
    "alerts": ("告警", "Alerts"),
    "no_alerts": ("暂无告警", "No alerts"),
    "no_events": ("等待新事件…", "Waiting for events…"),
    "today": ("今日", "Today"),
    "compare": ("同比", "vs a year before"),
    "year_before": ("上年同期", "same period last year"),
    "nav_overview": ("总览", "Overview"),
    "nav_tickets": ("诉求办理", "Tickets"),
    "nav_petitions": ("信访调解", "Petitions"),
    "nav_points": ("新风积分", "Points"),
    "nav_employment": ("就业", "Employment"),
    "nav_supervision": ("小微权力监督", "Supervision"),
    "nav_devices": ("呼叫器", "Callers"),
    "nav_wall": ("大屏", "Wall"),
    "logout": ("退出", "Log out"),
    "export_csv": ("导出 CSV", "Export CSV"),
    "export_xlsx": ("导出 Excel", "Export Excel"),
    # Headline tiles
    "requests": ("受理量", "Requests"),
    "closure_rate": ("办结率", "Closure rate"),
    "on_time_rate": ("按期办结率", "On-time rate"),
    "satisfaction_rate": ("满意率", "Satisfaction"),
    "response_median": ("响应时长（中位）", "Response (median)"),
    "response_p90": ("响应时长（90%）", "Response (p90)"),
    "resolution_days": ("平均办结天数", "Average resolution days"),
    "call_answer_rate": ("书记必到率", "Calls answered ≤5 min"),
    "grid_share": ("小事不出网", "Settled in the grid"),
    "petitions_district": ("来区访批次", "District petitions"),
    "petitions_city": ("到市访批次", "City petitions"),
    "petition_persons": ("人次", "persons"),
    "mediations": ("调解纠纷", "Disputes mediated"),
    "points_redeemed": ("积分兑换", "Points redeemed"),
    "points_earned": ("积分获得", "Points earned"),
    "placements": ("就业安置", "Job placements"),
    "welfare_posts": ("公益性岗位", "Public-welfare posts"),
    "supervision_approved": ("监督事项通过", "Supervision items approved"),
    "devices_online": ("呼叫器在线", "Callers online"),
    "open_tickets": ("在办诉求", "Open tickets"),
    "calls_today": ("今日呼叫", "Calls today"),
    "unanswered": ("未响应呼叫", "Unanswered calls"),
    "new_today": ("今日新诉求", "New requests today"),
    "closed_today": ("今日办结", "Closed today"),
    # Figure names where the map's picker and legend name a figure differently from its tile
    # (datasources.figures declares which key each figure uses).
    "figure.calls": ("一键呼叫", "Calls"),
    "figure.open_tickets": ("未办结诉求", "Open tickets"),
    "figure.response_median": ("响应时长中位数", "Median response"),
    "figure.placements_village": ("就业安置(村)", "Job placements (village)"),
    # Units
    "u_tickets": ("件", "tickets"),
    "u_batches": ("批", "batches"),
    "u_persons": ("人次", "persons"),
    "u_people": ("人", "people"),
    "u_points": ("分", "points"),
    "u_minutes": ("分钟", "min"),
    "u_days": ("天", "days"),
    "u_calls": ("次", "calls"),
    "u_items": ("项", "items"),
    "u_devices": ("台", "devices"),
    "u_posts": ("个", "posts"),
    "percent": ("%", "%"),
    # Charts
    "chart_closure": ("办结率（按下级区域）", "Closure rate by area"),
    "chart_requests": ("每月受理与办结", "Requests and closures per month"),
    "chart_petitions": ("信访趋势（按层级，含同比）", "Petitions by level, vs a year before"),
    "chart_points": ("积分获得与兑换", "Points earned and redeemed"),
    "chart_points_village": ("积分兑换（按下级区域）", "Points redeemed by area"),
    "chart_employment": ("就业安置（按类型）", "Placements by kind"),
    "chart_employment_town": ("就业安置（按下级区域）", "Placements by area"),
    "chart_response": ("响应时长分布", "Response time distribution"),
    "chart_levels": ("化解层级（小事不出网）", "Where tickets were settled"),
    "chart_supervision": ("监督事项表决（80% 通过线）", "Supervision votes vs the 80% line"),
    "chart_devices": ("呼叫器状态", "Caller health"),
    "table_tickets": ("在办及超期诉求", "Open and overdue tickets"),
    "table_villages": ("各村（社区）指标", "Figures per village"),
    "level_grid": ("网格", "Grid"),
    "level_village": ("村", "Village"),
    "level_town": ("镇", "Town"),
    "level_district": ("区", "District"),
    "public_welfare": ("公益性岗位", "Public welfare"),
    "doorstep": ("家门口就业", "Doorstep"),
    "urban": ("城镇新增就业", "Urban"),
    "batches": ("批次", "Batches"),
    "persons": ("人次", "Persons"),
    "earned": ("获得", "Earned"),
    "redeemed": ("兑换", "Redeemed"),
    "closed": ("办结", "Closed"),
    "approval_share": ("赞成比例", "Approval share"),
    "line_80": ("80% 通过线", "80% line"),
    "online": ("在线", "Online"),
    "offline": ("离线", "Offline"),
    "low_battery": ("低电量", "Low battery"),
    "count": ("数量", "Count"),
    "month": ("月份", "Month"),
    "data_note": (
        "演示数据：乡镇、村、网格边界为示意划分（真实边界未公开），2022年指标按公开报道校准。",
        "Demo data: town, village and grid boundaries are an approximate partition (the real "
        "ones are not public); the 2022 figures are calibrated to published reports.",
    ),
    "col_id": ("编号", "ID"),
    "col_created": ("受理时间", "Created"),
    "col_area": ("区域", "Area"),
    "col_category": ("类别", "Category"),
    "col_status": ("状态", "Status"),
    "col_title": ("事项", "Title"),
    "col_age": ("已用时（小时）", "Age (h)"),
    "col_overdue": ("超期", "Overdue"),
    "col_name": ("名称", "Name"),
    "hover_leader": ("网格长", "Grid leader"),
    "hover_worker": ("网格员", "Grid worker"),
    "period_year": ("本年", "This year"),
    "period_30d": ("近30天", "Last 30 days"),
    "period_2022": ("2022年", "2022"),
    "period_custom": ("自定义", "Custom"),
    # Socket closed for good: the login or the wall's kiosk token ended (no reconnecting).
    "disconnected": ("已断开", "Disconnected"),
    # The audit page
    "nav_audit": ("审计日志", "Audit log"),
    "audit_title": (
        "审计日志：登录、导出、用户与大屏令牌变更",
        "Audit log: logins, exports, user and wall-token changes",
    ),
    "audit_forbidden": (
        "仅区级管理员可以查看审计日志",
        "Only district administrators may see the audit log",
    ),
    "audit_user": ("用户", "User"),
    "audit_all_users": ("全部用户", "All users"),
    "audit_action": ("操作", "Action"),
    "audit_all_actions": ("全部操作", "All actions"),
    "audit_refresh": ("刷新", "Refresh"),
    "audit_count": ("显示最新 {n} 条记录", "Showing the newest {n} entries"),
    "col_time": ("时间（北京时间）", "Time (UTC+8)"),
    "col_user": ("用户", "User"),
    "col_action": ("操作", "Action"),
    "col_address": ("来源地址", "From"),
    "col_detail": ("详情", "Detail"),
}

# Audit log actions: the filter's groups (a group matches "group" and "group.*") and the labels.
AUDIT_GROUPS: dict[str, tuple[str, str]] = {
    "login": ("登录（含失败、锁定）", "Logins (incl. failures, lockouts)"),
    "logout": ("退出", "Log-outs"),
    "export": ("导出", "Exports"),
    "user": ("用户变更", "User changes"),
    "kiosk": ("大屏令牌", "Wall-screen tokens"),
    "geo": ("边界导入", "Boundary imports"),
}
AUDIT_ACTIONS: dict[str, tuple[str, str]] = {
    "login": ("登录", "Log in"),
    "login.failed": ("登录失败", "Failed login"),
    "login.lockout": ("登录锁定", "Locked out"),
    "logout": ("退出", "Log out"),
    "export": ("导出", "Export"),
    "user.add": ("新增用户", "User added"),
    "user.disable": ("停用用户", "User disabled"),
    "user.enable": ("启用用户", "User enabled"),
    "user.password": ("修改密码", "Password changed"),
    "kiosk.issue": ("签发大屏令牌", "Wall token issued"),
    "kiosk.revoke": ("撤销大屏令牌", "Wall token revoked"),
    "kiosk.open": ("大屏接入", "Wall screen opened"),
    "geo.import": ("导入边界", "Boundaries imported"),
}


def action_label(action: str, lang: str = "zh") -> str:
    """Return an audit action's label in ``lang`` (the action itself when unknown)."""
    zh, en = AUDIT_ACTIONS.get(action, (action, action))
    return en if lang == "en" else zh


def t(key: str, lang: str = "zh") -> str:
    """Return the string ``key`` in ``lang`` (Chinese unless ``en``)."""
    zh, en = STRINGS[key]
    return en if lang == "en" else zh


# English count units for a count of one ("1 batch", not "1 batches"); Chinese has no plural.
SINGULAR = {
    "tickets": "ticket",
    "batches": "batch",
    "persons": "person",
    "points": "point",
    "calls": "call",
    "items": "item",
    "devices": "device",
    "posts": "post",
    "days": "day",
}


def count_unit(value_text: str, unit: str) -> str:
    """Return ``unit`` for a count shown as ``value_text`` (singular after "1" in English)."""
    return SINGULAR.get(unit, unit) if value_text == "1" else unit


def normal_lang(value: str | None) -> str:
    """Return ``en`` or ``zh`` for any input (Chinese is the default)."""
    return "en" if value == "en" else "zh"


# The live feed and the alerts: the worker and the scheduler store a code and its parameters
# (datasources/kinds.py declares each event kind's code); the page renders them here in the
# viewer's language. ``event.<kind>`` is a kind's label, ``feed.<kind>`` the line with its
# parameters (a kind without one shows its label), ``value.<param>.<value>`` a parameter value
# that is a code, ``alert.<code>`` an alert. Entries stored before codes existed carry a Chinese
# ``text`` and are shown from it.
EVENT_STRINGS: dict[str, tuple[str, str]] = {
    "event.call.key": ("一键呼叫", "One-key call"),
    "event.call.returned": ("书记回电", "Secretary called back"),
    "event.device.heartbeat": ("设备心跳", "Caller heartbeat"),
    "event.ticket.created": ("新诉求", "New request"),
    "event.ticket.dispatched": ("已派单", "Dispatched"),
    "event.ticket.arrived": ("已到场", "Arrived on site"),
    "event.ticket.resolved": ("已化解", "Resolved"),
    "event.ticket.rated": ("已评价", "Rated"),
    "event.ticket.closed": ("已办结", "Closed"),
    "event.ticket.escalated": ("已上报", "Escalated"),
    "event.ticket.reopened": ("重新办理", "Reopened"),
    "event.petition.filed": ("信访", "Petition"),
    "event.mediation.closed": ("调解结案", "Dispute mediated"),
    "event.points.earned": ("积分获得", "Points earned"),
    "event.points.redeemed": ("积分兑换", "Points redeemed"),
    "event.job.placed": ("就业安置", "Job placement"),
    "event.supervision.posted": ("监督公示", "Supervision item posted"),
    "event.supervision.voted": ("监督表决", "Supervision vote"),
    "event.notice.posted": ("村务公告", "Village notice"),
    "feed.call.key": ("{label}：{key}", "{label}: {key}"),
    "feed.ticket.created": ("{label}：{title}", "{label}: {title}"),
    "feed.ticket.dispatched": ("{label}：{ticket}", "{label}: {ticket}"),
    "feed.ticket.arrived": ("{label}：{ticket}", "{label}: {ticket}"),
    "feed.ticket.resolved": ("{label}：{ticket}", "{label}: {ticket}"),
    "feed.ticket.rated": ("{label}：{ticket}", "{label}: {ticket}"),
    "feed.ticket.closed": ("{label}：{ticket}", "{label}: {ticket}"),
    "feed.ticket.escalated": ("{label}：{ticket}", "{label}: {ticket}"),
    "feed.ticket.reopened": ("{label}：{ticket}", "{label}: {ticket}"),
    "feed.petition.filed": ("{label}：{level}", "{label}: {level}"),
    "feed.points.earned": ("{label}：{points}", "{label}: {points}"),
    "feed.points.redeemed": ("{label}：{points}", "{label}: {points}"),
    "feed.job.placed": ("{label}：{job_kind}", "{label}: {job_kind}"),
    "feed.supervision.posted": ("{label}：{title}", "{label}: {title}"),
    "feed.supervision.voted": ("{label}：{approve}:{reject}", "{label}: {approve}:{reject}"),
    "feed.notice.posted": ("{label}：{title}", "{label}: {title}"),
    "value.key.call": ("绿键（找书记）", "green key (call the secretary)"),
    "value.key.hangup": ("红键（挂断）", "red key (hang up)"),
    "value.key.satisfied": ("满意", "satisfied"),
    "value.key.unsatisfied": ("不满意", "not satisfied"),
    "value.level.district": ("区", "district"),
    "value.level.city": ("市", "city"),
    "value.level.province": ("省", "province"),
    "value.level.national": ("国家", "national"),
    "value.job_kind.public_welfare": ("公益性岗位", "public-welfare post"),
    "value.job_kind.doorstep": ("家门口就业", "doorstep job"),
    "value.job_kind.urban": ("城镇就业", "urban job"),
    "alert.unanswered_call": (
        "绿键呼叫5分钟未响应",
        "Green-key call not answered within 5 minutes",
    ),
    "alert.overdue_arrival": ("工单超期未到场", "Ticket overdue: nobody on site yet"),
    "alert.overdue_closure": ("工单超期未办结", "Ticket overdue: not closed"),
    "alert.device_offline": ("呼叫器{hours}小时无心跳", "Caller silent for {hours} hours"),
}
STRINGS.update(EVENT_STRINGS)
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
