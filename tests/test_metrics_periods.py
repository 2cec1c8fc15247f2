"""Periods: labels, half-open local bounds in the clinic's zone, previous periods, splitting."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from connector.metrics.periods import (
    Period,
    current_period,
    parse_period,
    period_containing,
    periods_between,
    range_period,
)

TZ = ZoneInfo("Asia/Shanghai")


@pytest.mark.parametrize(
    ("label", "first", "last", "granularity"),
    [
        ("2026-10", date(2026, 10, 1), date(2026, 10, 31), "month"),
        ("2026-W43", date(2026, 10, 19), date(2026, 10, 25), "week"),  # ISO week: Monday to Sunday
        ("2026-W53", date(2026, 12, 28), date(2027, 1, 3), "week"),  # 2026 has 53 ISO weeks
        ("2026-Q4", date(2026, 10, 1), date(2026, 12, 31), "quarter"),
        ("2026-10-05", date(2026, 10, 5), date(2026, 10, 5), "day"),
        ("2026-10-01..2026-10-15", date(2026, 10, 1), date(2026, 10, 15), None),
    ],
)
def test_labels_round_trip(label: str, first: date, last: date, granularity: str | None) -> None:
    period = parse_period(label, TZ)
    assert (period.first, period.last, period.granularity) == (first, last, granularity)
    assert period.label == label


def test_bounds_are_local_midnights_in_utc() -> None:
    october = parse_period("2026-10", TZ)
    # 1 Oct 00:00 +08:00 is 30 Sep 16:00 UTC; the end is exclusive: 1 Nov 00:00 +08:00.
    assert october.start_utc == datetime(2026, 9, 30, 16, tzinfo=UTC)
    assert october.end_utc == datetime(2026, 10, 31, 16, tzinfo=UTC)
    # A complaint at 23:30 local on 31 October is 15:30 UTC: inside October, not November.
    late = datetime(2026, 10, 31, 23, 30, tzinfo=TZ)
    assert october.start_utc <= late < october.end_utc
    assert current_period(late, "month", TZ).label == "2026-10"
    assert current_period(datetime(2026, 10, 31, 16, tzinfo=UTC), "month", TZ).label == "2026-11"


@pytest.mark.parametrize(
    ("label", "previous"),
    [
        ("2026-01", "2025-12"),
        ("2026-W01", "2025-W52"),
        ("2026-Q1", "2025-Q4"),
        ("2026-03-01", "2026-02-28"),
        ("2026-10-01..2026-10-15", "2026-09-16..2026-09-30"),  # as long, just before
    ],
)
def test_previous_period(label: str, previous: str) -> None:
    assert parse_period(label, TZ).previous().label == previous


def test_splitting_a_range_into_periods() -> None:
    months = periods_between(date(2026, 1, 15), date(2026, 3, 2), "month", TZ)
    assert [p.label for p in months] == ["2026-01", "2026-02", "2026-03"]
    weeks = periods_between(date(2026, 10, 1), date(2026, 10, 31), "week", TZ)
    assert [p.label for p in weeks] == ["2026-W40", "2026-W41", "2026-W42", "2026-W43", "2026-W44"]
    assert period_containing(date(2026, 11, 30), "quarter", TZ).label == "2026-Q4"


def test_month_equivalents_and_elapsed_share() -> None:
    october = parse_period("2026-10", TZ)
    assert october.months == 1.0
    assert parse_period("2026-Q4", TZ).months == 3.0
    assert parse_period("2026-W43", TZ).months == pytest.approx(7 / 30.436875)
    assert october.elapsed_share(datetime(2026, 10, 16, 12, tzinfo=TZ)) == pytest.approx(15.5 / 31)
    assert october.elapsed_share(datetime(2027, 1, 1, tzinfo=UTC)) == 1.0
    assert october.elapsed_share(datetime(2026, 9, 1, tzinfo=UTC)) == 0.0


@pytest.mark.parametrize("text", ["2026-13", "2026-W54", "2026-Q5", "October", "2026-10-15..2026-10-01", ""])
def test_bad_labels_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_period(text, TZ)


def test_empty_period_is_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        Period(date(2026, 10, 2), date(2026, 10, 2), TZ)
    with pytest.raises(ValueError, match="before it starts"):
        range_period(date(2026, 10, 2), date(2026, 10, 1), TZ)
