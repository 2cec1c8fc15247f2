"""Scorecard periods: half-open local date ranges in the clinic's time zone, with UTC bounds.

A period is ``[first 00:00, end 00:00)`` in the clinic's zone (design.md: a complaint at 23:30 local
on 31 October belongs to October even though it is 15:30 UTC). Labels are what the store, the CLI
and the CRM push use as the period key:

=========  ==========================
day        ``2026-10-05``
week       ``2026-W43`` (ISO week)
month      ``2026-10``
quarter    ``2026-Q4``
range      ``2026-10-01..2026-10-15`` (both days included)
=========  ==========================
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

Granularity = Literal["day", "week", "month", "quarter"]
GRANULARITIES: tuple[Granularity, ...] = ("day", "week", "month", "quarter")
_AVERAGE_MONTH_DAYS = 365.2425 / 12

_PATTERNS: tuple[tuple[Granularity, re.Pattern[str]], ...] = (
    ("quarter", re.compile(r"^(?P<y>\d{4})-Q(?P<q>[1-4])$")),
    ("week", re.compile(r"^(?P<y>\d{4})-W(?P<w>\d{2})$")),
    ("day", re.compile(r"^(?P<y>\d{4})-(?P<m>\d{2})-(?P<d>\d{2})$")),
    ("month", re.compile(r"^(?P<y>\d{4})-(?P<m>\d{2})$")),
)


def _month_start(day: date, months_ahead: int = 0) -> date:
    index = day.year * 12 + day.month - 1 + months_ahead
    return date(index // 12, index % 12 + 1, 1)


@dataclass(frozen=True)
class Period:
    """Local days ``[first, end)`` in ``tz``; ``granularity`` is None for an explicit range."""

    first: date
    end: date
    tz: ZoneInfo
    granularity: Granularity | None = None

    def __post_init__(self) -> None:
        if self.end <= self.first:
            raise ValueError(f"empty period {self.first}..{self.end}")

    @property
    def label(self) -> str:
        if self.granularity == "day":
            return self.first.isoformat()
        if self.granularity == "week":
            year, week, _ = self.first.isocalendar()
            return f"{year}-W{week:02d}"
        if self.granularity == "month":
            return f"{self.first:%Y-%m}"
        if self.granularity == "quarter":
            return f"{self.first.year}-Q{(self.first.month - 1) // 3 + 1}"
        return f"{self.first.isoformat()}..{self.last.isoformat()}"

    @property
    def last(self) -> date:
        """The last local day included."""
        return self.end - timedelta(days=1)

    @property
    def start_utc(self) -> datetime:
        return datetime.combine(self.first, time(), tzinfo=self.tz).astimezone(UTC)

    @property
    def end_utc(self) -> datetime:
        return datetime.combine(self.end, time(), tzinfo=self.tz).astimezone(UTC)

    @property
    def months(self) -> float:
        """Length in months, for per-month targets: exact for months and quarters, else by days."""
        if self.granularity == "month":
            return 1.0
        if self.granularity == "quarter":
            return 3.0
        return (self.end - self.first).days / _AVERAGE_MONTH_DAYS

    def elapsed_share(self, as_of: datetime) -> float:
        """How much of the period lies before ``as_of`` (0..1): month-to-date targets scale by it."""
        span = (self.end_utc - self.start_utc).total_seconds()
        done = (min(max(as_of, self.start_utc), self.end_utc) - self.start_utc).total_seconds()
        return done / span

    def previous(self) -> Period:
        """The period just before: the previous day/week/month/quarter, or an equally long range."""
        if self.granularity is None:
            return Period(self.first - (self.end - self.first), self.first, self.tz)
        return period_containing(self.first - timedelta(days=1), self.granularity, self.tz)


def period_containing(day: date, granularity: Granularity, tz: ZoneInfo) -> Period:
    """The day/week/month/quarter that contains local ``day``."""
    if granularity == "day":
        return Period(day, day + timedelta(days=1), tz, "day")
    if granularity == "week":
        monday = day - timedelta(days=day.weekday())
        return Period(monday, monday + timedelta(days=7), tz, "week")
    if granularity == "month":
        return Period(_month_start(day), _month_start(day, 1), tz, "month")
    first = date(day.year, (day.month - 1) // 3 * 3 + 1, 1)
    return Period(first, _month_start(first, 3), tz, "quarter")


def parse_period(text: str, tz: ZoneInfo) -> Period:
    """A period from its label (see the module docstring); ValueError names the accepted forms."""
    text = text.strip()
    if ".." in text:
        first, _, last = text.partition("..")
        return range_period(date.fromisoformat(first), date.fromisoformat(last), tz)
    for granularity, pattern in _PATTERNS:
        match = pattern.match(text)
        if not match:
            continue
        year = int(match["y"])
        try:
            if granularity == "quarter":
                return period_containing(date(year, int(match["q"]) * 3, 1), "quarter", tz)
            if granularity == "week":
                return period_containing(date.fromisocalendar(year, int(match["w"]), 1), "week", tz)
            if granularity == "day":
                return period_containing(date(year, int(match["m"]), int(match["d"])), "day", tz)
            return period_containing(date(year, int(match["m"]), 1), "month", tz)
        except ValueError as exc:
            raise ValueError(f"period {text!r}: {exc}") from None
    raise ValueError(
        f"period {text!r} not understood; "
        "use 2026-10, 2026-W43, 2026-Q4, 2026-10-05 or 2026-10-01..2026-10-15"
    )


def range_period(first: date, last: date, tz: ZoneInfo) -> Period:
    """An explicit range of local days, both included."""
    if last < first:
        raise ValueError(f"range ends ({last}) before it starts ({first})")
    return Period(first, last + timedelta(days=1), tz)


def periods_between(first: date, last: date, granularity: Granularity, tz: ZoneInfo) -> list[Period]:
    """Every ``granularity`` period that overlaps the local days ``first..last``, in order."""
    periods = [period_containing(first, granularity, tz)]
    while periods[-1].last < last:
        periods.append(period_containing(periods[-1].end, granularity, tz))
    return periods


def current_period(now: datetime, granularity: Granularity, tz: ZoneInfo) -> Period:
    """The period containing the instant ``now`` in the clinic's zone (the CLI's default)."""
    return period_containing(now.astimezone(tz).date(), granularity, tz)
