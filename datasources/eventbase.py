"""The floor under the event schema: field types, the event model bases, the simple-kind form.

``datasources.events`` (the complex kinds and the ``Event`` union) and
``datasources.simple_kinds`` (the kinds declared in the simple form) both build on this module,
so that ``events`` can derive its union from the simple declarations without importing the
machinery of ``datasources.kinds``.

A *simple* kind is a village kind stored as one row per event in a table of its own; it adds a
fixed set of counters and one feed entry to the live state (docs/architecture.md, "Adding an
event kind"). Its ``SimpleKind`` declaration names everything the generic machinery needs: the
model, the table with the field → column mapping, the feed parameters and counters, and the
simulator's sample of its fields with the share of stories it starts.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    StringConstraints,
    ValidationInfo,
    field_validator,
)

from datasources.models import Base

SCHEMA_VERSION = 1
EARLIEST_TS = dt.datetime(2021, 1, 1, tzinfo=dt.UTC)
MAX_FUTURE = dt.timedelta(minutes=10)

Id = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[\x21-\x7e]+$")]
Code = Annotated[str, StringConstraints(pattern=r"^[0-9]{6,15}$")]
Text = Annotated[str, StringConstraints(min_length=1, max_length=128)]
Reason = Annotated[str, StringConstraints(max_length=500)]


class EventModel(BaseModel):
    """Fields every event has; ``ts`` must lie between 2021-01-01 and now + 10 minutes."""

    # Extra fields are ignored so producers can add fields without breaking older workers.
    model_config = ConfigDict(strict=True, frozen=True, extra="ignore")

    v: Literal[1]
    id: Id
    ts: AwareDatetime
    if TYPE_CHECKING:
        # Each kind's model declares ``kind`` as a literal; the type checker sees it here.
        kind: str

    @field_validator("ts")
    @classmethod
    def _ts_in_range(cls, value: dt.datetime, info: ValidationInfo) -> dt.datetime:
        now = (info.context or {}).get("now") or dt.datetime.now(dt.UTC)
        if value < EARLIEST_TS:
            raise ValueError("before 2021-01-01")
        if value > now + MAX_FUTURE:
            raise ValueError("more than 10 minutes in the future")
        return value


class GridEvent(EventModel):
    grid: Code


class VillageEvent(EventModel):
    village: Code


def model_kind(model: type[BaseModel]) -> str:
    """Return the kind of an event model (its ``kind`` literal)."""
    return model.model_fields["kind"].annotation.__args__[0]  # type: ignore[union-attr]


# Draws one field value for the simulator from its random generator.
Sample = Callable[[random.Random], Any]


@dataclass(frozen=True)
class SimpleKind:
    """The whole declaration of a simple kind (see the module docstring).

    - ``model``: its pydantic schema, a ``VillageEvent``.
    - ``table``, ``time_column`` and ``columns``: the table of one row per event; its ``id`` is
      the event id, ``time_column`` gets ``ts``, ``columns`` maps each other stored field to its
      column, and ``village_code`` and ``town_code`` are filled from the registry.
    - ``feed``: the fields that are the parameters of its feed entry (``feed.<kind>``).
    - ``counts``: the live counters each event adds: a metric of ``live.METRICS`` with a number,
      or with the name of the field that holds the number.
    - ``sample`` and ``share``: the simulator's story, one event whose fields are drawn by the
      samplers (the village is picked by the simulator), started at ``share`` of new stories.
    """

    model: type[VillageEvent]
    table: type[Base]
    time_column: str
    columns: Mapping[str, str]
    feed: tuple[str, ...] = ()
    counts: tuple[tuple[str, int | str], ...] = ()
    sample: Mapping[str, Sample] = field(default_factory=dict)
    share: float = 0.0

    @property
    def kind(self) -> str:
        return model_kind(self.model)
