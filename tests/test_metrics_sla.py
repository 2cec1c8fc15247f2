"""Complaint SLAs by hand: business hours across a weekend, holidays and a make-up day; pauses;
first vs last resolution and reopening; self-logged complaints; what counts as a response; as_of.

All on SQLite and PostgreSQL. Owner a1 throughout; ticket times are Asia/Shanghai local.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pytest
from test_metrics_support import TZ, Rows, local, weekday_calendar

from connector.calendar import BusinessCalendar
from connector.metrics import ScorecardSettings, compute_scorecards, ticket_sla
from connector.store import Store, open_store

CN = weekday_calendar("CN")  # 1–7 Oct 2026 off, Sat 10 Oct a make-up working day
PLAIN = weekday_calendar()


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    store = open_store(db_url)
    yield store
    store.dispose()


def metrics_of(
    store: Store,
    settings: ScorecardSettings,
    period: str,
    as_of: datetime,
    calendar: BusinessCalendar = PLAIN,
) -> dict[str, float | None]:
    cards = compute_scorecards(store, settings, calendar, TZ, period, as_of=as_of, agent="a1")
    assert len(cards) == 1
    return cards[0].metrics


def judged(
    store: Store, settings: ScorecardSettings, as_of: datetime, calendar: BusinessCalendar = PLAIN
) -> dict:
    found = ticket_sla(
        store, settings, calendar, created_from=local(2026, 9, 1), created_to=local(2026, 12, 1), as_of=as_of
    )
    return {s.ticket_id: s for s in found}


def test_business_hours_across_weekend_holidays_and_make_up_day(store: Store) -> None:
    r = Rows()
    # B1 Fri 9 Oct 16:00 → answered Mon 12 Oct 12:00: Fri 1.5 h + make-up Sat 10 Oct 7.5 h + Mon 4 h
    #    = 13 h (68 calendar hours); resolved Tue 13 Oct 17:30: 1.5 + 7.5 + 7.5 + 7.5 = 24 h.
    r.ticket(
        "B1",
        "a1",
        local(2026, 10, 9, 16),
        category="complaint",
        first_response=local(2026, 10, 12, 12),
        status="resolved",
        resolved=local(2026, 10, 13, 17, 30),
    )
    # B2 Wed 30 Sep 17:00 → answered Mon 12 Oct 09:00: 0.5 h + holidays 1–7 Oct + Thu 8, Fri 9,
    #    Sat 10 (make-up) 22.5 h + Mon 1 h = exactly 24 h: met (inclusive). Still open at as_of
    #    (Tue 20 Oct 12:00): 24 h + Mon 12–Fri 16 Oct 5 × 7.5 − 1 + Mon 19 7.5 + Tue 20 4 = 72 h.
    r.ticket("B2", "a1", local(2026, 9, 30, 17), category="complaint", first_response=local(2026, 10, 12, 9))
    # B3 Sat 3 Oct 10:00 (holiday week) → answered Thu 8 Oct 09:30 = 1.5 h, resolved 10:00 = 2 h.
    r.ticket(
        "B3",
        "a1",
        local(2026, 10, 3, 10),
        category="complaint",
        first_response=local(2026, 10, 8, 9, 30),
        status="resolved",
        resolved=local(2026, 10, 8, 10),
    )
    # B4 Mon 19 Oct 09:00 → answered Tue 20 Oct 11:00: 3 + 3.5 + 3 = 9.5 h; open at as_of: 10.5 h.
    r.ticket("B4", "a1", local(2026, 10, 19, 9), category="complaint", first_response=local(2026, 10, 20, 11))
    r.write(store)
    as_of, period = local(2026, 10, 20, 12), "2026-09-30..2026-10-31"
    business = ScorecardSettings(sla_clock="business")
    found = judged(store, business, as_of, CN)
    hours = {k: (v.response_hours, v.resolution_hours) for k, v in found.items()}
    assert hours == {"B1": (13.0, 24.0), "B2": (24.0, 72.0), "B3": (1.5, 2.0), "B4": (9.5, 10.5)}
    m = metrics_of(store, business, period, as_of, CN)
    assert m["first_response_within_sla"] == 1.0  # all four within 24 working hours
    assert m["resolution_within_sla"] == pytest.approx(2 / 3)  # B1, B3 met; B2 breached; B4 pending
    assert m["median_resolution_hours"] == 13.0  # (24 + 2) / 2
    # The same complaints on the calendar clock: every response took more than 24 h (68, 280, 119.5,
    # 26 h); B1 97.5 h and B3 120 h resolutions and B2 open 475 h breached, B4 (27 h) pending.
    calendar = metrics_of(store, ScorecardSettings(), period, as_of, CN)
    assert calendar["first_response_within_sla"] == 0.0
    assert calendar["resolution_within_sla"] == 0.0
    assert calendar["median_resolution_hours"] == pytest.approx((97.5 + 120) / 2)
    # Per-metric clocks: resolution on business hours, response on calendar hours.
    mixed = ScorecardSettings(metric_clocks={"resolution_within_sla": "business"})
    m = metrics_of(store, mixed, period, as_of, CN)
    assert (m["first_response_within_sla"], m["resolution_within_sla"]) == (0.0, pytest.approx(2 / 3))


def test_pause_statuses_stop_the_clock(store: Store) -> None:
    r = Rows()
    # P1 Mon 2 Nov 09:00; pending from 12:00 until Tue 12:00 (24 h); answered (CRM field) Tue 13:00;
    # resolved Wed 4 Nov 12:00. Calendar: response 28 h − 24 h pause = 4 h; resolution 51 − 24 = 27 h.
    r.ticket(
        "P1",
        "a1",
        local(2026, 11, 2, 9),
        category="complaint",
        first_response=local(2026, 11, 3, 13),
        status="resolved",
        resolved=local(2026, 11, 4, 12),
    )
    r.status("P1", None, "open", local(2026, 11, 2, 9))
    r.status("P1", "open", "pending", local(2026, 11, 2, 12))
    r.status("P1", "pending", "open", local(2026, 11, 3, 12))
    r.status("P1", "open", "resolved", local(2026, 11, 4, 12))
    # P2 Thu 5 Nov 09:00, pending since 10:00 and still waiting for the patient at as_of (Tue 10 Nov
    # 09:00): 120 h elapsed, 119 h of them paused → 1 h: pending, not breached.
    r.ticket("P2", "a1", local(2026, 11, 5, 9), category="complaint", status="pending")
    r.status("P2", None, "pending", local(2026, 11, 5, 10))
    r.write(store)
    as_of = local(2026, 11, 10, 9)
    paused = ScorecardSettings(pause_statuses=["pending"])
    found = judged(store, paused, as_of)
    assert (found["P1"].response_hours, found["P1"].resolution_hours) == (4.0, 27.0)
    assert (found["P2"].response_state, found["P2"].response_hours) == ("pending", 1.0)
    m = metrics_of(store, paused, "2026-11", as_of)
    assert (m["first_response_within_sla"], m["resolution_within_sla"], m["median_resolution_hours"]) == (
        1.0,
        1.0,
        27.0,
    )
    # Without pauses: P1 28 h and 51 h, P2 120 h — all breached.
    m = metrics_of(store, ScorecardSettings(), "2026-11", as_of)
    assert (m["first_response_within_sla"], m["resolution_within_sla"], m["median_resolution_hours"]) == (
        0.0,
        0.0,
        51.0,
    )
    # Business hours and pauses together (Mon–Fri 08–12, 14–17:30): response Mon 09:00 → Tue 13:00 is
    # 3 + 3.5 + 4 = 10.5 h, of which the pause (Mon 12:00 → Tue 12:00) is 3.5 + 4 = 7.5 h → 3 h;
    # resolution → Wed 12:00 is 10.5 + 3.5 + 4 = 18 h − 7.5 h = 10.5 h.
    both = judged(store, ScorecardSettings(sla_clock="business", pause_statuses=["pending"]), as_of)
    assert (both["P1"].response_hours, both["P1"].resolution_hours) == (3.0, 10.5)


def test_first_or_last_resolution_and_reopen_rate(store: Store) -> None:
    r = Rows()
    # R1 Mon 2 Nov 09:00: resolved Tue 09:00 (24 h), reopened Wed, resolved again Fri 6 Nov 09:00 (96 h).
    r.ticket(
        "R1",
        "a1",
        local(2026, 11, 2, 9),
        category="complaint",
        status="resolved",
        resolved=local(2026, 11, 6, 9),
    )
    for before, after, at in (
        (None, "open", (2, 9)),
        ("open", "resolved", (3, 9)),
        ("resolved", "open", (4, 9)),
        ("open", "resolved", (6, 9)),
    ):
        r.status("R1", before, after, local(2026, 11, *at))
    # R2 Mon 2 Nov 10:00: closed 20:00 (10 h), reopened Tue 10:00 and still open.
    r.ticket("R2", "a1", local(2026, 11, 2, 10), category="complaint", status="open")
    for before, after, at in (
        (None, "open", (2, 10)),
        ("open", "closed", (2, 20)),
        ("closed", "open", (3, 10)),
    ):
        r.status("R2", before, after, local(2026, 11, *at))
    r.write(store)
    as_of = local(2026, 11, 10)
    last = metrics_of(store, ScorecardSettings(), "2026-11", as_of)
    # Last: R1 took 96 h (breached), R2 is open past 48 h (breached); median of R1 alone = 96.
    assert (last["resolution_within_sla"], last["median_resolution_hours"]) == (0.0, 96.0)
    first = metrics_of(store, ScorecardSettings(resolution="first"), "2026-11", as_of)
    # First: R1 24 h and R2 10 h, both met; median (24 + 10) / 2 = 17.
    assert (first["resolution_within_sla"], first["median_resolution_hours"]) == (1.0, 17.0)
    # Both were resolved once and both reopened: 2 / 2, whichever resolution counts.
    assert last["reopen_rate"] == first["reopen_rate"] == 1.0


def test_self_logged_complaints_start_at_the_second_contact(store: Store) -> None:
    r = Rows()
    # S1 typed in during the patient's call (phone channel); the patient calls again Tue 10:00 (missed);
    # a1 calls back Wed 09:00: 23 h after the second contact, 48 h after creation.
    r.ticket("S1", "a1", local(2026, 11, 2, 9), category="complaint", channel="phone", contact="p1")
    r.call("K1", "a1", local(2026, 11, 2, 8, 55), contact="p1", direction="inbound")
    r.call("K2", "b1", local(2026, 11, 3, 10), contact="p1", direction="missed")
    r.call("K3", "a1", local(2026, 11, 4, 9), contact="p1")
    # S2 also self-logged, and the patient never called again.
    r.ticket("S2", "a1", local(2026, 11, 2, 11), category="complaint", channel="phone", contact="p2")
    # S3 came in online and was answered within the hour.
    r.ticket("S3", "a1", local(2026, 11, 2, 9), category="complaint", channel="online", contact="p3")
    r.call("K4", "a1", local(2026, 11, 2, 10), contact="p3")
    r.write(store)
    as_of = local(2026, 11, 10)
    created = metrics_of(store, ScorecardSettings(), "2026-11", as_of)
    assert created["first_response_within_sla"] == pytest.approx(1 / 3)  # S1 48 h and S2 unanswered breach
    second = ScorecardSettings(self_logged_clock="second_contact")
    assert metrics_of(store, second, "2026-11", as_of)["first_response_within_sla"] == 1.0  # S1 23 h, S3 1 h
    found = judged(store, second, as_of)
    assert (found["S1"].clock_start, found["S1"].response_hours) == (local(2026, 11, 3, 10), 23.0)
    assert found["S2"].response_state == "not_owed"
    walk_in_only = ScorecardSettings(self_logged_clock="second_contact", self_logged_channels=["walk_in"])
    assert metrics_of(store, walk_in_only, "2026-11", as_of)["first_response_within_sla"] == pytest.approx(
        1 / 3
    )


def test_what_counts_as_a_response(store: Store) -> None:
    r = Rows()
    # Q1 Mon 2 Nov 09:00: CRM field says 10:00 (1 h); a linked follow-up was done 11:00 (2 h);
    # a call to the contact Tue 12:00 (27 h).
    r.ticket(
        "Q1",
        "a1",
        local(2026, 11, 2, 9),
        category="complaint",
        contact="q1",
        first_response=local(2026, 11, 2, 10),
    )
    r.follow_up("F1", "a1", local(2026, 11, 2, 18), completed=local(2026, 11, 2, 11), ticket="Q1")
    r.call("K1", "a1", local(2026, 11, 3, 12), contact="q1")
    # Q2 has only a planned (not done) follow-up: no response at all.
    r.ticket("Q2", "a1", local(2026, 11, 2, 9), category="complaint", contact="q2")
    r.follow_up("F2", "a1", local(2026, 11, 2, 10), ticket="Q2")
    r.write(store)
    as_of = local(2026, 11, 10)
    for sources, via, hours in (
        (["field", "calls", "follow_ups"], "field", 1.0),
        (["calls", "follow_ups"], "follow_up", 2.0),
        (["calls"], "call", 27.0),
    ):
        found = judged(store, ScorecardSettings(response_sources=sources), as_of)
        assert (found["Q1"].response_via, found["Q1"].response_hours) == (via, hours)
        assert (found["Q2"].first_response_at, found["Q2"].response_state) == (None, "breached")


def test_everything_is_judged_as_of_the_given_moment(store: Store) -> None:
    r = Rows()
    r.ticket("A1", "a1", local(2026, 11, 2, 9), category="complaint", contact="x1")  # answered 20:00
    r.call("K1", "a1", local(2026, 11, 2, 20), contact="x1")
    r.ticket("A2", "a1", local(2026, 11, 1, 9), category="complaint", contact="x2")  # never answered
    r.write(store)
    # Mon 2 Nov 12:00: A1's call has not happened yet and A1 is 3 h old (pending, not counted);
    # A2 is 27 h old unanswered (breached) → 0 / 1.
    early = metrics_of(store, ScorecardSettings(), "2026-11", local(2026, 11, 2, 12))
    assert early["first_response_within_sla"] == 0.0
    assert early["contacts_served"] == 2  # x1, x2 from the tickets; the call is in the future
    # Tue 10:00: A1 was answered in 11 h → 1 / 2.
    later = compute_scorecards(
        store, ScorecardSettings(), PLAIN, TZ, "2026-11", as_of=local(2026, 11, 3, 10)
    )[0]
    assert later.metrics["first_response_within_sla"] == 0.5
    # Month to date: the follow-up target is 60 × (2 days 10 h of 30 days) = 60 × 58 / 720 = 4.83.
    assert later.follow_ups_target == pytest.approx(4.83)
    # Scheduled hours so far: Mon 7.5 h + Tue 08:00–10:00 2 h = 9.5 h; 2 contacts → 2 / 9.5.
    assert later.metrics["contacts_per_hour"] == pytest.approx(2 / 9.5)
    # Before the first complaint was even answered or late there is nothing to judge: null.
    none_yet = metrics_of(store, ScorecardSettings(), "2026-11", local(2026, 11, 1, 12))
    assert none_yet["first_response_within_sla"] is None
