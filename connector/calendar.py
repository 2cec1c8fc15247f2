"""The clinic's business calendar: when staff are scheduled to work.

Two things depend on it: SLA clocks counted in business hours (``[scorecard] sla_clock =
"business"``), and the scheduled working hours behind ``contacts_per_hour``. It is built from plain
data (time zone, hours per weekday, extra holidays and working days, a statutory country code) so
the metrics engine, the alert rules and the tests use it without the config layer;
:meth:`BusinessCalendar.from_config` adapts the ``[clinic.calendar]`` section.

Which hours apply on a local date, first rule that matches wins:

1. a date in ``holidays`` (the clinic's own list) is closed;
2. a date in ``working_days`` (the clinic's own make-up days) works: its weekday's hours, or
   ``makeup_day_hours`` when that weekday normally has none;
3. a statutory public holiday (incl. China's substituted days off) is closed;
4. a statutory make-up working day (China's 调休 weekends) works ``makeup_day_hours``;
5. otherwise the weekday's hours.

Statutory days come from the ``holidays`` package (``holidays.China(...).weekend_workdays`` lists
China's make-up days), computed per year on first use and cached.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import holidays as holidays_lib

WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
Span = tuple[time, time]

# A deadline search gives up after this many days: a calendar with no working hours at all would
# otherwise loop forever.
_MAX_SEARCH_DAYS = 3 * 366


@lru_cache(maxsize=64)
def _statutory(country: str, year: int) -> tuple[frozenset[date], frozenset[date]]:
    """(public holidays, make-up working days) of ``country`` in ``year``."""
    calendar = holidays_lib.country_holidays(country, years=year)
    days_off = frozenset(day for day in calendar if day.year == year)
    makeup = frozenset(day for day in getattr(calendar, "weekend_workdays", ()) if day.year == year)
    return days_off, makeup


def _check_spans(label: str, spans: Iterable[Span]) -> tuple[Span, ...]:
    ordered = tuple(sorted(spans))
    for start, end in ordered:
        if start >= end:
            raise ValueError(f"working hours {label}: {start:%H:%M}-{end:%H:%M} ends before it starts")
    for (_, first_end), (second_start, _) in itertools.pairwise(ordered):
        if second_start < first_end:
            raise ValueError(f"working hours {label}: spans overlap at {second_start:%H:%M}")
    return ordered


@dataclass(frozen=True)
class BusinessCalendar:
    """Working hours of one clinic. Instants in and out are aware datetimes (any zone)."""

    tz: ZoneInfo
    weekly: tuple[tuple[Span, ...], ...]  # index 0 = Monday … 6 = Sunday
    makeup_day_hours: tuple[Span, ...]
    holidays: frozenset[date] = frozenset()
    working_days: frozenset[date] = frozenset()
    statutory: str = ""

    @classmethod
    def build(
        cls,
        tz: ZoneInfo,
        hours: Mapping[str, Iterable[Span]],
        *,
        holidays: Iterable[date] = (),
        working_days: Iterable[date] = (),
        statutory: str = "",
        makeup_day_hours: Iterable[Span] | None = None,
    ) -> BusinessCalendar:
        """A calendar from weekday names (``"mon"`` … ``"sun"``; a missing day is closed).

        ``makeup_day_hours`` defaults to Monday's hours: a make-up day is worked "like a weekday".
        """
        unknown = set(hours) - set(WEEKDAYS)
        if unknown:
            raise ValueError(f"unknown weekday(s) {sorted(unknown)}; use {', '.join(WEEKDAYS)}")
        weekly = tuple(_check_spans(day, hours.get(day, ())) for day in WEEKDAYS)
        makeup = weekly[0] if makeup_day_hours is None else _check_spans("makeup_day_hours", makeup_day_hours)
        if statutory and statutory not in holidays_lib.list_supported_countries():
            raise ValueError(
                f"statutory calendar {statutory!r} is not a country code the holidays package knows"
            )
        return cls(
            tz=tz,
            weekly=weekly,
            makeup_day_hours=makeup,
            holidays=frozenset(holidays),
            working_days=frozenset(working_days),
            statutory=statutory,
        )

    @classmethod
    def from_config(cls, calendar: Any, tz: ZoneInfo) -> BusinessCalendar:
        """From ``config.clinic.calendar`` (``connector.config.CalendarConfig``) and ``config.clinic.tz``."""
        return cls.build(
            tz,
            calendar.hours,
            holidays=calendar.holidays,
            working_days=calendar.working_days,
            statutory=calendar.statutory or "",
            makeup_day_hours=calendar.makeup_day_hours,
        )

    def spans_on(self, day: date) -> tuple[Span, ...]:
        """Local working spans on ``day`` (empty when closed), by the rules in the module docstring."""
        weekday_hours = self.weekly[day.weekday()]
        if day in self.holidays:
            return ()
        if day in self.working_days:
            return weekday_hours or self.makeup_day_hours
        if self.statutory:
            days_off, makeup = _statutory(self.statutory, day.year)
            if day in days_off:
                return ()
            if day in makeup:
                return self.makeup_day_hours
        return weekday_hours

    def _day_intervals(self, day: date) -> Iterator[tuple[datetime, datetime]]:
        for span_start, span_end in self.spans_on(day):
            yield (
                datetime.combine(day, span_start, tzinfo=self.tz).astimezone(UTC),
                datetime.combine(day, span_end, tzinfo=self.tz).astimezone(UTC),
            )

    def intervals(self, start: datetime, end: datetime) -> Iterator[tuple[datetime, datetime]]:
        """Working intervals (UTC) inside ``[start, end)``, in order, clipped to the bounds."""
        _require_aware(start, end)
        day = start.astimezone(self.tz).date()
        last = end.astimezone(self.tz).date()
        while day <= last:
            for lo, hi in self._day_intervals(day):
                lo, hi = max(lo, start), min(hi, end)
                if lo < hi:
                    yield lo, hi
            day += timedelta(days=1)

    def working_seconds(self, start: datetime, end: datetime) -> float:
        """Working seconds between two instants (0 when ``end`` is not after ``start``)."""
        return sum((hi - lo).total_seconds() for lo, hi in self.intervals(start, end))

    def working_hours(self, start: datetime, end: datetime) -> float:
        return self.working_seconds(start, end) / 3600

    def add_working_time(self, start: datetime, duration: timedelta) -> datetime:
        """The instant at which ``duration`` of working time has passed since ``start`` (a deadline).

        A response exactly at the returned instant is within the limit (limits are inclusive).
        """
        _require_aware(start)
        if duration <= timedelta(0):
            return start.astimezone(UTC)
        remaining = duration
        day = start.astimezone(self.tz).date()
        for _ in range(_MAX_SEARCH_DAYS):
            for lo, hi in self._day_intervals(day):
                lo = max(lo, start)
                if lo >= hi:
                    continue
                if hi - lo >= remaining:
                    return lo + remaining
                remaining -= hi - lo
            day += timedelta(days=1)
        raise ValueError(f"no working time within {_MAX_SEARCH_DAYS} days of {start.isoformat()}")

    def add_working_hours(self, start: datetime, hours: float) -> datetime:
        return self.add_working_time(start, timedelta(hours=hours))


def _require_aware(*instants: datetime) -> None:
    for instant in instants:
        if instant.tzinfo is None:
            raise ValueError(f"naive datetime {instant!r}: the calendar needs aware datetimes")
