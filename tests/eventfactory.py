"""Build valid events of every kind against a seeded database (shared by the pipeline tests)."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from dashboard.settings import Settings
from datasources.models import Device, Household, Staff, Village

SHANGHAI = dt.timezone(dt.timedelta(hours=8))


def new_id() -> str:
    return uuid.uuid4().hex


@dataclass
class Factory:
    """Known ids of a seeded database and builders of events referring to them."""

    district: str
    device: str
    grid: str
    village: str
    household: str
    staff: str
    villages: list[str]
    households: dict[str, str]  # village -> a household of it

    @classmethod
    def from_engine(cls, engine: Engine, district: str) -> Factory:
        with Session(engine) as session:
            device = session.execute(
                select(Device.id, Device.grid_code, Device.village_code).order_by(Device.id)
            ).first()
            assert device is not None, "the database holds no devices: seed it first"
            household = session.scalar(
                select(Household.id).where(Household.village_code == device.village_code)
            )
            staff = session.scalar(select(Staff.id).where(Staff.grid_code == device.grid_code))
            villages = list(session.scalars(select(Village.code).order_by(Village.code)))
            households = {}
            for hid, vcode in session.execute(
                select(Household.id, Household.village_code).order_by(Household.id)
            ):
                households.setdefault(vcode, hid)
        return cls(
            district=district,
            device=device.id,
            grid=device.grid_code,
            village=device.village_code,
            household=household,
            staff=staff,
            villages=villages,
            households=households,
        )

    def base(self, kind: str, ts: dt.datetime | None = None, **fields: Any) -> dict[str, Any]:
        ts = ts or dt.datetime.now(SHANGHAI) - dt.timedelta(seconds=30)
        return {"v": 1, "id": new_id(), "kind": kind, "ts": ts.isoformat(), **fields}

    def call(self, key: str = "call", ts=None) -> dict[str, Any]:
        return self.base("call.key", ts, grid=self.grid, device=self.device, key=key)

    def call_returned(self, call_id: str, ts=None) -> dict[str, Any]:
        return self.base(
            "call.returned", ts, grid=self.grid, device=self.device, call=call_id, staff=self.staff
        )

    def heartbeat(self, battery: int = 80, ts=None) -> dict[str, Any]:
        return self.base(
            "device.heartbeat", ts, grid=self.grid, device=self.device, battery=battery
        )

    def ticket(self, ticket: str | None = None, source: str = "app", ts=None, **kw) -> dict:
        fields = {
            "grid": self.grid,
            "ticket": ticket or "T" + new_id()[:12],
            "category": "livelihood",
            "source": source,
            "priority": "normal",
            "petition": False,
            "title": "路灯不亮",
        } | kw
        return self.base("ticket.created", ts, **fields)

    def stage(self, kind: str, ticket: str, ts=None, **kw: Any) -> dict[str, Any]:
        extra: dict[str, Any] = {
            "ticket.dispatched": {"assignee": self.staff},
            "ticket.arrived": {"assignee": self.staff},
            "ticket.resolved": {"level": "grid"},
            "ticket.rated": {"rating": "satisfied"},
            "ticket.closed": {},
            "ticket.escalated": {"to": "town", "reason": "complex"},
            "ticket.reopened": {"reason": "not fixed"},
        }[kind]
        return self.base(kind, ts, grid=self.grid, ticket=ticket, **(extra | kw))

    def petition(self, village: str | None = None, ts=None, **kw: Any) -> dict[str, Any]:
        fields = {"village": village or self.village, "level": "district", "persons": 3}
        return self.base("petition.filed", ts, **(fields | {"repeat": False} | kw))

    def mediation(self, ts=None) -> dict[str, Any]:
        return self.base(
            "mediation.closed", ts, village=self.village, team="老娘舅调解队", outcome="settled"
        )

    def points(self, kind: str = "earned", village: str | None = None, ts=None) -> dict:
        village = village or self.village
        household = self.households[village]
        detail = {"activity": "环境整治"} if kind == "earned" else {"item": "食用油"}
        return self.base(
            f"points.{kind}", ts, village=village, household=household, points=5, **detail
        )

    def job(self, job_kind: str = "doorstep", ts=None) -> dict[str, Any]:
        return self.base(
            "job.placed",
            ts,
            village=self.village,
            person="P" + new_id()[:10],
            job_kind=job_kind,
            employer="叶集木业",
            hourly_wage=18.5,
        )

    def supervision_posted(self, item: str, ts=None) -> dict[str, Any]:
        closes = (dt.date.today() + dt.timedelta(days=7)).isoformat()
        return self.base(
            "supervision.posted",
            ts,
            village=self.village,
            item=item,
            title="村道硬化工程公示",
            vote_closes=closes,
        )

    def supervision_voted(self, item: str, approve: int, reject: int, ts=None) -> dict:
        return self.base(
            "supervision.voted", ts, village=self.village, item=item, approve=approve, reject=reject
        )

    def notice(self, title: str = "秋季防火安全提示", ts=None) -> dict[str, Any]:
        return self.base("notice.posted", ts, village=self.village, notice=new_id(), title=title)


def make_settings(tmp_path, district: str, database_url: str, redis_url: str, **kw) -> Settings:
    """Settings for a pipeline test."""
    return Settings(
        var_dir=tmp_path / "var",
        database_url=database_url,
        redis_url=redis_url,
        district_code=district,
        ingest_token="test-token-" + "x" * 30,
        **({"worker_block_ms": 100} | kw),
    )
