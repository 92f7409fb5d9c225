"""A live simulator: realistic event sequences published through the producer path.

Calls come from stored devices (more from villages with more elderly residents); a green-key
call is answered within 1-4 minutes by a ticket or a call-back; tickets move through
dispatched → arrived → resolved → rated → closed with delays scaled by ``speed``; heartbeats,
points, mediations, jobs, supervision posts and votes and (rarely) petitions and village
notices are mixed in. A simple kind's story (``datasources.simple_kinds``) is generic: one
event whose fields its declared samplers draw, started at its declared share.
"""

from __future__ import annotations

import datetime as dt
import heapq
import itertools
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from redis import Redis
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from datasources.eventbase import SimpleKind
from datasources.events import CATEGORIES
from datasources.models import Device, Household, Staff, Village
from datasources.simple_kinds import SIMPLE_KINDS
from datasources.stream import publish

SHANGHAI = dt.timezone(dt.timedelta(hours=8))
_LEVELS = (("grid", 0.70), ("village", 0.24), ("town", 0.05), ("district", 0.01))
_TITLES = {
    "dispute": "邻里宅基地纠纷",
    "livelihood": "自来水压力不足",
    "environment": "垃圾清运不及时",
    "infrastructure": "路灯损坏",
    "employment": "咨询就业岗位",
    "policy": "咨询医保缴费",
    "elderly_care": "独居老人需要帮助",
    "safety": "电线老化隐患",
    "supervision": "村务公开疑问",
    "other": "其他诉求",
}


@dataclass
class _World:
    """What the simulator picks from: devices weighted by elderly share, staff, households."""

    devices: list[tuple[str, str, str]]  # device, grid, village
    weights: list[float]
    staff_by_grid: dict[str, list[str]]
    secretary: dict[str, str]
    villages: list[str]
    households: dict[str, list[str]]


def load_world(engine: Engine) -> _World:
    """Read devices, staff and households from SQL."""
    with Session(engine) as session:
        share = dict(session.execute(select(Village.code, Village.elderly_share)).all())
        devices = [
            (d, g, v)
            for d, g, v in session.execute(
                select(Device.id, Device.grid_code, Device.village_code).order_by(Device.id)
            )
        ]
        staff_by_grid: dict[str, list[str]] = {}
        secretary: dict[str, str] = {}
        for sid, role, grid, village in session.execute(
            select(Staff.id, Staff.role, Staff.grid_code, Staff.village_code)
        ):
            if role == "secretary":
                secretary[village] = sid
            elif grid:
                staff_by_grid.setdefault(grid, []).append(sid)
        households: dict[str, list[str]] = {}
        for hid, village in session.execute(select(Household.id, Household.village_code)):
            households.setdefault(village, []).append(hid)
    if not devices:
        raise LookupError("no devices are stored: run `wushi seed --demo` first")
    return _World(
        devices=devices,
        weights=[share.get(v, 0.18) for _, _, v in devices],
        staff_by_grid=staff_by_grid,
        secretary=secretary,
        villages=sorted(households),
        households=households,
    )


@dataclass(order=True)
class _Due:
    at: float
    seq: int
    action: Callable[[], dict[str, Any] | None] = field(compare=False)


class Simulator:
    """Produce events at ``rate`` per second (wall clock); story delays shrink by ``speed``."""

    def __init__(self, world: _World, *, speed: float = 1.0, seed: int | None = None) -> None:
        self.world = world
        self.speed = speed
        self.rng = random.Random(seed)
        self.queue: list[_Due] = []
        self.seq = itertools.count()
        self.items: list[tuple[str, str, int, int]] = []  # item, village, approve, reject

    def _event(self, kind: str, **fields: Any) -> dict[str, Any]:
        ts = dt.datetime.now(SHANGHAI)
        return {"v": 1, "id": uuid.uuid4().hex, "kind": kind, "ts": ts.isoformat(), **fields}

    def _later(self, minutes: float, action: Callable[[], dict[str, Any] | None]) -> None:
        at = time.monotonic() + minutes * 60 / self.speed
        heapq.heappush(self.queue, _Due(at, next(self.seq), action))

    def _device(self) -> tuple[str, str, str]:
        return self.rng.choices(self.world.devices, weights=self.world.weights)[0]

    def _staff(self, grid: str) -> str:
        return self.rng.choice(self.world.staff_by_grid.get(grid) or ["S-unknown"])

    def _ticket_story(self, grid: str, source: str, ts_minutes: float = 0.0) -> dict[str, Any]:
        day = dt.datetime.now(SHANGHAI).strftime("%Y%m%d")
        tid = f"T{day}{uuid.uuid4().hex[:10].upper()}"
        category = self.rng.choice(CATEGORIES)
        urgent = category in ("safety", "elderly_care") and self.rng.random() < 0.3
        staff = self._staff(grid)
        t = 0.0

        def stage(kind: str, **extra: Any) -> Callable[[], dict[str, Any]]:
            return lambda: self._event(kind, grid=grid, ticket=tid, **extra)

        t += self.rng.uniform(2, 15)
        self._later(t, stage("ticket.dispatched", assignee=staff))
        t += self.rng.uniform(10, 60) if not urgent else self.rng.uniform(5, 25)
        self._later(t, stage("ticket.arrived", assignee=staff))
        if self.rng.random() < 0.03:
            self._later(t + 5, stage("ticket.escalated", to="village", reason="needs_village"))
        t += self.rng.uniform(20, 240)
        level = self.rng.choices([lv for lv, _ in _LEVELS], weights=[w for _, w in _LEVELS])[0]
        self._later(t, stage("ticket.resolved", level=level))
        t += self.rng.uniform(5, 60)
        rating = "satisfied" if self.rng.random() < 0.98 else "unsatisfied"
        self._later(t, stage("ticket.rated", rating=rating))
        t += self.rng.uniform(1, 30)
        self._later(t, stage("ticket.closed"))
        if rating == "unsatisfied" and self.rng.random() < 0.5:
            self._later(t + self.rng.uniform(10, 120), stage("ticket.reopened", reason="复查"))
        return self._event(
            "ticket.created",
            grid=grid,
            ticket=tid,
            category=category,
            source=source,
            priority="urgent" if urgent else "normal",
            petition=category == "dispute" and self.rng.random() < 0.1,
            title=_TITLES[category],
        )

    def heartbeat(self) -> dict[str, Any]:
        """A caller's heartbeat; about 4% report a low battery."""
        device, grid, _ = self.rng.choice(self.world.devices)
        battery = self.rng.randint(5, 19) if self.rng.random() < 0.04 else self.rng.randint(35, 100)
        return self._event("device.heartbeat", grid=grid, device=device, battery=battery)

    def _key_press(self, key: str) -> dict[str, Any]:
        """A key press; a green-key call is answered by a ticket (70%) or a call-back."""
        device, grid, village = self._device()
        call = self._event("call.key", grid=grid, device=device, key=key)
        if key == "call":
            delay = self.rng.uniform(1, 4)
            if self.rng.random() < 0.7:
                self._later(delay, lambda: self._ticket_story(grid, "caller"))
            else:
                secretary = self.world.secretary.get(village) or self._staff(grid)
                self._later(
                    delay,
                    lambda: self._event(
                        "call.returned", grid=grid, device=device, call=call["id"], staff=secretary
                    ),
                )
        return call

    def green_call(self) -> dict[str, Any]:
        """A green-key call and the ticket or call-back that answers it."""
        return self._key_press("call")

    def thumbs(self) -> dict[str, Any]:
        """A satisfied (98%) or unsatisfied key press."""
        return self._key_press("satisfied" if self.rng.random() < 0.98 else "unsatisfied")

    def hangup(self) -> dict[str, Any]:
        """A red-key press."""
        return self._key_press("hangup")

    def app_ticket(self) -> dict[str, Any]:
        """A ticket from the app, the hotline or a walk-in, and its stages."""
        _, grid, _ = self.rng.choice(self.world.devices)
        return self._ticket_story(grid, self.rng.choice(("app", "hotline", "walk_in")))

    def _village(self) -> str:
        return self.rng.choice(self.world.villages)

    def points_earned(self) -> dict[str, Any]:
        village = self._village()
        return self._event(
            "points.earned",
            village=village,
            household=self.rng.choice(self.world.households[village]),
            points=self.rng.choice((2, 5, 10, 20)),
            activity=self.rng.choice(("环境整治", "志愿服务", "孝老爱亲", "移风易俗")),
        )

    def points_redeemed(self) -> dict[str, Any]:
        village = self._village()
        return self._event(
            "points.redeemed",
            village=village,
            household=self.rng.choice(self.world.households[village]),
            points=self.rng.choice((5, 10, 30, 50)),
            item=self.rng.choice(("食用油", "洗衣液", "大米", "毛巾")),
        )

    def job(self) -> dict[str, Any]:
        kind = self.rng.choices(("public_welfare", "doorstep", "urban"), (0.2, 0.5, 0.3))[0]
        return self._event(
            "job.placed",
            village=self._village(),
            person="P" + uuid.uuid4().hex[:12],
            job_kind=kind,
            employer=self.rng.choice(("叶集木业", "家门口就业车间", "六安某物流")),
            hourly_wage=round(self.rng.uniform(12, 30), 1),
        )

    def supervision(self) -> dict[str, Any]:
        """A supervision item posted for a vote, and its tally 30 minutes to 4 hours later."""
        village = self._village()
        item = "SV" + uuid.uuid4().hex[:12]
        closes = dt.date.today() + dt.timedelta(days=self.rng.choice((5, 7, 10)))
        voters = self.rng.randint(20, 80)
        approve = sum(self.rng.random() < 0.9 for _ in range(voters))
        self._later(
            self.rng.uniform(30, 240),
            lambda: self._event(
                "supervision.voted",
                village=village,
                item=item,
                approve=approve,
                reject=voters - approve,
            ),
        )
        return self._event(
            "supervision.posted",
            village=village,
            item=item,
            title="村集体资金使用公示",
            vote_closes=closes.isoformat(),
        )

    def petition(self) -> dict[str, Any]:
        return self._event(
            "petition.filed",
            village=self._village(),
            level=self.rng.choices(("district", "city", "province", "national"), (6, 3, 1, 0.2))[0],
            persons=self.rng.choices((1, 2, 3, 5), (6, 2, 1, 0.5))[0],
            repeat=self.rng.random() < 0.1,
        )

    def sample(self, simple: SimpleKind) -> dict[str, Any]:
        """One event of a simple kind: a random village and the fields its samplers draw."""
        village = self._village()
        fields = {name: draw(self.rng) for name, draw in simple.sample.items()}
        return self._event(simple.kind, village=village, **fields)

    def start_story(self) -> dict[str, Any]:
        """Begin one new story and return its first event."""
        story = self.rng.choices([s for s, _ in _STARTS], weights=[p for _, p in _STARTS])[0]
        return story(self)

    def next_events(self, n: int) -> list[dict[str, Any]]:
        """Return ``n`` events: due follow-ups first, then new stories."""
        out: list[dict[str, Any]] = []
        now = time.monotonic()
        while self.queue and self.queue[0].at <= now and len(out) < n:
            event = heapq.heappop(self.queue).action()
            if event is not None:
                out.append(event)
        while len(out) < n:
            out.append(self.start_story())
        return out


Story = Callable[[Simulator], dict[str, Any]]


def _sampled(simple: SimpleKind) -> Story:
    """The story of a simple kind: one event drawn by ``Simulator.sample``."""

    def story(sim: Simulator) -> dict[str, Any]:
        return sim.sample(simple)

    # Named after the method it runs, so reprs and tracebacks say which kind's story it is.
    story.__qualname__ = f"Simulator.sample[{simple.kind}]"
    return story


# The story of each simple kind (``datasources.simple_kinds``), by kind.
SAMPLED: dict[str, Story] = {simple.kind: _sampled(simple) for simple in SIMPLE_KINDS}

# Share of new stories started per kind of story (a green call starts a whole ticket story).
_STARTS: tuple[tuple[Story, float], ...] = (
    (Simulator.heartbeat, 0.40),
    (Simulator.green_call, 0.12),
    (Simulator.thumbs, 0.06),
    (Simulator.hangup, 0.03),
    (Simulator.app_ticket, 0.06),
    (Simulator.points_earned, 0.13),
    (Simulator.points_redeemed, 0.08),
    (Simulator.job, 0.04),
    (Simulator.supervision, 0.02),
    (Simulator.petition, 0.005),
    *((SAMPLED[simple.kind], simple.share) for simple in SIMPLE_KINDS),
)


def run_simulation(
    engine: Engine,
    redis: Redis,
    stream_key: str,
    *,
    rate: float,
    speed: float = 1.0,
    duration: float | None = None,
    maxlen: int = 2_000_000,
    seed: int | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> int:
    """Publish events at ``rate`` per second until ``duration`` seconds pass; return the count."""
    sim = Simulator(load_world(engine), speed=speed, seed=seed)
    started = time.monotonic()
    sent = 0
    tick = 0.1 if rate >= 10 else 1.0 / max(rate, 0.01)
    while not should_stop():
        elapsed = time.monotonic() - started
        if duration is not None and elapsed >= duration:
            break
        due = int(rate * elapsed) + 1 - sent
        if due > 0:
            publish(redis, stream_key, sim.next_events(min(due, 5000)), maxlen)
            sent += min(due, 5000)
        time.sleep(tick)
    return sent
