"""The event schema of docs/contract.md §1: pydantic models, validation and referential checks.

Validation has two steps. ``parse_event`` checks one raw JSON value against the schema (types,
ranges, the timestamp window); ``Registry.check`` then checks its references (grid, village,
device, household, staff) against the stored registry. Both return reasons of the form
``"field: reason"`` so that a dead letter or an HTTP 422 says what is wrong.

The models of the complex kinds are here; those of the simple kinds are in
``datasources.simple_kinds``, and the ``Event`` union takes both (its field types and base
classes are in ``datasources.eventbase``).
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeAlias, Union

from pydantic import (
    BaseModel,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
)
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from datasources.eventbase import (
    EventModel,
    GridEvent,
    Id,
    Reason,
    Text,
    VillageEvent,
    model_kind,
)
from datasources.models import Device, Grid, Household, Staff, Village
from datasources.simple_kinds import SIMPLE_KINDS

CATEGORIES = (
    "dispute",
    "livelihood",
    "environment",
    "infrastructure",
    "employment",
    "policy",
    "elderly_care",
    "safety",
    "supervision",
    "other",
)
Category = Literal[
    "dispute",
    "livelihood",
    "environment",
    "infrastructure",
    "employment",
    "policy",
    "elderly_care",
    "safety",
    "supervision",
    "other",
]
Level = Literal["grid", "village", "town", "district"]
ESCALATION_LEVELS = ("village", "town", "district")


class CallKey(GridEvent):
    """A key pressed on a one-key caller."""

    kind: Literal["call.key"]
    device: Id
    key: Literal["call", "hangup", "satisfied", "unsatisfied"]


class CallReturned(GridEvent):
    """The village secretary called a resident back after a green-key call (extension)."""

    kind: Literal["call.returned"]
    device: Id
    call: Id
    staff: Id


class DeviceHeartbeat(GridEvent):
    """A one-key caller reports it is alive, with its battery level."""

    kind: Literal["device.heartbeat"]
    device: Id
    battery: Annotated[int, Field(ge=0, le=100)]


class TicketCreated(GridEvent):
    """A request enters the closed loop."""

    kind: Literal["ticket.created"]
    ticket: Id
    category: Category
    source: Literal["caller", "app", "hotline", "walk_in", "supervision"]
    priority: Literal["normal", "urgent"]
    petition: bool
    title: Annotated[str, StringConstraints(min_length=1, max_length=200)]


class TicketDispatched(GridEvent):
    """A ticket is given to a member of staff."""

    kind: Literal["ticket.dispatched"]
    ticket: Id
    assignee: Id


class TicketArrived(GridEvent):
    """The assignee arrived on site."""

    kind: Literal["ticket.arrived"]
    ticket: Id
    assignee: Id


class TicketResolved(GridEvent):
    """The request was settled at some level."""

    kind: Literal["ticket.resolved"]
    ticket: Id
    level: Level


class TicketRated(GridEvent):
    """The resident rated the handling."""

    kind: Literal["ticket.rated"]
    ticket: Id
    rating: Literal["satisfied", "unsatisfied"]


class TicketClosed(GridEvent):
    """The ticket is closed."""

    kind: Literal["ticket.closed"]
    ticket: Id


class TicketEscalated(GridEvent):
    """The ticket was escalated to a higher level."""

    kind: Literal["ticket.escalated"]
    ticket: Id
    to: Literal["village", "town", "district"]
    reason: Reason


class TicketReopened(GridEvent):
    """A closed or resolved ticket was reopened."""

    kind: Literal["ticket.reopened"]
    ticket: Id
    reason: Reason


class PetitionFiled(VillageEvent):
    """A petition batch was filed at some level."""

    kind: Literal["petition.filed"]
    level: Literal["district", "city", "province", "national"]
    persons: Annotated[int, Field(ge=1, le=100_000)]
    repeat: bool


class PointsEarned(VillageEvent):
    """A household earned points."""

    kind: Literal["points.earned"]
    household: Id
    points: Annotated[int, Field(gt=0, le=1_000_000)]
    activity: Text


class PointsRedeemed(VillageEvent):
    """A household redeemed points at the village shop."""

    kind: Literal["points.redeemed"]
    household: Id
    points: Annotated[int, Field(gt=0, le=1_000_000)]
    item: Text


class JobPlaced(VillageEvent):
    """A person was placed in a job."""

    kind: Literal["job.placed"]
    person: Id
    job_kind: Literal["public_welfare", "doorstep", "urban"]
    employer: Text
    hourly_wage: Annotated[float, Field(ge=0, le=10_000)]


class SupervisionPosted(VillageEvent):
    """A micro-power supervision item was posted for a vote."""

    kind: Literal["supervision.posted"]
    item: Id
    title: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    vote_closes: dt.date


class SupervisionVoted(VillageEvent):
    """The current vote tally of a supervision item."""

    kind: Literal["supervision.voted"]
    item: Id
    approve: Annotated[int, Field(ge=0, le=1_000_000)]
    reject: Annotated[int, Field(ge=0, le=1_000_000)]


# The complex kinds' models, then those of the simple kinds (``datasources.simple_kinds``).
EVENT_MODEL_CLASSES: tuple[type[EventModel], ...] = (
    CallKey,
    CallReturned,
    DeviceHeartbeat,
    TicketCreated,
    TicketDispatched,
    TicketArrived,
    TicketResolved,
    TicketRated,
    TicketClosed,
    TicketEscalated,
    TicketReopened,
    PetitionFiled,
    PointsEarned,
    PointsRedeemed,
    JobPlaced,
    SupervisionPosted,
    SupervisionVoted,
    *(simple.model for simple in SIMPLE_KINDS),
)
if TYPE_CHECKING:
    # For the type checker an event is any event model; the union below is built at run time.
    Event: TypeAlias = EventModel
else:
    # ``Union[...]`` of a tuple: the ``X | Y`` form cannot be built from a sequence.
    Event = Annotated[Union[EVENT_MODEL_CLASSES], Field(discriminator="kind")]  # noqa: UP007

EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)
# The kinds, in the order of the union above (each model's ``kind`` literal).
EVENT_MODELS: dict[str, type[BaseModel]] = {model_kind(m): m for m in EVENT_MODEL_CLASSES}
EVENT_KINDS: tuple[str, ...] = tuple(EVENT_MODELS)
TICKET_STAGE_KINDS = frozenset(
    k for k in EVENT_KINDS if k.startswith("ticket.") and k != "ticket.created"
)


class InvalidEvent(ValueError):
    """An event failed validation; ``errors`` holds ``"field: reason"`` strings."""

    def __init__(self, errors: Sequence[str], event_id: str | None = None) -> None:
        self.errors = list(errors)
        self.event_id = event_id
        super().__init__("; ".join(self.errors))


_REASONS: dict[str, str] = {
    "missing": "required",
    "greater_than_equal": "must be >= {ge}",
    "greater_than": "must be > {gt}",
    "less_than_equal": "must be <= {le}",
    "less_than": "must be < {lt}",
    "string_too_long": "must be at most {max_length} characters",
    "string_too_short": "must not be empty",
    "string_pattern_mismatch": "has characters or a form that is not allowed",
    "literal_error": "must be {expected}",
    "timezone_aware": "must be ISO 8601 with a UTC offset",
    "datetime_type": "must be an ISO 8601 date-time string with an offset",
    "datetime_from_date_parsing": "must be an ISO 8601 date-time string with an offset",
    "datetime_parsing": "must be an ISO 8601 date-time string with an offset",
    "date_from_datetime_parsing": "must be an ISO 8601 date (YYYY-MM-DD)",
    "date_parsing": "must be an ISO 8601 date (YYYY-MM-DD)",
    "date_type": "must be an ISO 8601 date (YYYY-MM-DD)",
    "int_type": "must be an integer",
    "float_type": "must be a number",
    "bool_type": "must be true or false",
    "string_type": "must be a string",
    "model_type": "must be a JSON object",
    "model_attributes_type": "must be a JSON object",
    "dict_type": "must be a JSON object",
    "union_tag_not_found": "required",
    "json_invalid": "invalid JSON",
    "json_type": "invalid JSON",
    "finite_number": "must be a finite number",
}


def _error_text(err: Any) -> str:
    """Turn one pydantic error into ``"field: reason"``."""
    kind = err["type"]
    loc = list(err["loc"])
    # A discriminated union puts the tag first in the location; the field follows it.
    if loc and isinstance(loc[0], str) and loc[0] in EVENT_KINDS:
        loc = loc[1:]
    where = ".".join(str(p) for p in loc) or "event"
    if kind == "union_tag_not_found":
        return "kind: required"
    if kind == "union_tag_invalid":
        return f"kind: unknown kind {err['input'].get('kind')!r}"[:200]
    if kind in ("json_invalid", "json_type"):
        return "event: invalid JSON"
    if kind in ("model_type", "model_attributes_type", "dict_type") and where == "event":
        return "event: must be a JSON object"
    if kind == "value_error":
        return f"{where}: {err['ctx']['error']}"
    template = _REASONS.get(kind)
    if template is None:
        return f"{where}: {err['msg']}"
    try:
        return f"{where}: {template.format(**err.get('ctx', {}))}"
    except (KeyError, IndexError):
        return f"{where}: {err['msg']}"


def validation_errors(exc: ValidationError) -> list[str]:
    """Return the ``"field: reason"`` texts of a pydantic validation error."""
    return list(dict.fromkeys(_error_text(e) for e in exc.errors(include_url=False)))


def _guess_id(raw: Any) -> str | None:
    """Return the ``id`` of a raw event if it has a usable one, for error reports."""
    if isinstance(raw, dict):
        value = raw.get("id")
        return value if isinstance(value, str) and len(value) <= 64 else None
    if isinstance(raw, str | bytes):
        try:
            return _guess_id(json.loads(raw))
        except (ValueError, RecursionError):
            return None
    return None


def parse_event(raw: str | bytes, now: dt.datetime | None = None) -> Event:
    """Validate one JSON event; raise ``InvalidEvent`` with the reasons if it is not valid."""
    try:
        return EVENT_ADAPTER.validate_json(raw, context={"now": now or dt.datetime.now(dt.UTC)})
    except ValidationError as exc:
        raise InvalidEvent(validation_errors(exc), _guess_id(raw)) from None


def parse_event_object(obj: Any, now: dt.datetime | None = None) -> Event:
    """Validate one already-decoded event (a dict), with JSON semantics for its values."""
    if isinstance(obj, BaseModel):
        return obj  # type: ignore[return-value]
    if not isinstance(obj, dict):
        raise InvalidEvent(["event: must be a JSON object"])
    # Round-trip through JSON so strict mode treats strings as JSON does (dates, times).
    return parse_event(json.dumps(obj, ensure_ascii=False, default=str), now)


def event_json(event: Event) -> str:
    """Serialise a validated event to the canonical JSON stored in the stream."""
    return event.model_dump_json()


@dataclass(frozen=True)
class DeviceInfo:
    """Where a one-key caller is installed."""

    grid: str
    village: str
    town: str
    household: str


@dataclass
class Registry:
    """Known areas, devices, households and staff of one district, loaded from SQL."""

    district_code: str
    grids: dict[str, tuple[str, str]] = field(default_factory=dict)  # grid -> (village, town)
    villages: dict[str, str] = field(default_factory=dict)  # village -> town
    devices: dict[str, DeviceInfo] = field(default_factory=dict)
    households: dict[str, tuple[str, str]] = field(default_factory=dict)  # -> (village, grid)
    staff: set[str] = field(default_factory=set)
    loaded_at: float = 0.0

    def areas(self, event: Event) -> tuple[str | None, str, str]:
        """Return (grid, village, town) of a checked event."""
        grid = event.__dict__.get("grid")
        if grid is not None:
            village, town = self.grids[grid]
            return grid, village, town
        village = event.__dict__["village"]
        return None, village, self.villages[village]

    def check(self, event: Event) -> list[str]:
        """Return the reasons ``event`` refers to something unknown (empty if it is fine)."""
        errors: list[str] = []
        refs = _reference_fields(type(event))
        values = event.__dict__
        grid = values.get("grid")
        village = values.get("village")
        if grid is not None and (grid not in self.grids or not grid.startswith(self.district_code)):
            errors.append(f"grid: unknown grid {grid} in district {self.district_code}")
        if village is not None and (
            village not in self.villages or not village.startswith(self.district_code)
        ):
            errors.append(f"village: unknown village {village} in district {self.district_code}")
        if "device" in refs:
            device_id = values["device"]
            device = self.devices.get(device_id)
            if device is None:
                errors.append(f"device: unknown device {device_id}")
            elif grid is not None and device.grid != grid:
                errors.append(f"device: installed in grid {device.grid}, not {grid}")
        if "household" in refs:
            household = values["household"]
            home = self.households.get(household)
            if home is None:
                errors.append(f"household: unknown household {household}")
            elif village is not None and home[0] != village:
                errors.append(f"household: belongs to village {home[0]}, not {village}")
        for name in ("assignee", "staff"):
            if name in refs and values[name] not in self.staff:
                errors.append(f"{name}: unknown staff {values[name]}")
        return errors


_REFERENCES = frozenset({"device", "household", "assignee", "staff"})


@cache
def _reference_fields(model: type[BaseModel]) -> frozenset[str]:
    """Return the registry-checked fields a model has (looked up once per class)."""
    return _REFERENCES & frozenset(model.model_fields)


def load_registry(engine: Engine, district_code: str) -> Registry:
    """Read the registry of known codes and ids from SQL."""
    registry = Registry(district_code=district_code, loaded_at=time.monotonic())
    with Session(engine) as session:
        for code, village, town in session.execute(
            select(Grid.code, Grid.village_code, Grid.town_code)
        ):
            registry.grids[code] = (village, town)
        for code, town in session.execute(select(Village.code, Village.town_code)):
            registry.villages[code] = town
        for dev, grid, village, town, household in session.execute(
            select(
                Device.id,
                Device.grid_code,
                Device.village_code,
                Device.town_code,
                Device.household_id,
            )
        ):
            registry.devices[dev] = DeviceInfo(grid, village, town, household)
        for household, village, grid in session.execute(
            select(Household.id, Household.village_code, Household.grid_code)
        ):
            registry.households[household] = (village, grid)
        registry.staff.update(session.scalars(select(Staff.id)))
    return registry


@dataclass(frozen=True)
class Rejection:
    """One event that failed validation, with its position in the request."""

    index: int
    id: str | None
    errors: list[str]


def check_events(
    raws: Iterable[Any], now: dt.datetime | None = None, registry: Registry | None = None
) -> tuple[list[tuple[int, Event]], list[Rejection]]:
    """Validate decoded events (dicts); return the valid ones and the rejections."""
    now = now or dt.datetime.now(dt.UTC)
    valid: list[tuple[int, Event]] = []
    rejected: list[Rejection] = []
    for index, raw in enumerate(raws):
        try:
            event = parse_event_object(raw, now)
        except InvalidEvent as exc:
            rejected.append(Rejection(index, _guess_id(raw), exc.errors))
            continue
        errors = registry.check(event) if registry is not None else []
        if errors:
            rejected.append(Rejection(index, event.id, errors))
        else:
            valid.append((index, event))
    return valid, rejected
