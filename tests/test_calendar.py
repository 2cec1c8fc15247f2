"""The business calendar: which hours are worked, working time between instants, deadlines.

Calendar used throughout (unless a test says otherwise): Asia/Shanghai, Mon–Fri 08:00–12:00 and
14:00–17:30 (7.5 h a day), weekends closed, China's statutory calendar. In 2026 that makes
1–7 October (National Day, with 4 Oct a Sunday) days off and Saturday 10 October a make-up
working day (调休), worked with Monday's hours.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from connector.calendar import BusinessCalendar
from connector.config.models import CalendarConfig

TZ = ZoneInfo("Asia/Shanghai")
WEEKDAY = ((time(8), time(12)), (time(14), time(17, 30)))
HOURS = {day: WEEKDAY for day in ("mon", "tue", "wed", "thu", "fri")}


def local(month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=TZ)


@pytest.fixture
def cn() -> BusinessCalendar:
    return BusinessCalendar.build(TZ, HOURS, statutory="CN")


def test_which_hours_apply_on_a_day(cn: BusinessCalendar) -> None:
    assert cn.spans_on(date(2026, 10, 9)) == WEEKDAY  # a Friday
    assert cn.spans_on(date(2026, 10, 11)) == ()  # a Sunday
    assert cn.spans_on(date(2026, 10, 1)) == ()  # National Day
    assert cn.spans_on(date(2026, 10, 5)) == ()  # a Monday, but a substituted day off
    assert cn.spans_on(date(2026, 10, 10)) == WEEKDAY  # Saturday make-up day: Monday's hours


def test_clinic_lists_win_over_the_statutory_calendar() -> None:
    saturday_hours = ((time(9), time(11)),)
    calendar = BusinessCalendar.build(
        TZ,
        {**HOURS, "sat": saturday_hours},
        holidays=[date(2026, 10, 9)],  # a Friday the clinic closes
        working_days=[date(2026, 10, 2), date(2026, 10, 18)],  # a statutory holiday and a Sunday
        statutory="CN",
        makeup_day_hours=[(time(8), time(12))],
    )
    assert calendar.spans_on(date(2026, 10, 9)) == ()
    assert calendar.spans_on(date(2026, 10, 2)) == WEEKDAY  # a Friday: its own weekday hours
    assert calendar.spans_on(date(2026, 10, 18)) == ((time(8), time(12)),)  # Sunday: make-up hours
    assert calendar.spans_on(date(2026, 10, 10)) == ((time(8), time(12)),)  # statutory make-up day
    assert calendar.spans_on(date(2026, 10, 17)) == saturday_hours  # an ordinary Saturday


def test_working_time_across_a_weekend(cn: BusinessCalendar) -> None:
    # Fri 16 Oct 16:00 → Mon 19 Oct 09:00: Friday 16:00–17:30 (1.5 h) + Monday 08:00–09:00 (1 h).
    assert cn.working_hours(local(10, 16, 16), local(10, 19, 9)) == 2.5


def test_working_time_across_holidays_and_a_make_up_day(cn: BusinessCalendar) -> None:
    # Wed 30 Sep 17:00 → Mon 12 Oct 09:00:
    #   30 Sep 17:00–17:30 = 0.5 h; 1–7 Oct off; Thu 8, Fri 9 and make-up Sat 10 Oct 7.5 h each
    #   = 22.5 h; Sun 11 off; Mon 12 08:00–09:00 = 1 h. Total 24 h.
    assert cn.working_hours(local(9, 30, 17), local(10, 12, 9)) == 24.0
    # Calendar hours for the same span: 11 days and 16 hours.
    assert (local(10, 12, 9) - local(9, 30, 17)) == timedelta(days=11, hours=16)


def test_deadline_is_the_instant_the_working_time_runs_out(cn: BusinessCalendar) -> None:
    start = local(9, 30, 17)
    deadline = cn.add_working_hours(start, 24)
    assert deadline == local(10, 12, 9)
    assert deadline.tzinfo is UTC
    assert cn.working_seconds(start, deadline) == 24 * 3600  # inclusive limit: exactly used up


def test_deadline_skips_the_lunch_break_and_closed_time(cn: BusinessCalendar) -> None:
    assert cn.add_working_hours(local(10, 12, 11, 30), 1) == local(10, 12, 14, 30)  # 30 min + 30 min
    assert cn.add_working_hours(local(10, 12, 17, 30), 0.5) == local(10, 13, 8, 30)  # from closing time
    assert cn.add_working_hours(local(10, 11, 3), 2) == local(10, 12, 10)  # from a Sunday night
    assert cn.add_working_time(local(10, 11, 3), timedelta(0)) == local(10, 11, 3)


def test_intervals_are_clipped_to_the_bounds(cn: BusinessCalendar) -> None:
    spans = list(cn.intervals(local(10, 9, 10), local(10, 9, 15)))
    assert spans == [(local(10, 9, 10), local(10, 9, 12)), (local(10, 9, 14), local(10, 9, 15))]
    assert cn.working_seconds(local(10, 9, 15), local(10, 9, 10)) == 0  # end before start


def test_a_calendar_without_working_hours_has_no_deadline() -> None:
    closed = BusinessCalendar.build(TZ, {})
    with pytest.raises(ValueError, match="no working time"):
        closed.add_working_hours(local(10, 9, 10), 1)


@pytest.mark.parametrize(
    ("hours", "message"),
    [
        ({"monday": WEEKDAY}, "unknown weekday"),
        ({"mon": [(time(12), time(8))]}, "ends before it starts"),
        ({"mon": [(time(8), time(12)), (time(11), time(13))]}, "overlap"),
    ],
)
def test_bad_hours_are_refused(hours: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        BusinessCalendar.build(TZ, hours)


def test_unknown_statutory_country_and_naive_instants_are_refused(cn: BusinessCalendar) -> None:
    with pytest.raises(ValueError, match="country code"):
        BusinessCalendar.build(TZ, HOURS, statutory="XX")
    with pytest.raises(ValueError, match="naive"):
        cn.working_seconds(datetime(2026, 10, 9, 10), local(10, 9, 12))


def test_from_config_section() -> None:
    section = CalendarConfig.model_validate(
        {"statutory": "CN", "holidays": ["2026-10-09"], "working_days": ["2026-10-11"]}
    )
    calendar = BusinessCalendar.from_config(section, TZ)
    assert calendar.spans_on(date(2026, 10, 9)) == ()  # clinic holiday
    assert calendar.spans_on(date(2026, 10, 11)) == WEEKDAY  # Sunday worked with Monday's hours
    assert calendar.spans_on(date(2026, 10, 5)) == ()  # statutory
