"""Golden test: one hand-built month in which every metric has a value worked out by hand.

Clinic zone Asia/Shanghai; calendar Mon–Fri 08:00–12:00 + 14:00–17:30 (7.5 h), no statutory
holidays; default [scorecard] settings (calendar-hour SLA clock, 24 h / 48 h, "last" resolution).
Period 2026-10, judged as of 2026-11-10 00:00 local. Agent a1 ("Alice") does everything; b1 ("Bob")
has one call. Every store test runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from test_metrics_support import TZ, Rows, local, weekday_calendar

from connector.metrics import ScorecardSettings, compute_scorecards, explain, ticket_sla
from connector.store import Store, open_store

AS_OF = local(2026, 11, 10)
SETTINGS = ScorecardSettings()
CALENDAR = weekday_calendar()


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    store = open_store(db_url)
    yield store
    store.dispose()


def october(r: Rows) -> None:
    r.agent("a1", "Alice")
    r.agent("b1", "Bob")
    # Tickets (owner a1). Complaints T1–T3; T7 is November's; T8 is deleted.
    r.ticket(
        "T1",
        "a1",
        local(2026, 10, 5, 9),
        category="complaint",
        contact="c1",
        satisfaction=5,
        first_response=local(2026, 10, 5, 10),
        status="resolved",
        resolved=local(2026, 10, 6, 9),
    )
    r.ticket(
        "T2",
        "a1",
        local(2026, 10, 8, 9),
        category="complaint",
        contact="c2",
        satisfaction=3,
        status="closed",
        resolved=local(2026, 10, 12, 9),
    )
    r.ticket("T3", "a1", local(2026, 10, 20, 9), category="complaint", contact="c3")
    r.ticket(
        "T4",
        "a1",
        local(2026, 10, 10, 9),
        category="consultation",
        contact="c4",
        satisfaction=4,
        status="resolved",
        resolved=local(2026, 10, 10, 21),
    )
    r.ticket(
        "T5",
        "a1",
        local(2026, 10, 15, 9),
        category="appointment",
        contact="c1",
        status="resolved",
        resolved=local(2026, 10, 19, 9),
    )
    r.status("T5", None, "open", local(2026, 10, 15, 9))
    r.status("T5", "open", "resolved", local(2026, 10, 17, 9))
    r.status("T5", "resolved", "open", local(2026, 10, 18, 9))  # reopened
    r.status("T5", "open", "resolved", local(2026, 10, 19, 9))
    r.ticket("T6", "a1", local(2026, 10, 31, 23, 30), category="other", contact="c5")  # last local evening
    r.ticket("T7", "a1", local(2026, 11, 1, 0, 30), category="consultation", contact="c13")
    r.ticket("T8", "a1", local(2026, 10, 25, 9), category="complaint", contact="c14", deleted=True)
    # Calls.
    r.call("K1", "a1", local(2026, 10, 9, 10), contact="c2", purpose="consultation", duration=400)
    r.call("K2", "a1", local(2026, 10, 11, 10), contact="c9", purpose="booking", duration=200)
    r.call(
        "K3",
        "a1",
        local(2026, 10, 11, 11),
        contact="c9",
        direction="inbound",
        purpose="booking",
        duration=120,
    )
    r.call(
        "K4", "a1", local(2026, 10, 12, 10), contact="c10", direction="missed", purpose="booking", duration=0
    )
    r.call("K5", "a1", local(2026, 10, 13, 10), contact="c11", purpose="other", duration=50)
    r.call(
        "K6", "a1", local(2026, 10, 14, 10), contact="c15", purpose="consultation", duration=700, deleted=True
    )
    r.call("K7", "a1", local(2026, 10, 20, 8), contact="c3", purpose="other", duration=60)  # before T3
    r.call("K8", "b1", local(2026, 10, 20, 10), contact="c3", purpose="other", duration=60)  # not a1's
    # Follow-ups (a1). F1's due date was date-only: the mapping makes it the next local midnight.
    r.follow_up("F1", "a1", local(2026, 10, 11), completed=local(2026, 10, 10, 15), contact="c6")
    r.follow_up("F2", "a1", local(2026, 10, 12, 18), completed=local(2026, 10, 13, 9), contact="c7")
    r.follow_up("F3", "a1", local(2026, 10, 20, 18), contact="c12")
    r.follow_up(
        "F4", "a1", local(2026, 10, 21, 12), completed=local(2026, 10, 21, 9), contact="c3", ticket="T3"
    )
    r.follow_up("F5", "a1", local(2026, 11, 3, 12), contact="c16")
    r.follow_up("F6", "a1", local(2026, 10, 15, 12), contact="c17", status="cancelled")
    r.follow_up("F7", "a1", None, completed=local(2026, 10, 25, 10), contact="c8")
    # Surveys.
    r.survey("S1", "a1", local(2026, 10, 12, 10), 5)
    r.survey("S2", "a1", local(2026, 10, 13, 10), 2, ticket="T1")  # T1 carries its own rating
    r.survey("S3", None, local(2026, 10, 14, 10), 1, ticket="T5")  # owner taken from T5
    r.survey("S4", "a1", local(2026, 10, 16, 10), 5, deleted=True)
    # Assessments.
    r.assessment("A1", "a1", "accuracy_audit", 80, local(2026, 10, 5, 10))
    r.assessment("A2", "a1", "accuracy_audit", 90, local(2026, 10, 20, 10))
    r.assessment("A3", "a1", "politeness_audit", 95, local(2026, 10, 6, 10))
    r.assessment("A4", "a1", "knowledge_exam", 70, local(2026, 10, 7, 10))
    r.assessment("A5", "a1", "policy_exam", 90, local(2026, 10, 8, 10))
    r.assessment("A6", "a1", "self", 50, local(2026, 10, 9, 10))  # no metric uses self ratings
    r.assessment("A7", "a1", "knowledge_exam", 10, local(2026, 11, 2, 10))  # November
    r.assessment("A8", "a1", "knowledge_exam", 0, local(2026, 10, 9, 10), deleted=True)


@pytest.fixture
def loaded(store: Store) -> Store:
    rows = Rows()
    october(rows)
    rows.write(store)
    return store


def test_every_metric_by_hand(loaded: Store) -> None:
    cards = {
        c.agent_id: c for c in compute_scorecards(loaded, SETTINGS, CALENDAR, TZ, "2026-10", as_of=AS_OF)
    }
    alice = cards["a1"].metrics
    expected = {
        # T1 5★, T2 3★, T4 4★ + surveys S1 5★, S3 1★ (S2 repeats T1's rating, S4 deleted):
        # 3 of 5 are ≥ 4 → 0.6; mean (5 + 3 + 4 + 5 + 1) / 5 = 3.6.
        "satisfaction_rate": 0.6,
        "avg_satisfaction": 3.6,
        "accuracy_audit": 85.0,  # (80 + 90) / 2
        "politeness_audit": 95.0,
        # T1 answered in 1 h (CRM field), T2 in 25 h (K1, a call to its contact): breached,
        # T3 in exactly 24 h (F4, linked follow-up; K7 came before the ticket, K8 is Bob's): met. 2 / 3.
        "first_response_within_sla": 2 / 3,
        # T1 24 h met, T2 96 h breached, T3 open 21 days at as_of: breached. 1 / 3.
        "resolution_within_sla": 1 / 3,
        # Resolved: T4 12 h, T1 24 h, T2 96 h, T5 96 h (its current resolution) → (24 + 96) / 2.
        "median_resolution_hours": 60.0,
        "tickets_handled": 6,  # T1–T6 (T6 at 23:30 on 31 Oct counts; T7 is November's; T8 deleted)
        "complaints_handled": 3,
        # Tickets c1–c5; answered calls add c9, c11 (c10's call was missed, c15's deleted);
        # follow-ups done add c6, c7, c8 (F3 to c12 not done). 10 contacts.
        "contacts_served": 10,
        # Due in October: F1 on time, F2 late, F3 not done, F4 on time (F6 cancelled, F7 has no due
        # date, F5 is November's) → 2 / 4.
        "follow_up_completion": 0.5,
        "follow_ups_done": 4,  # F1, F2, F4, F7
        # Judged: K1 consultation 400 s in 300–600, K2 booking 200 s > 180, K3 booking 120 s;
        # K4 missed, K5/K7 "other" have no band, K6 deleted → 2 / 3.
        "call_duration_compliance": 2 / 3,
        # October 2026 has 22 weekdays × 7.5 h = 165 scheduled hours: 10 / 165.
        "contacts_per_hour": 10 / 165,
        "knowledge_score": 80.0,  # knowledge exam 70 and policy exam 90 (A7 November, A8 deleted)
        "reopen_rate": 0.25,  # T5 reopened, of T1, T2, T4, T5 ever resolved
    }
    assert alice == pytest.approx(expected)
    card = cards["a1"]
    assert card.follow_ups_target == 60.0
    # Quality: satisfaction 0.6 / 0.8 = 75, accuracy 85 / 90 = 94.44, politeness 100 → 89.81.
    # Efficiency: response 66.67, resolution 33.33, follow-ups 50, done 4 / 60 = 6.67,
    # calls (2/3) / 0.9 = 74.07 → 230.74 / 5 = 46.15. Knowledge: 80 / 90 = 88.89.
    assert card.categories == pytest.approx({"quality": 89.81, "efficiency": 46.15, "knowledge": 88.89})
    # (40 × 89.81 + 30 × 46.15 + 30 × 88.89) / 100 = 76.44 → below 80: no bonus.
    assert card.composite == pytest.approx(76.44)
    assert (card.bonus_pct, card.rank, card.trend, card.missing) == (0.0, 1, None, ())


def test_an_agent_with_little_data_is_null_not_zero(loaded: Store) -> None:
    bob = compute_scorecards(loaded, SETTINGS, CALENDAR, TZ, "2026-10", as_of=AS_OF, agent="b1")
    assert len(bob) == 1
    card = bob[0]
    # One "other" call: a contact served, nothing to judge. Counts are 0, rates null.
    assert card.metrics["contacts_served"] == 1 and card.metrics["tickets_handled"] == 0
    assert card.metrics["satisfaction_rate"] is None and card.metrics["call_duration_compliance"] is None
    # Efficiency still has follow_ups_done 0 of 60 → 0, so the composite is 0 and Bob ranks second.
    assert (card.categories["efficiency"], card.composite, card.rank) == (0.0, 0.0, 2)
    assert {"satisfaction_rate", "knowledge_score", "quality", "knowledge"} <= set(card.missing)
    assert "efficiency" not in card.missing and "follow_ups_done" not in card.missing


def test_month_boundaries_are_local(loaded: Store) -> None:
    november = compute_scorecards(loaded, SETTINGS, CALENDAR, TZ, "2026-11", as_of=AS_OF, agent="a1")[0]
    assert november.metrics["tickets_handled"] == 1  # only T7 (00:30 on 1 Nov local = 16:30 UTC 31 Oct)
    assert november.metrics["knowledge_score"] == 10.0  # A7


def test_explain_lists_the_records_behind_each_number(loaded: Store) -> None:
    why = explain(loaded, SETTINGS, CALENDAR, TZ, "2026-10", "a1", as_of=AS_OF)
    assert why.scorecard.composite == pytest.approx(76.44)
    assert why.scheduled_hours == 165

    def outcomes(metric: str) -> dict[str, str]:
        return {e.record_id: e.outcome for e in why.for_metric(metric)}

    response = {
        e.record_id: (e.outcome, e.detail["via"], e.detail["hours"])
        for e in why.for_metric("first_response_within_sla")
    }
    assert response == {
        "T1": ("met", "field", 1.0),
        "T2": ("breached", "call", 25.0),
        "T3": ("met", "follow_up", 24.0),
    }
    assert outcomes("resolution_within_sla") == {"T1": "met", "T2": "breached", "T3": "breached"}
    assert outcomes("satisfaction_rate") == {
        "T1": "good",
        "T2": "not_good",
        "T4": "good",
        "S1": "good",
        "S2": "on_ticket",
        "S3": "not_good",
    }
    assert outcomes("call_duration_compliance") == {
        "K1": "within",
        "K2": "outside",
        "K3": "within",
        "K4": "missed",
        "K5": "no_band",
        "K7": "no_band",
    }
    assert outcomes("follow_up_completion") == {
        "F1": "on_time",
        "F2": "late",
        "F3": "not_done",
        "F4": "on_time",
        "F7": "no_due_date",
    }
    assert outcomes("reopen_rate") == {
        "T1": "not_reopened",
        "T2": "not_reopened",
        "T4": "not_reopened",
        "T5": "reopened",
    }
    assert outcomes("knowledge_score") == {"A4": "counted", "A5": "counted"}
    assert [e.counted for e in why.for_metric("satisfaction_rate")].count(True) == 5
    assert sorted(outcomes("tickets_handled")) == ["T1", "T2", "T3", "T4", "T5", "T6"]
    with pytest.raises(LookupError, match="no scorecard"):
        explain(loaded, SETTINGS, CALENDAR, TZ, "2026-10", "nobody", as_of=AS_OF)


def test_ticket_sla_is_the_scorecards_own_judgement(loaded: Store) -> None:
    judged = ticket_sla(
        loaded,
        SETTINGS,
        CALENDAR,
        created_from=local(2026, 10, 1),
        created_to=local(2026, 11, 1),
        as_of=AS_OF,
    )
    states = {s.ticket_id: (s.response_state, s.resolution_state, s.agent) for s in judged}
    assert states == {
        "T1": ("met", "met", ("zoho", "a1")),
        "T2": ("breached", "breached", ("zoho", "a1")),
        "T3": ("met", "breached", ("zoho", "a1")),
    }
    t3 = next(s for s in judged if s.ticket_id == "T3")
    assert t3.resolution_hours == 495.0  # 20 Oct 09:00 → 10 Nov 00:00: 20 days 15 h
    assert t3.first_response_at == local(2026, 10, 21, 9) and t3.response_via == "follow_up"
