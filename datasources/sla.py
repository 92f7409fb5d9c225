"""Service deadlines per ticket category: arrival on site and closure (按期办结).

The categories are those of the event schema (``datasources.events.CATEGORIES``); their names
are UI strings (``category.<code>`` in the catalogues of ``layouts/i18n.py``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True)
class Deadline:
    """Hours allowed from creation to arrival on site and to closure."""

    arrive_hours: float
    close_hours: float


DEFAULT_DEADLINES: dict[str, Deadline] = {
    "dispute": Deadline(2, 168),
    "livelihood": Deadline(2, 72),
    "environment": Deadline(4, 72),
    "infrastructure": Deadline(4, 240),
    "employment": Deadline(24, 168),
    "policy": Deadline(24, 72),
    "elderly_care": Deadline(1, 48),
    "safety": Deadline(1, 48),
    "supervision": Deadline(24, 240),
    "other": Deadline(4, 120),
}
URGENT = Deadline(0.5, 24)


def deadline_for(
    category: str, priority: str, table: dict[str, Deadline] | None = None
) -> Deadline:
    """Return the deadline for a ticket; urgent tickets get the tighter of the two."""
    base = (table or DEFAULT_DEADLINES).get(category, DEFAULT_DEADLINES["other"])
    if priority == "urgent":
        return Deadline(
            min(base.arrive_hours, URGENT.arrive_hours), min(base.close_hours, URGENT.close_hours)
        )
    return base


def closed_on_time(
    category: str,
    priority: str,
    created_at: dt.datetime,
    closed_at: dt.datetime | None,
    table: dict[str, Deadline] | None = None,
) -> bool:
    """Return True if the ticket was closed within its category's closure deadline."""
    if closed_at is None:
        return False
    limit = dt.timedelta(hours=deadline_for(category, priority, table).close_hours)
    return closed_at - created_at <= limit
