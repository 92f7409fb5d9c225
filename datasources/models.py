"""SQLAlchemy 2.x typed models: the data model of the platform.

Times are stored in UTC (``UTCDateTime`` makes them timezone-aware on every backend); days,
weeks and years are cut in Asia/Shanghai by the queries. Area codes are denormalised onto the
fact tables (grid, village and town code) so that area-scoped queries need no joins.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A timestamp stored in UTC and always read back timezone-aware."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: pass a timezone-aware time")
        value = value.astimezone(dt.UTC)
        # SQLite has no time zones: keep naive UTC there so text comparisons stay ordered.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


class Base(DeclarativeBase):
    """Declarative base with a naming convention so migrations name constraints stably."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


CODE = String(16)
ID = String(64)


# --- Geography -------------------------------------------------------------------------------


class Town(Base):
    """A town (镇) or subdistrict (街道)."""

    __tablename__ = "towns"

    code: Mapped[str] = mapped_column(CODE, primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    name_en: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(16))  # subdistrict | town
    geometry: Mapped[dict[str, Any]] = mapped_column(JSON)
    centroid_lon: Mapped[float] = mapped_column(Float)
    centroid_lat: Mapped[float] = mapped_column(Float)


class Village(Base):
    """A village (村) or community (社区)."""

    __tablename__ = "villages"

    code: Mapped[str] = mapped_column(CODE, primary_key=True)
    town_code: Mapped[str] = mapped_column(ForeignKey("towns.code"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    name_en: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(16))  # community | village
    geometry: Mapped[dict[str, Any]] = mapped_column(JSON)
    centroid_lon: Mapped[float] = mapped_column(Float)
    centroid_lat: Mapped[float] = mapped_column(Float)
    elderly_share: Mapped[float] = mapped_column(Float, default=0.18)


class Grid(Base):
    """A base grid (基础网格), the unit every event is located in."""

    __tablename__ = "grids"

    code: Mapped[str] = mapped_column(CODE, primary_key=True)
    village_code: Mapped[str] = mapped_column(ForeignKey("villages.code"), index=True)
    town_code: Mapped[str] = mapped_column(ForeignKey("towns.code"), index=True)
    name: Mapped[str] = mapped_column(String(96))
    name_en: Mapped[str] = mapped_column(String(160))
    geometry: Mapped[dict[str, Any]] = mapped_column(JSON)
    centroid_lon: Mapped[float] = mapped_column(Float)
    centroid_lat: Mapped[float] = mapped_column(Float)
    households: Mapped[int] = mapped_column(Integer, default=0)
    residents: Mapped[int] = mapped_column(Integer, default=0)


# --- People and devices ----------------------------------------------------------------------


class Staff(Base):
    """A grid leader, grid worker, grid assistant or village party secretary."""

    __tablename__ = "staff"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    name: Mapped[str] = mapped_column(String(32))
    role: Mapped[str] = mapped_column(String(24))  # grid_leader|grid_worker|assistant|secretary
    phone: Mapped[str] = mapped_column(String(20))
    grid_code: Mapped[str | None] = mapped_column(ForeignKey("grids.code"), index=True)
    village_code: Mapped[str] = mapped_column(ForeignKey("villages.code"), index=True)
    town_code: Mapped[str] = mapped_column(ForeignKey("towns.code"), index=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Household(Base):
    """A registered household; residents sum to the census population."""

    __tablename__ = "households"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    grid_code: Mapped[str] = mapped_column(ForeignKey("grids.code"), index=True)
    village_code: Mapped[str] = mapped_column(CODE, index=True)
    town_code: Mapped[str] = mapped_column(CODE, index=True)
    head_name: Mapped[str] = mapped_column(String(32))
    phone: Mapped[str] = mapped_column(String(20))
    residents: Mapped[int] = mapped_column(Integer)
    elderly: Mapped[int] = mapped_column(Integer, default=0)  # residents aged 60+


class Device(Base):
    """A one-key caller (一键呼叫器) installed in an elderly household."""

    __tablename__ = "devices"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    household_id: Mapped[str] = mapped_column(ForeignKey("households.id"), index=True)
    grid_code: Mapped[str] = mapped_column(ForeignKey("grids.code"), index=True)
    village_code: Mapped[str] = mapped_column(CODE, index=True)
    town_code: Mapped[str] = mapped_column(CODE, index=True)
    installed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    last_heartbeat_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    battery: Mapped[int | None] = mapped_column(Integer)
    online: Mapped[bool] = mapped_column(Boolean, default=True)


# --- Events and facts ------------------------------------------------------------------------
# Every fact table that an event kind writes has the producer's event id as its primary key
# (or a unique event_id): storing an event is idempotent per table, with no separate ledger.


class CallEvent(Base):
    """A key press on a one-key caller."""

    __tablename__ = "call_events"
    __table_args__ = (Index("ix_call_events_town_ts", "town_code", "ts"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id"), index=True)
    grid_code: Mapped[str] = mapped_column(CODE, index=True)
    village_code: Mapped[str] = mapped_column(CODE, index=True)
    town_code: Mapped[str] = mapped_column(CODE)
    key: Mapped[str] = mapped_column(String(16))  # call | hangup | satisfied | unsatisfied
    ts: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
    # For green-key calls: when a ticket was created for it or the secretary called back.
    answered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    ticket_id: Mapped[str | None] = mapped_column(ID)


class Ticket(Base):
    """A request (诉求) handled in the closed loop, with the time of every stage."""

    __tablename__ = "tickets"
    __table_args__ = (
        Index("ix_tickets_town_created", "town_code", "created_at"),
        Index("ix_tickets_village_created", "village_code", "created_at"),
        Index("ix_tickets_status", "status"),
    )

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    event_id: Mapped[str] = mapped_column(ID, unique=True)
    grid_code: Mapped[str] = mapped_column(ForeignKey("grids.code"), index=True)
    village_code: Mapped[str] = mapped_column(CODE)
    town_code: Mapped[str] = mapped_column(CODE)
    source: Mapped[str] = mapped_column(String(16))  # caller|app|hotline|walk_in|supervision
    category: Mapped[str] = mapped_column(String(24))
    priority: Mapped[str] = mapped_column(String(8))  # normal | urgent
    petition: Mapped[bool] = mapped_column(Boolean, default=False)
    title: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
    dispatched_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    arrived_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    resolved_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    rated_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    assignee_id: Mapped[str | None] = mapped_column(ID)
    rating: Mapped[str | None] = mapped_column(String(16))  # satisfied | unsatisfied
    resolution_level: Mapped[str | None] = mapped_column(String(16))  # grid|village|town|district
    escalation_level: Mapped[str | None] = mapped_column(String(16))  # village|town|district
    reopened_count: Mapped[int] = mapped_column(Integer, default=0)
    call_id: Mapped[str | None] = mapped_column(ID)


class TicketEvent(Base):
    """The append-only log of everything that happened to a ticket."""

    __tablename__ = "ticket_events"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    ticket_id: Mapped[str] = mapped_column(ForeignKey("tickets.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    ts: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Petition(Base):
    """A petition batch (信访) at some level, with the number of persons in it."""

    __tablename__ = "petitions"
    __table_args__ = (Index("ix_petitions_level_filed", "level", "filed_at"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    village_code: Mapped[str] = mapped_column(ForeignKey("villages.code"), index=True)
    town_code: Mapped[str] = mapped_column(CODE, index=True)
    level: Mapped[str] = mapped_column(String(16))  # district | city | province | national
    persons: Mapped[int] = mapped_column(Integer)
    repeat: Mapped[bool] = mapped_column(Boolean, default=False)
    filed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)


class Mediation(Base):
    """A dispute mediated by one of the party mediation teams."""

    __tablename__ = "mediations"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    village_code: Mapped[str] = mapped_column(ForeignKey("villages.code"), index=True)
    town_code: Mapped[str] = mapped_column(CODE, index=True)
    team: Mapped[str] = mapped_column(String(64))
    outcome: Mapped[str] = mapped_column(String(16))  # settled | referred
    closed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)


class PointsTransaction(Base):
    """Points earned or redeemed at the village 新风超市 (1 point = 1 yuan)."""

    __tablename__ = "points_transactions"
    __table_args__ = (Index("ix_points_transactions_village_ts", "village_code", "ts"),)

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    village_code: Mapped[str] = mapped_column(ForeignKey("villages.code"))
    town_code: Mapped[str] = mapped_column(CODE, index=True)
    grid_code: Mapped[str | None] = mapped_column(CODE, index=True)  # the household's grid
    household_id: Mapped[str] = mapped_column(ID, index=True)
    kind: Mapped[str] = mapped_column(String(8))  # earned | redeemed
    points: Mapped[int] = mapped_column(Integer)
    detail: Mapped[str] = mapped_column(String(128))  # the activity or the item
    ts: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)


class JobPlacement(Base):
    """A person placed in a job: public-welfare post, doorstep (家门口) or urban."""

    __tablename__ = "job_placements"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    village_code: Mapped[str] = mapped_column(ForeignKey("villages.code"), index=True)
    town_code: Mapped[str] = mapped_column(CODE, index=True)
    person: Mapped[str] = mapped_column(ID)  # opaque id, never a name or ID-card number
    job_kind: Mapped[str] = mapped_column(String(16))  # public_welfare | doorstep | urban
    employer: Mapped[str] = mapped_column(String(128))
    hourly_wage: Mapped[float] = mapped_column(Float)
    placed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)


class PublicWelfareJob(Base):
    """A public-welfare post (公益性岗位) created in a village; filled when someone takes it."""

    __tablename__ = "public_welfare_jobs"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    village_code: Mapped[str] = mapped_column(ForeignKey("villages.code"), index=True)
    town_code: Mapped[str] = mapped_column(CODE, index=True)
    title: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
    filled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    placement_id: Mapped[str | None] = mapped_column(ID)


class SupervisionItem(Base):
    """A micro-power supervision item (监督一点通) posted for a vote."""

    __tablename__ = "supervision_items"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    event_id: Mapped[str] = mapped_column(ID, unique=True)
    village_code: Mapped[str] = mapped_column(ForeignKey("villages.code"), index=True)
    town_code: Mapped[str] = mapped_column(CODE, index=True)
    title: Mapped[str] = mapped_column(String(200))
    posted_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
    vote_closes: Mapped[dt.date] = mapped_column(Date)
    approve: Mapped[int] = mapped_column(Integer, default=0)
    reject: Mapped[int] = mapped_column(Integer, default=0)


class SupervisionVote(Base):
    """A tally of votes reported for a supervision item (latest tally wins)."""

    __tablename__ = "supervision_votes"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    item_id: Mapped[str] = mapped_column(ForeignKey("supervision_items.id"), index=True)
    approve: Mapped[int] = mapped_column(Integer)
    reject: Mapped[int] = mapped_column(Integer)
    ts: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class DeviceHeartbeat(Base):
    """A heartbeat from a one-key caller, with its battery level."""

    __tablename__ = "device_heartbeats"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    device_id: Mapped[str] = mapped_column(ForeignKey("devices.id"), index=True)
    ts: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
    battery: Mapped[int] = mapped_column(Integer)


# --- Users and audit -------------------------------------------------------------------------


class User(Base):
    """A login: district (everything), town or village (their area only)."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(64), default="")
    password_hash: Mapped[str] = mapped_column(String(256))
    role: Mapped[str] = mapped_column(String(16))  # district | town | village
    area_code: Mapped[str | None] = mapped_column(CODE)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    last_login_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class AuditLog(Base):
    """Who did what, when, from where, in which area."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    ts: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
    username: Mapped[str | None] = mapped_column(String(64), index=True)
    action: Mapped[str] = mapped_column(String(32))
    address: Mapped[str | None] = mapped_column(String(64))
    area_code: Mapped[str | None] = mapped_column(CODE)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


# --- Daily rollups ---------------------------------------------------------------------------


class GridDailyRollup(Base):
    """Ticket and call figures per grid and Asia/Shanghai day, rebuilt from the raw rows.

    Ticket figures are keyed by the day the ticket was created (the headline definitions count
    tickets created in the period), so a later closure updates the creation day's row.
    """

    __tablename__ = "rollup_grid_daily"
    __table_args__ = (
        Index("ix_rollup_grid_daily_town_day", "town_code", "day"),
        Index("ix_rollup_grid_daily_village_day", "village_code", "day"),
    )

    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    grid_code: Mapped[str] = mapped_column(CODE, primary_key=True)
    village_code: Mapped[str] = mapped_column(CODE)
    town_code: Mapped[str] = mapped_column(CODE)
    requests: Mapped[int] = mapped_column(Integer, default=0)
    closed: Mapped[int] = mapped_column(Integer, default=0)
    closed_on_time: Mapped[int] = mapped_column(Integer, default=0)
    rated: Mapped[int] = mapped_column(Integer, default=0)
    satisfied: Mapped[int] = mapped_column(Integer, default=0)
    resolved_grid: Mapped[int] = mapped_column(Integer, default=0)
    resolved_village: Mapped[int] = mapped_column(Integer, default=0)
    resolved_town: Mapped[int] = mapped_column(Integer, default=0)
    resolved_district: Mapped[int] = mapped_column(Integer, default=0)
    calls: Mapped[int] = mapped_column(Integer, default=0)
    calls_answered: Mapped[int] = mapped_column(Integer, default=0)
    thumbs_up: Mapped[int] = mapped_column(Integer, default=0)
    thumbs_down: Mapped[int] = mapped_column(Integer, default=0)


class VillageDailyRollup(Base):
    """Village-level figures per Asia/Shanghai day: petitions, mediations, points, jobs."""

    __tablename__ = "rollup_village_daily"
    __table_args__ = (Index("ix_rollup_village_daily_town_day", "town_code", "day"),)

    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    village_code: Mapped[str] = mapped_column(CODE, primary_key=True)
    town_code: Mapped[str] = mapped_column(CODE)
    petition_batches_district: Mapped[int] = mapped_column(Integer, default=0)
    petition_persons_district: Mapped[int] = mapped_column(Integer, default=0)
    petition_batches_city: Mapped[int] = mapped_column(Integer, default=0)
    petition_persons_city: Mapped[int] = mapped_column(Integer, default=0)
    petition_batches_province: Mapped[int] = mapped_column(Integer, default=0)
    petition_persons_province: Mapped[int] = mapped_column(Integer, default=0)
    petition_batches_national: Mapped[int] = mapped_column(Integer, default=0)
    petition_persons_national: Mapped[int] = mapped_column(Integer, default=0)
    petition_repeat: Mapped[int] = mapped_column(Integer, default=0)
    mediations: Mapped[int] = mapped_column(Integer, default=0)
    points_earned: Mapped[int] = mapped_column(BigInteger, default=0)
    points_redeemed: Mapped[int] = mapped_column(BigInteger, default=0)
    placements_public_welfare: Mapped[int] = mapped_column(Integer, default=0)
    placements_doorstep: Mapped[int] = mapped_column(Integer, default=0)
    placements_urban: Mapped[int] = mapped_column(Integer, default=0)
    welfare_posts_created: Mapped[int] = mapped_column(Integer, default=0)
    supervision_posted: Mapped[int] = mapped_column(Integer, default=0)
    supervision_on_notice: Mapped[int] = mapped_column(Integer, default=0)
    supervision_approved: Mapped[int] = mapped_column(Integer, default=0)


__all__ = [
    "AuditLog",
    "Base",
    "CallEvent",
    "Device",
    "DeviceHeartbeat",
    "Grid",
    "GridDailyRollup",
    "Household",
    "JobPlacement",
    "Mediation",
    "Petition",
    "PointsTransaction",
    "PublicWelfareJob",
    "Staff",
    "SupervisionItem",
    "SupervisionVote",
    "Ticket",
    "TicketEvent",
    "Town",
    "User",
    "Village",
]


# --- Live pipeline: worker outbox and call-backs -------------------------------------------


class LiveOutbox(Base):
    """Live-state deltas of one stored batch, written in the batch's SQL transaction.

    The worker applies a row to Redis once (guarded by ``applied:<id>``) and then deletes it; a
    row left behind by a crash between the commit and the Redis update is applied on restart.
    """

    __tablename__ = "live_outbox"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
    payload: Mapped[str] = mapped_column(Text)


class CallReturn(Base):
    """A village secretary called a resident back after a green-key call (``call.returned``)."""

    __tablename__ = "call_returns"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    call_id: Mapped[str] = mapped_column(ID, index=True)
    device_id: Mapped[str] = mapped_column(ID, index=True)
    staff_id: Mapped[str] = mapped_column(ID)
    grid_code: Mapped[str] = mapped_column(CODE, index=True)
    village_code: Mapped[str] = mapped_column(CODE)
    town_code: Mapped[str] = mapped_column(CODE)
    ts: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)


__all__ += ["CallReturn", "LiveOutbox"]


# --- Kiosk tokens: unattended wall screens -------------------------------------------------


class KioskToken(Base):
    """A named, revocable token that lets one wall screen show ``/wall`` without a login.

    Only the SHA-256 of the token is stored; the token itself is printed once when issued.
    ``level`` and ``area_code`` are the area the screen shows (district: no code).
    """

    __tablename__ = "kiosk_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    level: Mapped[str] = mapped_column(String(16))  # district | town | village
    area_code: Mapped[str | None] = mapped_column(CODE)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    revoked_by: Mapped[str | None] = mapped_column(String(64))
    last_seen_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


__all__ += ["KioskToken"]


class VillageNotice(Base):
    """A notice a village posted on its notice board (``notice.posted``)."""

    __tablename__ = "village_notices"

    id: Mapped[str] = mapped_column(ID, primary_key=True)  # the event id
    notice_id: Mapped[str] = mapped_column(ID, index=True)
    village_code: Mapped[str] = mapped_column(ForeignKey("villages.code"), index=True)
    town_code: Mapped[str] = mapped_column(CODE, index=True)
    title: Mapped[str] = mapped_column(String(200))
    posted_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)


__all__ += ["VillageNotice"]
