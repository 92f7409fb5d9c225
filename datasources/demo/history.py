"""The demo history: the raw rows the platform would have stored, calibrated to docs/facts.md.

From the pilot (2021-09, three villages including 会馆回民村) through the district-wide roll-out
(2022-05) up to ``now``, this generates one-key calls, tickets with every stage, the ticket event
log, petitions, mediations, points, public-welfare posts and placements, supervision items with
their votes and recent device heartbeats. Nothing here stores a total: the 2022 figures of
docs/facts.md come out of the rows as the generator draws exactly that many of each (at scale 1):

- 4,424 tickets created in 2022, 4,408 of them closed; satisfaction 98%;
- 1,800 mediations; petitions at the district level -19.6% batches and -14.5% persons vs 2021,
  at the city level -31.0% and -62.5%; no national and no repeat province petitions in 2022;
- 1,330 public-welfare posts created and 4,262 urban placements in 2022;
- 8,046 doorstep placements and 1,260,000 points redeemed from 2022-01-01 to 2023-02-28.

Shapes: hours of the day, weekdays, Spring Festival and harvest seasons, more calls where more
residents are elderly, response times that vary by town, category and priority, a few bad grids.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import Engine, delete, select

from datasources.db import session_scope
from datasources.demo.people import pilot_village_codes
from datasources.geography import load_geography
from datasources.models import (
    CallEvent,
    Device,
    DeviceHeartbeat,
    Grid,
    Household,
    JobPlacement,
    Mediation,
    Petition,
    PointsTransaction,
    PublicWelfareJob,
    Staff,
    SupervisionItem,
    SupervisionVote,
    Ticket,
    TicketEvent,
    Village,
)
from datasources.periods import SHANGHAI, day_start

Progress = Callable[[str, int], None]

HISTORY_START = dt.date(2021, 1, 1)  # petitions and mediations predate the platform
PILOT_START = dt.date(2021, 9, 1)
ROLLOUT = dt.date(2022, 5, 1)
POINTS_WINDOW = (dt.date(2022, 1, 1), dt.date(2023, 2, 28))
BATCH = 5_000

# Calibrated totals (scale 1). Years not listed continue from the growth factors below.
TICKETS_2022 = 4_424
CLOSED_2022 = 4_408
UNSATISFIED_SHARE = 0.02
MEDIATIONS = {2021: 1_690, 2022: 1_800, 2023: 1_760, 2024: 1_700, 2025: 1_650, 2026: 1_610}
# (batches, persons) per level and year: 2022 vs 2021 gives the published changes exactly.
PETITIONS: dict[int, dict[str, tuple[int, int]]] = {
    2021: {"district": (102, 276), "city": (29, 64), "province": (6, 9), "national": (0, 0)},
    2022: {"district": (82, 236), "city": (20, 24), "province": (3, 4), "national": (0, 0)},
    2023: {"district": (74, 205), "city": (17, 21), "province": (2, 3), "national": (0, 0)},
    2024: {"district": (69, 188), "city": (15, 19), "province": (2, 2), "national": (0, 0)},
    2025: {"district": (63, 171), "city": (13, 16), "province": (1, 2), "national": (0, 0)},
    2026: {"district": (58, 157), "city": (12, 14), "province": (1, 1), "national": (0, 0)},
}
REPEAT_PROVINCE_2021 = 2
WELFARE_POSTS = {2022: 1_330, 2023: 1_390, 2024: 1_440, 2025: 1_470, 2026: 1_500}
URBAN_PLACEMENTS = {2022: 4_262, 2023: 4_410, 2024: 4_530, 2025: 4_600, 2026: 4_680}
DOORSTEP_WINDOW = 8_046
POINTS_REDEEMED_WINDOW = 1_260_000
TICKET_GROWTH = {2021: 1.0, 2022: 1.0, 2023: 1.06, 2024: 1.10, 2025: 1.13, 2026: 1.15}
POINTS_GROWTH = {2021: 1.0, 2022: 1.0, 2023: 1.08, 2024: 1.16, 2025: 1.22, 2026: 1.27}

CATEGORY_WEIGHTS = {
    "livelihood": 0.24,
    "environment": 0.14,
    "infrastructure": 0.13,
    "dispute": 0.12,
    "elderly_care": 0.12,
    "policy": 0.09,
    "employment": 0.06,
    "safety": 0.05,
    "supervision": 0.02,
    "other": 0.03,
}
TITLES = {
    "livelihood": (
        "停水报修",
        "代办医保缴费",
        "独居老人需要代买药品",
        "燃气灶维修求助",
        "快递代收",
    ),
    "environment": ("垃圾清运不及时", "沟渠淤堵发臭", "秸秆焚烧", "村道积水", "畜禽粪污"),
    "infrastructure": ("路灯不亮", "村道破损", "桥梁护栏松动", "自来水管漏水", "电线老化"),
    "dispute": ("邻里宅基地纠纷", "土地流转租金纠纷", "家庭赡养纠纷", "排水边界纠纷", "工钱拖欠"),
    "elderly_care": ("独居老人探视", "老人就医陪护", "高龄补贴咨询", "老人助餐", "失能老人照护"),
    "policy": ("养老保险政策咨询", "低保申请咨询", "土地确权咨询", "医保报销咨询", "惠农补贴"),
    "employment": ("求职登记", "公益性岗位报名", "技能培训报名", "创业贷款咨询", "务工信息"),
    "safety": ("危房隐患", "电动车违规充电", "池塘无防护", "燃气泄漏", "消防通道堵塞"),
    "supervision": ("村务公开疑问", "项目资金公示", "低保评议异议", "集体资产出租", "工程质量"),
    "other": ("意见建议", "证明开具", "户籍咨询", "失物招领", "其他求助"),
}
SOURCES = ("caller", "app", "hotline", "walk_in", "supervision")
SOURCE_WEIGHTS = (0.36, 0.30, 0.10, 0.21, 0.03)
LEVELS = ("grid", "village", "town", "district")
LEVEL_WEIGHTS = (0.71, 0.24, 0.04, 0.01)
# Median minutes from arrival to resolution, by category.
RESOLVE_MINUTES = {
    "livelihood": 150,
    "environment": 420,
    "infrastructure": 1_800,
    "dispute": 1_200,
    "elderly_care": 90,
    "policy": 45,
    "employment": 600,
    "safety": 240,
    "supervision": 2_400,
    "other": 300,
}
ARRIVE_FACTOR = {
    "elderly_care": 0.7,
    "safety": 0.6,
    "dispute": 0.9,
    "policy": 1.3,
    "employment": 1.6,
    "supervision": 1.8,
}
ACTIVITIES = (
    "志愿服务",
    "环境整治",
    "文明家庭评选",
    "移风易俗",
    "邻里互助",
    "垃圾分类",
    "孝老爱亲",
)
ITEMS = (
    ("食用油", 50),
    ("大米10斤", 40),
    ("洗衣液", 25),
    ("毛巾", 10),
    ("免费体检", 100),
    ("公交乘车卡充值", 20),
    ("酱油", 8),
    ("理发服务", 15),
)
EMPLOYERS_DOORSTEP = (
    "叶集木竹产业园",
    "史河食品厂",
    "家庭农场",
    "蔬菜大棚合作社",
    "茶园采摘",
    "扶贫车间",
)
EMPLOYERS_URBAN = ("叶集经济开发区", "六安物流园", "木业加工厂", "电子装配厂", "商贸城", "建筑公司")
WELFARE_TITLES = ("保洁员", "护林员", "河道巡查员", "养老护理员", "道路养护员", "网格协管员")
SUPERVISION_TITLES = (
    "村集体资产发包",
    "小型水利工程建设",
    "低保户民主评议",
    "村道硬化工程",
    "集体经营收益分配",
    "惠民资金发放",
    "村级项目招投标",
)


@dataclass
class _World:
    """What the generator needs from the stored geography and people."""

    villages: list[str]
    village_town: dict[str, str]
    village_kind: dict[str, str]
    village_weight: np.ndarray  # more elderly and more residents: more requests
    village_grids: dict[str, list[str]]
    grid_weight: dict[str, np.ndarray]
    grid_town: dict[str, str]
    pilots: set[str]
    bad_grids: set[str]
    devices_by_grid: dict[str, list[tuple[str, dt.datetime]]]
    households_by_village: dict[str, list[tuple[str, str]]]
    assignees: dict[str, str]  # grid -> grid worker
    town_arrive_minutes: dict[str, float]


@dataclass
class HistorySummary:
    """Row counts written, per table."""

    rows: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0


def _load_world(engine: Engine, seed: int) -> _World:
    rng = np.random.default_rng(seed + 7)
    with session_scope(engine) as session:
        villages = session.execute(
            select(Village.code, Village.town_code, Village.kind, Village.elderly_share).order_by(
                Village.code
            )
        ).all()
        grids = session.execute(
            select(Grid.code, Grid.village_code, Grid.town_code, Grid.residents).order_by(Grid.code)
        ).all()
        devices = session.execute(
            select(Device.id, Device.grid_code, Device.installed_at).order_by(Device.id)
        ).all()
        households = session.execute(
            select(Household.id, Household.village_code, Household.grid_code).order_by(Household.id)
        ).all()
        workers = session.execute(
            select(Staff.grid_code, Staff.id).where(Staff.role == "grid_worker")
        ).all()
    if not villages or not households:
        raise LookupError("no geography or people stored: seed the demo geography first")
    pilots = set(pilot_village_codes(load_geography(engine)))
    residents_by_village: dict[str, int] = defaultdict(int)
    village_grids: dict[str, list[str]] = defaultdict(list)
    grid_res: dict[str, list[int]] = defaultdict(list)
    for code, village, _town, residents in grids:
        residents_by_village[village] += residents
        village_grids[village].append(code)
        grid_res[village].append(max(1, residents))
    weight = np.array(
        [residents_by_village[v.code] * (0.4 + 3.0 * v.elderly_share) for v in villages], float
    )
    all_grids = [g.code for g in grids]
    bad = set(rng.choice(all_grids, size=max(1, len(all_grids) // 60), replace=False).tolist())
    devices_by_grid: dict[str, list[tuple[str, dt.datetime]]] = defaultdict(list)
    for device_id, grid, installed in devices:
        devices_by_grid[grid].append((device_id, installed))
    by_village: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for household_id, village, grid in households:
        by_village[village].append((household_id, grid))
    towns = sorted({v.town_code for v in villages})
    town_minutes = {
        t: float(
            rng.uniform(16, 24)
            if any(v.kind == "community" for v in villages if v.town_code == t)
            else rng.uniform(30, 52)
        )
        for t in towns
    }
    grid_weight = {}
    for v, res in grid_res.items():
        w = np.array(res, float)
        for k, g in enumerate(village_grids[v]):
            if g in bad:
                w[k] *= 2.0  # a few bad grids: more requests and slower service
        grid_weight[v] = w / w.sum()
    return _World(
        villages=[v.code for v in villages],
        village_town={v.code: v.town_code for v in villages},
        village_kind={v.code: v.kind for v in villages},
        village_weight=weight,
        village_grids=dict(village_grids),
        grid_weight=grid_weight,
        grid_town={g.code: g.town_code for g in grids},
        pilots=pilots,
        bad_grids=bad,
        devices_by_grid=dict(devices_by_grid),
        households_by_village=dict(by_village),
        assignees={grid: staff_id for grid, staff_id in workers if grid is not None},
        town_arrive_minutes=town_minutes,
    )


# --- Calendar shapes -------------------------------------------------------------------------

_SPRING_FESTIVAL = {
    2021: dt.date(2021, 2, 12),
    2022: dt.date(2022, 2, 1),
    2023: dt.date(2023, 1, 22),
    2024: dt.date(2024, 2, 10),
    2025: dt.date(2025, 1, 29),
    2026: dt.date(2026, 2, 17),
    2027: dt.date(2027, 2, 6),
}
_HOUR_WEIGHTS = np.array(
    [1, 0.5, 0.3, 0.3, 0.4, 1, 3, 6, 9, 10, 9, 7, 5, 5, 7, 8, 8, 7, 6, 5, 4, 3, 2, 1.5], float
)
_HOUR_WEIGHTS /= _HOUR_WEIGHTS.sum()


def _season(day: dt.date) -> float:
    """Return the relative activity of a day: weekdays, Spring Festival, harvest."""
    factor = 0.8 if day.weekday() >= 5 else 1.05
    festival = _SPRING_FESTIVAL.get(day.year)
    if festival is not None:
        gap = (day - festival).days
        if -10 <= gap <= 15:
            factor *= 1.35  # migrant workers home: more disputes, more requests
    if (day.month == 6 and day.day <= 20) or (day.month == 10 and day.day <= 25):
        factor *= 1.2  # wheat and rice harvests
    return factor


def _days(start: dt.date, end: dt.date) -> list[dt.date]:
    return [start + dt.timedelta(days=k) for k in range((end - start).days + 1)]


def _active_weight(world: _World, day: dt.date) -> np.ndarray:
    """Return per-village weights of platform activity on ``day`` (zero before it started)."""
    if day >= ROLLOUT:
        return world.village_weight
    if day >= PILOT_START:
        mask = np.array([v in world.pilots for v in world.villages])
        return world.village_weight * mask * 1.6  # pilots were promoted hard
    return world.village_weight * 0.0


def _spread(
    rng: np.random.Generator, days: list[dt.date], weights: np.ndarray, total: int
) -> np.ndarray:
    """Split an exact ``total`` over ``days`` in proportion to ``weights``."""
    if total <= 0 or weights.sum() <= 0:
        return np.zeros(len(days), dtype=np.int64)
    return rng.multinomial(total, weights / weights.sum())


def _moment(rng: np.random.Generator, day: dt.date, hours: np.ndarray = _HOUR_WEIGHTS):
    """Return a random aware UTC time within an Asia/Shanghai day, shaped by the hours."""
    hour = int(rng.choice(24, p=hours))
    second = int(rng.integers(0, 3600))
    local = dt.datetime.combine(day, dt.time(hour), SHANGHAI) + dt.timedelta(seconds=second)
    return local.astimezone(dt.UTC)


def _year_totals(
    days: list[dt.date],
    weights: np.ndarray,
    anchor: tuple[dt.date, dt.date, int],
    growth: dict[int, float],
    scale: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Counts per day: exactly ``anchor`` total within its window, the same rate elsewhere."""
    start, end, total = anchor
    inside = np.array([start <= d <= end for d in days])
    rate = total / weights[inside].sum() if weights[inside].sum() else 0.0
    g = np.array([growth.get(d.year, max(growth.values())) for d in days])
    counts = rng.poisson(weights * g * rate * scale) * ~inside
    counts[inside] = _spread(
        rng, list(np.array(days)[inside]), weights[inside], round(total * scale)
    )
    return counts


# --- The generator ---------------------------------------------------------------------------


class _Ids:
    """Deterministic ids for generated events (unique, and never like a producer's uuid)."""

    def __init__(self, prefix: str) -> None:
        self._prefix = prefix
        self._n = 0

    def __call__(self) -> str:
        self._n += 1
        return f"{self._prefix}{self._n:09d}"


@dataclass
class _Rows:
    tables: dict[type, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))

    def add(self, model: type, row: dict[str, Any]) -> None:
        self.tables[model].append(row)


def generate_history(
    engine: Engine,
    *,
    now: dt.datetime,
    start: dt.date | None = None,
    end: dt.date | None = None,
    scale: float = 1.0,
    seed: int = 2022,
    progress: Progress | None = None,
) -> HistorySummary:
    """Generate and store the demo history between ``start`` and ``end`` (default: all to now).

    Existing history rows in the range are deleted first, so running it twice gives the same
    database. Stage times later than ``now`` are left out: recent tickets are still open.
    """
    started = time.perf_counter()
    step = progress or (lambda _label, _n: None)
    today = now.astimezone(SHANGHAI).date()
    start = max(start or HISTORY_START, HISTORY_START)
    end = min(end or today, today)
    if end < start:
        raise ValueError(f"--to ({end}) is before --from ({start})")
    if scale <= 0:
        raise ValueError("scale must be positive")
    world = _load_world(engine, seed)
    ids = _Ids(f"h{seed % 1000:03d}")
    rows = _Rows()
    # One generator per series, so changing one series does not reshuffle the others.
    seeds = np.random.SeedSequence(seed).spawn(8)
    rngs = [np.random.default_rng(s) for s in seeds]
    all_days = _days(HISTORY_START, today)
    keep = (start, end)
    _tickets_and_calls(world, rows, ids, rngs[0], all_days, now, scale, keep)
    step("tickets", len(rows.tables[Ticket]))
    _petitions(world, rows, ids, rngs[1], all_days, scale, keep)
    _mediations(world, rows, ids, rngs[2], all_days, scale, keep)
    _points(world, rows, ids, rngs[3], all_days, scale, keep)
    _jobs(world, rows, ids, rngs[4], all_days, now, scale, keep)
    _supervision(world, rows, ids, rngs[5], all_days, now, scale, keep)
    _heartbeats(engine, rows, ids, now, keep)
    step("generated", 0)
    summary = HistorySummary()
    _store(engine, rows, keep, step, summary)
    summary.seconds = time.perf_counter() - started
    return summary


def _in(keep: tuple[dt.date, dt.date], ts: dt.datetime) -> bool:
    day = ts.astimezone(SHANGHAI).date()
    return keep[0] <= day <= keep[1]


def _lognormal(rng: np.random.Generator, median_minutes: float, sigma: float = 0.6) -> float:
    return float(median_minutes * math.exp(rng.normal(0.0, sigma)))


def _tickets_and_calls(
    world: _World,
    rows: _Rows,
    ids: _Ids,
    rng: np.random.Generator,
    days: list[dt.date],
    now: dt.datetime,
    scale: float,
    keep: tuple[dt.date, dt.date],
) -> None:
    weights = [_active_weight(world, d) * _season(d) for d in days]
    day_weight = np.array([w.sum() for w in weights])
    counts = _year_totals(
        days,
        day_weight,
        (dt.date(2022, 1, 1), dt.date(2022, 12, 31), TICKETS_2022),
        TICKET_GROWTH,
        scale,
        rng,
    )
    categories = list(CATEGORY_WEIGHTS)
    cat_p = np.array(list(CATEGORY_WEIGHTS.values()))
    cat_p /= cat_p.sum()
    tickets: list[dict[str, Any]] = []
    for day, n, w in zip(days, counts, weights, strict=True):
        if n == 0:
            continue
        villages = rng.choice(len(world.villages), size=int(n), p=w / w.sum())
        for seq, vi in enumerate(villages):
            village = world.villages[int(vi)]
            grids = world.village_grids[village]
            grid = grids[int(rng.choice(len(grids), p=world.grid_weight[village]))]
            tickets.append(
                {
                    "id": f"T{day:%Y%m%d}{seq + 1:04d}",
                    "grid": grid,
                    "village": village,
                    "town": world.village_town[village],
                    "created": _moment(rng, day),
                    "category": categories[int(rng.choice(len(categories), p=cat_p))],
                }
            )
    # Exactly CLOSED_2022 of the 2022 tickets are closed: the rest are long-running cases.
    in_2022 = [t for t in tickets if t["created"].astimezone(SHANGHAI).year == 2022]
    never_close = round((TICKETS_2022 - CLOSED_2022) * scale) if in_2022 else 0
    late_2022 = [
        t
        for t in in_2022
        if t["category"] in ("dispute", "infrastructure", "supervision")
        and t["created"].astimezone(SHANGHAI).month >= 11
    ]
    stuck = {t["id"] for t in late_2022[:: max(1, len(late_2022) // max(1, never_close))]}
    stuck = set(sorted(stuck)[:never_close])
    other_stuck = rng.random(len(tickets)) < 0.002
    for k, t in enumerate(tickets):
        is_2022 = t["created"].astimezone(SHANGHAI).year == 2022
        t["stuck"] = t["id"] in stuck if is_2022 else bool(other_stuck[k])
        _one_ticket(world, rows, ids, rng, t, now, keep)
    _calibrate_satisfaction(rows, rng, 2022)


def _one_ticket(
    world: _World,
    rows: _Rows,
    ids: _Ids,
    rng: np.random.Generator,
    t: dict[str, Any],
    now: dt.datetime,
    keep: tuple[dt.date, dt.date],
) -> None:
    created: dt.datetime = t["created"]
    category = t["category"]
    priority = "urgent" if rng.random() < (0.25 if category == "safety" else 0.07) else "normal"
    source = SOURCES[int(rng.choice(len(SOURCES), p=SOURCE_WEIGHTS))]
    if category == "supervision":
        source = "supervision"
    device, installed_at = None, created
    if source == "caller":
        installed = [d for d in world.devices_by_grid.get(t["grid"], ()) if d[1] < created]
        if installed:
            device, installed_at = installed[int(rng.integers(0, len(installed)))]
        else:
            source = "app"
    keep_ticket = _in(keep, created)
    events: list[tuple[str, dt.datetime, dict[str, Any]]] = []
    bad = t["grid"] in world.bad_grids
    arrive_median = world.town_arrive_minutes[t["town"]] * ARRIVE_FACTOR.get(category, 1.0)
    if priority == "urgent":
        arrive_median *= 0.45
    if bad:
        arrive_median *= 2.5
    dispatched = created + dt.timedelta(minutes=_lognormal(rng, 4.0, 0.5))
    arrived = dispatched + dt.timedelta(minutes=_lognormal(rng, arrive_median, 0.55))
    level = LEVELS[int(rng.choice(4, p=LEVEL_WEIGHTS))]
    resolve_median = RESOLVE_MINUTES[category] * (1 + 1.5 * LEVELS.index(level))
    resolved = arrived + dt.timedelta(minutes=_lognormal(rng, resolve_median, 0.7))
    assignee = world.assignees.get(t["grid"])
    events.append(("ticket.dispatched", dispatched, {"assignee": assignee}))
    events.append(("ticket.arrived", arrived, {"assignee": assignee}))
    if level != "grid":
        escalated = arrived + (resolved - arrived) * 0.3
        events.append(("ticket.escalated", escalated, {"to": level, "reason": "beyond_grid"}))
    reopened = not t["stuck"] and rng.random() < 0.01
    rated_ok = rng.random() < 0.92
    rated_data: dict[str, Any] = {}
    unsatisfied = rng.random() < UNSATISFIED_SHARE
    if t["stuck"]:
        events = events[:2] + [e for e in events[2:] if e[0] == "ticket.escalated"]
    else:
        events.append(("ticket.resolved", resolved, {"level": level}))
        closed = resolved + dt.timedelta(minutes=_lognormal(rng, 60, 0.8))
        if reopened:
            events.append(("ticket.closed", closed, {}))
            again = closed + dt.timedelta(hours=float(rng.uniform(6, 72)))
            events.append(("ticket.reopened", again, {"reason": "resident_not_satisfied"}))
            resolved2 = again + dt.timedelta(minutes=_lognormal(rng, resolve_median, 0.6))
            events.append(("ticket.resolved", resolved2, {"level": level}))
            closed = resolved2 + dt.timedelta(minutes=_lognormal(rng, 60, 0.8))
        if rated_ok:
            rated = closed - dt.timedelta(minutes=float(rng.uniform(1, 20)))
            rating = "unsatisfied" if unsatisfied else "satisfied"
            rated_data = {"rating": rating}
            events.append(("ticket.rated", rated, rated_data))
        events.append(("ticket.closed", closed, {}))
    events = sorted((e for e in events if e[1] <= now), key=lambda e: e[1])
    ticket: dict[str, Any] = {
        "id": t["id"],
        "event_id": ids(),
        "grid_code": t["grid"],
        "village_code": t["village"],
        "town_code": t["town"],
        "source": source,
        "category": category,
        "priority": priority,
        "petition": category == "dispute" and rng.random() < 0.15,
        "title": TITLES[category][int(rng.integers(0, len(TITLES[category])))],
        "status": "open",
        "created_at": created,
        "dispatched_at": None,
        "arrived_at": None,
        "resolved_at": None,
        "rated_at": None,
        "closed_at": None,
        "assignee_id": None,
        "rating": None,
        "resolution_level": None,
        "escalation_level": None,
        "reopened_count": 0,
        "call_id": None,
    }
    if keep_ticket:
        rows.add(
            TicketEvent,
            {
                "id": ticket["event_id"],
                "ticket_id": t["id"],
                "kind": "ticket.created",
                "ts": created,
                "data": {"category": category, "source": source, "priority": priority},
            },
        )
    for kind, ts, data in events:
        _apply_stage(ticket, kind, ts, data)
        if keep_ticket:
            event = {"id": ids(), "ticket_id": t["id"], "kind": kind, "ts": ts, "data": data}
            rows.add(TicketEvent, event)
    if device is not None:
        call_ts = created - dt.timedelta(minutes=float(rng.uniform(0.5, 4.0)))
        call_id = ids()
        ticket["call_id"] = call_id
        _calls_for(rows, ids, rng, t, device, call_ts, call_id, created, now, keep)
        if ticket["closed_at"] is not None and rng.random() < 0.7:
            up = ticket["rating"] != "unsatisfied"
            thumb = ticket["closed_at"] + dt.timedelta(minutes=float(rng.uniform(2, 240)))
            if thumb <= now and _in(keep, thumb):
                rows.add(
                    CallEvent,
                    _call_row(ids(), device, t, "satisfied" if up else "unsatisfied", thumb),
                )
        # Calls answered by a call-back, with no ticket: about as many again.
        other = created - dt.timedelta(days=float(rng.uniform(1, 20)))
        if rng.random() < 0.8 and other > installed_at:
            _calls_for(rows, ids, rng, t, device, other, ids(), None, now, keep)
    if keep_ticket:
        rows.add(Ticket, ticket)
        if ticket["rating"] is not None:
            ticket["_rated_data"] = rated_data


def _calibrate_satisfaction(rows: _Rows, rng: np.random.Generator, year: int) -> None:
    """Flip a few of the year's ticket ratings so satisfaction comes out at 98%.

    Each ticket's rating is drawn at random; with a few thousand of them the share wanders by
    a few tenths of a point, so the published figure is met by adjusting the draw, not a total.
    """
    rated = [
        t
        for t in rows.tables[Ticket]
        if t["rating"] is not None and t["created_at"].astimezone(SHANGHAI).year == year
    ]
    thumbs = [
        c["key"]
        for c in rows.tables[CallEvent]
        if c["key"] in ("satisfied", "unsatisfied") and c["ts"].astimezone(SHANGHAI).year == year
    ]
    total = len(rated) + len(thumbs)
    want = round(total * UNSATISFIED_SHARE)
    have = sum(t["rating"] == "unsatisfied" for t in rated) + thumbs.count("unsatisfied")
    source, target = ("satisfied", "unsatisfied") if want > have else ("unsatisfied", "satisfied")
    pool = [t for t in rated if t["rating"] == source]
    for k in rng.permutation(len(pool))[: abs(want - have)]:
        ticket = pool[int(k)]
        ticket["rating"] = target
        ticket["_rated_data"]["rating"] = target
    for ticket in rows.tables[Ticket]:
        ticket.pop("_rated_data", None)


def _call_row(call_id: str, device: str, t: dict[str, Any], key: str, ts: dt.datetime):
    return {
        "id": call_id,
        "device_id": device,
        "grid_code": t["grid"],
        "village_code": t["village"],
        "town_code": t["town"],
        "key": key,
        "ts": ts,
        "answered_at": None,
        "ticket_id": None,
    }


def _calls_for(
    rows: _Rows,
    ids: _Ids,
    rng: np.random.Generator,
    t: dict[str, Any],
    device: str,
    call_ts: dt.datetime,
    call_id: str,
    ticket_created: dt.datetime | None,
    now: dt.datetime,
    keep: tuple[dt.date, dt.date],
) -> None:
    """Store a green-key call, its answer (ticket or call-back) and the red hang-up key."""
    if call_ts > now or not _in(keep, call_ts):
        return
    call = _call_row(call_id, device, t, "call", call_ts)
    if ticket_created is not None:
        call["answered_at"], call["ticket_id"] = ticket_created, t["id"]
    elif rng.random() < 0.99:
        call["answered_at"] = call_ts + dt.timedelta(minutes=float(rng.uniform(0.3, 4.8)))
    elif rng.random() < 0.7:
        call["answered_at"] = call_ts + dt.timedelta(minutes=float(rng.uniform(6, 40)))
    if call["answered_at"] is not None and call["answered_at"] > now:
        call["answered_at"] = None
    rows.add(CallEvent, call)
    hangup = call_ts + dt.timedelta(minutes=float(rng.uniform(1, 9)))
    if hangup <= now:
        rows.add(CallEvent, _call_row(ids(), device, t, "hangup", hangup))


def _apply_stage(ticket: dict[str, Any], kind: str, ts: dt.datetime, data: dict[str, Any]):
    """Move a ticket's columns the way the worker does for the same event."""
    if kind == "ticket.dispatched":
        ticket["dispatched_at"] = ticket["dispatched_at"] or ts
        ticket["assignee_id"] = data.get("assignee")
        ticket["status"] = "dispatched"
    elif kind == "ticket.arrived":
        ticket["arrived_at"] = ticket["arrived_at"] or ts
        ticket["status"] = "in_progress"
    elif kind == "ticket.escalated":
        order = ("village", "town", "district")
        current = ticket["escalation_level"]
        if current is None or order.index(data["to"]) > order.index(current):
            ticket["escalation_level"] = data["to"]
    elif kind == "ticket.resolved":
        ticket["resolved_at"], ticket["resolution_level"] = ts, data["level"]
        ticket["status"] = "resolved"
    elif kind == "ticket.rated":
        ticket["rating"], ticket["rated_at"] = data["rating"], ts
    elif kind == "ticket.closed":
        ticket["closed_at"], ticket["status"] = ts, "closed"
    elif kind == "ticket.reopened":
        ticket["reopened_count"] += 1
        ticket["closed_at"] = ticket["resolved_at"] = None
        ticket["status"] = "reopened"


def _village_choice(world: _World, rng: np.random.Generator, n: int, day: dt.date | None):
    w = world.village_weight if day is None else _active_weight(world, day)
    if w.sum() <= 0:
        w = world.village_weight
    return [world.villages[int(i)] for i in rng.choice(len(world.villages), size=n, p=w / w.sum())]


def _petitions(world, rows, ids, rng, days, scale, keep) -> None:
    """Exact batches and persons per level and year; persons spread over the batches."""
    for year, levels in PETITIONS.items():
        year_days = [d for d in days if d.year == year]
        if not year_days:
            continue
        season = np.array([_season(d) for d in year_days])
        for level, (batches, persons) in levels.items():
            batches, persons = round(batches * scale), round(persons * scale)
            if batches == 0:
                continue
            per_day = _spread(rng, year_days, season, batches)
            extra = rng.multinomial(persons - batches, np.full(batches, 1 / batches))
            repeats = REPEAT_PROVINCE_2021 if (year, level) == (2021, "province") else 0
            k = 0
            for day, n in zip(year_days, per_day, strict=True):
                for village in _village_choice(world, rng, int(n), None):
                    ts = _moment(rng, day)
                    if _in(keep, ts):
                        rows.add(
                            Petition,
                            {
                                "id": ids(),
                                "village_code": village,
                                "town_code": world.village_town[village],
                                "level": level,
                                "persons": 1 + int(extra[k]),
                                "repeat": k < repeats
                                or (level == "district" and rng.random() < 0.05),
                                "filed_at": ts,
                            },
                        )
                    k += 1


def _mediations(world, rows, ids, rng, days, scale, keep) -> None:
    for year, total in MEDIATIONS.items():
        year_days = [d for d in days if d.year == year]
        if not year_days:
            continue
        full = _days(dt.date(year, 1, 1), dt.date(year, 12, 31))
        season = np.array([_season(d) for d in full])
        per_day = _spread(rng, full, season, round(total * scale))
        for day, n in zip(full, per_day, strict=True):
            if day > year_days[-1]:
                break
            for village in _village_choice(world, rng, int(n), None):
                ts = _moment(rng, day)
                if not _in(keep, ts):
                    continue
                district_team = rng.random() < 0.05
                rows.add(
                    Mediation,
                    {
                        "id": ids(),
                        "village_code": village,
                        "town_code": world.village_town[village],
                        "team": "MT341504" if district_team else f"MT{village}",
                        "outcome": "settled" if rng.random() < 0.96 else "referred",
                        "closed_at": ts,
                    },
                )


def _exact_amounts(rng: np.random.Generator, n: int, total: int, prices: np.ndarray):
    """Draw ``n`` positive amounts from ``prices`` and nudge them to sum to ``total``."""
    amounts = prices[rng.integers(0, len(prices), size=n)].astype(np.int64)
    amounts = np.maximum(1, np.round(amounts * total / amounts.sum())).astype(np.int64)
    diff = total - int(amounts.sum())
    while diff != 0:
        idx = rng.integers(0, n, size=min(n, abs(diff)))
        step = 1 if diff > 0 else -1
        for i in idx:
            if diff == 0:
                break
            if amounts[i] + step >= 1:
                amounts[i] += step
                diff -= step
    return amounts


def _points(world, rows, ids, rng, days, scale, keep) -> None:
    """Points redeemed: exactly 1,260,000 in the window; earned runs about a quarter ahead."""
    weights = [_active_weight(world, d) * _season(d) for d in days]
    day_weight = np.array([w.sum() for w in weights])
    inside = np.array([POINTS_WINDOW[0] <= d <= POINTS_WINDOW[1] for d in days])
    prices = np.array([p for _, p in ITEMS])
    mean_price = float(prices.mean())
    rate = POINTS_REDEEMED_WINDOW / mean_price / day_weight[inside].sum()
    growth = np.array([POINTS_GROWTH.get(d.year, 1.3) for d in days])
    counts = rng.poisson(day_weight * growth * rate * scale)
    window_n = int(counts[inside].sum())
    amounts_window = _exact_amounts(rng, window_n, round(POINTS_REDEEMED_WINDOW * scale), prices)
    w_i = 0
    earn_prices = np.array([5, 10, 10, 20, 20, 30, 50])
    for day, n, w, is_in in zip(days, counts, weights, inside, strict=True):
        if n == 0:
            continue
        villages = rng.choice(len(world.villages), size=int(n) * 2, p=w / w.sum())
        for k, vi in enumerate(villages):
            village = world.villages[int(vi)]
            homes = world.households_by_village[village]
            household, grid = homes[int(rng.integers(0, len(homes)))]
            redeem = k < n
            if redeem:
                if is_in:
                    points, w_i = int(amounts_window[w_i]), w_i + 1
                else:
                    points = int(prices[rng.integers(0, len(prices))])
                item = ITEMS[int(rng.integers(0, len(ITEMS)))][0]
            else:
                points = int(earn_prices[rng.integers(0, len(earn_prices))] * 2)
                item = ACTIVITIES[int(rng.integers(0, len(ACTIVITIES)))]
            ts = _moment(rng, day)
            if _in(keep, ts):
                rows.add(
                    PointsTransaction,
                    {
                        "id": ids(),
                        "village_code": village,
                        "town_code": world.village_town[village],
                        "grid_code": grid,
                        "household_id": household,
                        "kind": "redeemed" if redeem else "earned",
                        "points": points,
                        "detail": item,
                        "ts": ts,
                    },
                )


def _placement(world, ids, rng, village, kind, ts) -> dict[str, Any]:
    if kind == "urban":
        employer = EMPLOYERS_URBAN[int(rng.integers(0, len(EMPLOYERS_URBAN)))]
        wage = round(float(rng.uniform(17, 30)), 1)
    elif kind == "doorstep":
        employer = EMPLOYERS_DOORSTEP[int(rng.integers(0, len(EMPLOYERS_DOORSTEP)))]
        wage = 12.5 if rng.random() < 0.6 else round(float(rng.uniform(11, 16)), 1)
    else:
        employer = "村民委员会"
        wage = round(float(rng.uniform(10, 12.5)), 1)
    return {
        "id": ids(),
        "village_code": village,
        "town_code": world.village_town[village],
        "person": f"P{int(rng.integers(0, 16**10)):010x}",
        "job_kind": kind,
        "employer": employer,
        "hourly_wage": wage,
        "placed_at": ts,
    }


def _jobs(world, rows, ids, rng, days, now, scale, keep) -> None:
    """Public-welfare posts (filled over the following weeks), doorstep and urban placements."""
    season = np.array([_season(d) for d in days])
    jan22 = dt.date(2022, 1, 1)
    for kind, totals in (("post", WELFARE_POSTS), ("urban", URBAN_PLACEMENTS)):
        anchor = (dt.date(2022, 1, 1), dt.date(2022, 12, 31), totals[2022])
        growth = {y: totals.get(y, totals[2022]) / totals[2022] for y in range(2021, 2028)}
        weights = season * np.array([d >= jan22 for d in days])
        counts = _year_totals(days, weights, anchor, growth, scale, rng)
        for day, n in zip(days, counts, strict=True):
            for village in _village_choice(world, rng, int(n), None):
                ts = _moment(rng, day)
                if kind == "urban":
                    if _in(keep, ts):
                        rows.add(JobPlacement, _placement(world, ids, rng, village, "urban", ts))
                    continue
                post = {
                    "id": ids(),
                    "village_code": village,
                    "town_code": world.village_town[village],
                    "title": WELFARE_TITLES[int(rng.integers(0, len(WELFARE_TITLES)))],
                    "created_at": ts,
                    "filled_at": None,
                    "placement_id": None,
                }
                filled = ts + dt.timedelta(days=float(rng.uniform(3, 30)))
                if rng.random() < 0.93 and filled <= now:
                    placement = _placement(world, ids, rng, village, "public_welfare", filled)
                    post["filled_at"], post["placement_id"] = filled, placement["id"]
                    if _in(keep, filled):
                        rows.add(JobPlacement, placement)
                if _in(keep, ts):
                    rows.add(PublicWelfareJob, post)
    weights = np.array([_active_weight(world, d).sum() for d in days]) * season
    window = (POINTS_WINDOW[0], POINTS_WINDOW[1], DOORSTEP_WINDOW)
    counts = _year_totals(days, weights, window, TICKET_GROWTH, scale, rng)
    for day, n in zip(days, counts, strict=True):
        for village in _village_choice(world, rng, int(n), day):
            ts = _moment(rng, day)
            if _in(keep, ts):
                rows.add(JobPlacement, _placement(world, ids, rng, village, "doorstep", ts))


def _working_days_after(day: dt.date, n: int) -> dt.date:
    while n > 0:
        day += dt.timedelta(days=1)
        if day.weekday() < 5:
            n -= 1
    return day


def _supervision(world, rows, ids, rng, days, now, scale, keep) -> None:
    """About one and a half items a month per active village, most on notice and approved."""
    for day in days:
        w = _active_weight(world, day)
        expected = w.sum() / world.village_weight.sum() * len(world.villages) * 1.5 / 30 * scale
        n = int(rng.poisson(expected)) if expected > 0 else 0
        for village in _village_choice(world, rng, n, day):
            ts = _moment(rng, day)
            ahead = 3 + int(rng.integers(0, 4)) if rng.random() < 0.95 else int(rng.integers(1, 3))
            closes = _working_days_after(day, ahead)
            voters = int(rng.integers(25, 60))
            share = float(rng.beta(12, 1.6))
            approve = round(voters * share)
            item = {
                "id": f"SV{ids()}",
                "event_id": ids(),
                "village_code": village,
                "town_code": world.village_town[village],
                "title": SUPERVISION_TITLES[int(rng.integers(0, len(SUPERVISION_TITLES)))],
                "posted_at": ts,
                "vote_closes": closes,
                "approve": 0,
                "reject": 0,
            }
            vote_ts = day_start(closes) - dt.timedelta(hours=2)
            if not _in(keep, ts):
                continue
            if vote_ts <= now:
                item["approve"], item["reject"] = approve, voters - approve
                rows.add(
                    SupervisionVote,
                    {
                        "id": ids(),
                        "item_id": item["id"],
                        "approve": approve,
                        "reject": voters - approve,
                        "ts": vote_ts,
                    },
                )
            rows.add(SupervisionItem, item)


def _heartbeats(engine: Engine, rows: _Rows, ids: _Ids, now: dt.datetime, keep) -> None:
    """Heartbeats every six hours over the last two days, ending at each caller's last one."""
    with session_scope(engine) as session:
        devices = session.execute(
            select(Device.id, Device.installed_at, Device.last_heartbeat_at, Device.battery)
        ).all()
    horizon = now - dt.timedelta(days=2)
    for device_id, installed, last, battery in devices:
        if last is None:
            continue
        for k in range(8):
            ts = last - dt.timedelta(hours=6 * k)
            if ts < horizon or ts < installed or not _in(keep, ts):
                break
            level = min(100, (battery or 50) + k)
            rows.add(
                DeviceHeartbeat, {"id": ids(), "device_id": device_id, "ts": ts, "battery": level}
            )


# Tables in insert order (parents first) and the column that places each row in time.
_STORE_ORDER: tuple[tuple[type, str], ...] = (
    (Ticket, "created_at"),
    (TicketEvent, "ts"),
    (CallEvent, "ts"),
    (Petition, "filed_at"),
    (Mediation, "closed_at"),
    (PointsTransaction, "ts"),
    (JobPlacement, "placed_at"),
    (PublicWelfareJob, "created_at"),
    (SupervisionItem, "posted_at"),
    (SupervisionVote, "ts"),
    (DeviceHeartbeat, "ts"),
)


def _store(
    engine: Engine,
    rows: _Rows,
    keep: tuple[dt.date, dt.date],
    step: Progress,
    summary: HistorySummary,
) -> None:
    low, high = day_start(keep[0]), day_start(keep[1] + dt.timedelta(days=1))
    with session_scope(engine) as session:
        for model, column in reversed(_STORE_ORDER):
            col = getattr(model, column)
            if model is TicketEvent:
                ticket_ids = select(Ticket.id).where(
                    Ticket.created_at >= low, Ticket.created_at < high
                )
                session.execute(delete(TicketEvent).where(TicketEvent.ticket_id.in_(ticket_ids)))
            elif model is SupervisionVote:
                items = select(SupervisionItem.id).where(
                    SupervisionItem.posted_at >= low, SupervisionItem.posted_at < high
                )
                session.execute(delete(SupervisionVote).where(SupervisionVote.item_id.in_(items)))
            else:
                session.execute(delete(model).where(col >= low, col < high))
        for model, _column in _STORE_ORDER:
            table = model.__table__  # type: ignore[attr-defined]
            batch = rows.tables.get(model, [])
            for chunk in _chunks(batch, BATCH):
                session.execute(table.insert(), chunk)
                step(table.name, len(chunk))
            summary.rows[table.name] = len(batch)


def _chunks(items: list[dict[str, Any]], size: int) -> Iterable[list[dict[str, Any]]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
