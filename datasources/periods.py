"""Days, years and periods cut in Asia/Shanghai; stored times are UTC."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")


def local_day(ts: dt.datetime) -> dt.date:
    """Return the Asia/Shanghai calendar day of an aware timestamp."""
    return ts.astimezone(SHANGHAI).date()


def day_start(day: dt.date) -> dt.datetime:
    """Return the UTC instant at which an Asia/Shanghai day begins."""
    return dt.datetime.combine(day, dt.time(), SHANGHAI).astimezone(dt.UTC)


@dataclass(frozen=True)
class Period:
    """An inclusive range of Asia/Shanghai days."""

    start: dt.date
    end: dt.date

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError(f"period ends ({self.end}) before it starts ({self.start})")

    @classmethod
    def year(cls, year: int) -> Period:
        """Return the calendar year ``year``."""
        return cls(dt.date(year, 1, 1), dt.date(year, 12, 31))

    @property
    def utc_bounds(self) -> tuple[dt.datetime, dt.datetime]:
        """Return [start, end) as UTC instants."""
        return day_start(self.start), day_start(self.end + dt.timedelta(days=1))

    @property
    def days(self) -> int:
        """Return the number of days in the period."""
        return (self.end - self.start).days + 1

    def year_before(self) -> Period:
        """Return the same period one year earlier (29 February becomes 28 February)."""
        return Period(_minus_year(self.start), _minus_year(self.end))

    def as_dict(self) -> dict[str, str]:
        """Return the period as ISO dates."""
        return {"start": self.start.isoformat(), "end": self.end.isoformat()}


def _minus_year(day: dt.date) -> dt.date:
    try:
        return day.replace(year=day.year - 1)
    except ValueError:
        return day.replace(year=day.year - 1, day=28)
