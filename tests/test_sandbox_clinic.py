"""The synthetic clinic: deterministic by seed, realistic in its shares, and evolving inside its window."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, time, timedelta

import pytest

from connector.sandbox.clinic import (
    CHURNING,
    CLINIC_TZ,
    ENTITIES,
    HARD_DELETED,
    LIVE,
    SOFT_DELETED,
    Clinic,
    generate_clinic,
)

NOW = datetime(2026, 11, 1, 4, 0, tzinfo=UTC)


def snapshot(clinic: Clinic) -> dict[str, list[tuple[object, ...]]]:
    return {entity: [dataclasses.astuple(r) for r in clinic.records(entity)] for entity in ENTITIES}


def local_deadline(due) -> datetime:  # type: ignore[no-untyped-def]
    """The end of the due day in the clinic's time zone (a date-only due date is met before it)."""
    return datetime.combine(due + timedelta(days=1), time(0), CLINIC_TZ)


@pytest.fixture(scope="module")
def clinic() -> Clinic:
    return generate_clinic(3, "medium", now=NOW)


def test_same_seed_gives_identical_clinic_and_other_seed_differs() -> None:
    first = generate_clinic(42, "small", now=NOW)
    second = generate_clinic(42, "small", now=NOW)
    other = generate_clinic(43, "small", now=NOW)
    assert snapshot(first) == snapshot(second)
    assert first.name == second.name
    assert snapshot(first)["tickets"] != snapshot(other)["tickets"]
    assert snapshot(first)["contacts"] != snapshot(other)["contacts"]


def test_sizes_and_explicit_counts() -> None:
    small = generate_clinic(1, "small", now=NOW)
    assert 200 <= len(small.tickets) <= 500 and 200 <= len(small.contacts) <= 500
    custom = generate_clinic(1, {"contacts": 50, "tickets": 20, "calls": 0}, now=NOW)
    assert (len(custom.contacts), len(custom.tickets), len(custom.calls)) == (50, 20, 0)
    assert len(custom.agents) == len(small.agents)  # missing entities take the small preset
    with pytest.raises(ValueError, match="unknown entities"):
        generate_clinic(1, {"patients": 5}, now=NOW)
    with pytest.raises(ValueError, match="unknown size"):
        generate_clinic(1, "huge", now=NOW)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="aware"):
        generate_clinic(1, "small", now=datetime(2026, 11, 1))


def test_medium_is_big_enough_for_the_end_to_end_paging_tests(clinic: Clinic) -> None:
    assert len(clinic.contacts) >= 12_500
    assert len(clinic.tickets) >= 5_000


def test_records_are_well_formed(clinic: Clinic) -> None:
    for entity in ENTITIES:
        for record in clinic.records(entity):
            assert record.created.tzinfo is not None and record.modified.tzinfo is not None
            assert record.created.microsecond == 0 and record.modified.microsecond == 0
            assert record.created <= record.modified <= clinic.now
            assert record.deleted == LIVE and record.deleted_at is None
    assert [t.key for t in clinic.tickets] == list(range(len(clinic.tickets)))
    created = [c.created for c in clinic.contacts]
    assert created == sorted(created)  # ids follow creation order, as CRM ids do
    assert any(c.created < clinic.start for c in clinic.contacts)
    assert all(clinic.start <= t.created <= clinic.now for t in clinic.tickets)
    for ticket in clinic.tickets:
        assert clinic.contacts[ticket.contact].created <= ticket.created
        if ticket.status == "open":
            assert ticket.first_response is None and ticket.resolved is None
        elif ticket.status == "pending":
            assert ticket.first_response is not None and ticket.resolved is None
        else:
            assert ticket.resolved is not None and ticket.first_response is not None
            assert ticket.created <= ticket.first_response <= ticket.resolved
        if ticket.satisfaction is not None:
            assert 1 <= ticket.satisfaction <= 5
    for follow_up in clinic.follow_ups:
        assert (follow_up.completed is not None) == (follow_up.status == "done")
        if follow_up.ticket is not None:
            assert clinic.tickets[follow_up.ticket].contact == follow_up.contact


def test_staff_and_patients_look_like_a_chinese_clinic(clinic: Clinic) -> None:
    agents = clinic.agents
    assert clinic.name.endswith("卫生院")
    assert {"客服部", "公卫科"} <= {a.department for a in agents}
    assert any(not a.active for a in agents) and sum(a.active for a in agents) > len(agents) * 0.8
    assert agents[0].admin and agents[0].role == "客服主管"
    assert len({a.email for a in agents}) == len(agents)
    for person in [*agents, *clinic.contacts[:500]]:
        assert 2 <= len(person.name) <= 3 and all("\u4e00" <= ch <= "\u9fff" for ch in person.name)
        assert len(person.mobile) == 11 and person.mobile.startswith("1") and person.mobile.isdigit()
    emails = [c.email for c in clinic.contacts if c.email]
    assert 0.2 < len(emails) / len(clinic.contacts) < 0.5
    assert len(set(emails)) == len(emails)


def test_inactive_agents_own_no_new_work(clinic: Clinic) -> None:
    for agent in (a for a in clinic.agents if not a.active):
        left = agent.modified
        assert all(t.created < left for t in clinic.tickets if t.owner == agent.key)


def test_complaint_timing_has_late_missing_and_open_cases(clinic: Clinic) -> None:
    complaints = [t for t in clinic.tickets if t.category == "complaint"]
    assert 0.2 < len(complaints) / len(clinic.tickets) < 0.4
    answered = [t for t in complaints if t.first_response is not None]
    on_time = [t for t in answered if t.first_response - t.created <= timedelta(hours=24)]
    late = [t for t in answered if t.first_response - t.created > timedelta(hours=24)]
    never = [
        t for t in complaints if t.first_response is None and clinic.now - t.created > timedelta(hours=24)
    ]
    assert len(on_time) / len(complaints) > 0.75
    assert late and never
    resolved = [t for t in complaints if t.resolved is not None]
    within = [t for t in resolved if t.resolved - t.created <= timedelta(hours=48)]
    assert 0.65 < len(within) / len(resolved) < 0.95
    assert any(t.resolved is None and clinic.now - t.created > timedelta(hours=48) for t in complaints)
    assert {t.status for t in clinic.tickets} == {"open", "pending", "resolved", "closed"}
    assert any(t.reopened for t in clinic.tickets)
    assert {t.channel for t in clinic.tickets} >= {"phone", "online", "walk_in", "wechat"}


def test_satisfaction_is_mostly_good_with_some_low_scores(clinic: Clinic) -> None:
    finished = [t for t in clinic.tickets if t.resolved is not None]
    rated = [t.satisfaction for t in finished if t.satisfaction is not None]
    assert 0.4 < len(rated) / len(finished) < 0.8
    assert 0.6 < sum(1 for s in rated if s >= 4) / len(rated) < 0.9
    assert any(s <= 2 for s in rated)
    assert any(s.score <= 2 for s in clinic.surveys)
    assert all(clinic.tickets[s.ticket].satisfaction is None for s in clinic.surveys if s.ticket is not None)


def test_work_happens_mostly_in_local_working_hours(clinic: Clinic) -> None:
    hours = [t.created.astimezone(CLINIC_TZ).time() for t in clinic.tickets]
    in_hours = sum(1 for h in hours if time(8) <= h <= time(17, 30))
    assert in_hours / len(hours) > 0.75


def test_follow_ups_are_mostly_on_time_some_overdue_some_cancelled(clinic: Clinic) -> None:
    follow_ups = clinic.follow_ups
    past_due = [f for f in follow_ups if local_deadline(f.due) <= clinic.now]
    on_time = [f for f in past_due if f.completed is not None and f.completed < local_deadline(f.due)]
    overdue = [f for f in past_due if f.status == "planned"]
    assert on_time and len(on_time) / len(past_due) > 0.65
    assert overdue and any(f.status == "cancelled" for f in follow_ups)
    assert any(f.completed is not None and f.completed >= local_deadline(f.due) for f in follow_ups)  # late
    assert any(f.status == "planned" and local_deadline(f.due) > clinic.now for f in follow_ups)  # upcoming
    linked = sum(1 for f in follow_ups if f.ticket is not None)
    assert 0.3 < linked / len(follow_ups) < 0.8
    assert {f.kind for f in follow_ups} == {"revisit", "callback"}


def test_call_durations_sit_around_the_policy_bands(clinic: Clinic) -> None:
    answered = [c for c in clinic.calls if c.direction != "missed"]
    bookings = [c.duration_s for c in answered if c.purpose == "booking"]
    consultations = [c.duration_s for c in answered if c.purpose == "consultation"]
    assert 0.7 < sum(1 for d in bookings if d <= 180) / len(bookings) < 0.9
    assert 0.6 < sum(1 for d in consultations if 300 <= d <= 600) / len(consultations) < 0.85
    assert all(c.duration_s == 0 for c in clinic.calls if c.direction == "missed")
    assert {c.direction for c in clinic.calls} == {"inbound", "outbound", "missed"}
    assert any(c.ticket is not None for c in clinic.calls) and any(c.contact is None for c in clinic.calls)


def test_advance_creates_modifies_and_deletes_inside_the_window() -> None:
    clinic = generate_clinic(8, "small", now=NOW)
    before = {entity: {r.key: r.modified for r in clinic.records(entity)} for entity in ENTITIES}
    version = clinic.version
    summary = clinic.advance(timedelta(hours=24), rng_seed=5, change_share=0.05)
    assert (summary.start, summary.end, clinic.now) == (
        NOW,
        NOW + timedelta(hours=24),
        NOW + timedelta(hours=24),
    )
    assert clinic.version > version
    for entity in CHURNING:
        counts = summary.counts()[entity]
        assert counts["created"] >= 1 and counts["modified"] >= 1
        assert counts["soft_deleted"] >= 1 and counts["hard_deleted"] >= 1
        rows = {row.key: row for row in clinic.truth(entity)}
        for key in summary.created[entity]:
            assert key not in before[entity]
            assert NOW < rows[key].created <= rows[key].modified <= clinic.now
        for key in summary.modified[entity]:
            assert NOW < rows[key].modified <= clinic.now and rows[key].deleted is None
        for key in summary.soft_deleted[entity]:
            assert rows[key].deleted == "soft" and NOW < rows[key].deleted_at <= clinic.now
        for key in summary.hard_deleted[entity]:
            assert rows[key].deleted == "hard" and NOW < rows[key].deleted_at <= clinic.now
        touched = {*summary.modified[entity], *summary.created[entity]}
        for key, row in rows.items():  # nothing else moved
            if key not in touched:
                assert row.modified == before[entity][key]
    assert [a.modified for a in clinic.agents] == list(before["agents"].values())


def test_advance_follows_lifecycles() -> None:
    clinic = generate_clinic(9, "small", now=NOW)
    statuses = {t.key: t.status for t in clinic.tickets}
    summary = clinic.advance(timedelta(hours=12), rng_seed=2, change_share=0.1)
    order = ["open", "pending", "resolved", "closed"]
    progressed = 0
    for key in summary.modified["tickets"]:
        ticket, old = clinic.tickets[key], statuses[key]
        if old == "open":
            assert ticket.status == "pending" and ticket.first_response == ticket.modified
        if order.index(ticket.status) > order.index(old):
            progressed += 1
    assert progressed >= 1


def test_advance_is_deterministic_by_seed() -> None:
    def run(rng_seed: int) -> dict[str, list[tuple[object, ...]]]:
        clinic = generate_clinic(10, "small", now=NOW)
        clinic.advance(timedelta(hours=6), rng_seed=rng_seed)
        clinic.advance(timedelta(hours=6), rng_seed=rng_seed + 100)
        return snapshot(clinic)

    assert run(4) == run(4)
    assert run(4) != run(5)


def test_hard_deletes_empty_the_recycle_bin_first() -> None:
    clinic = generate_clinic(10, "small", now=NOW)
    first = clinic.advance(timedelta(hours=6), rng_seed=4)
    second = clinic.advance(timedelta(hours=6), rng_seed=5)
    for entity in CHURNING:
        purged = set(second.hard_deleted[entity]) & set(first.soft_deleted[entity])
        assert purged, entity
        for key in purged:
            record = clinic.records(entity)[key]
            assert record.deleted == HARD_DELETED and second.start < record.deleted_at <= second.end


def test_default_seed_differs_between_advances_but_repeats_across_runs() -> None:
    a, b = generate_clinic(12, "small", now=NOW), generate_clinic(12, "small", now=NOW)
    s1, s2 = a.advance(timedelta(hours=1)), a.advance(timedelta(hours=1))
    assert s1.seed != s2.seed
    assert b.advance(timedelta(hours=1)).seed == s1.seed


def test_zero_change_share_only_moves_the_clock() -> None:
    clinic = generate_clinic(13, "small", now=NOW)
    before = snapshot(clinic)
    summary = clinic.advance(timedelta(days=2), change_share=0)
    assert snapshot(clinic) == before and clinic.now == NOW + timedelta(days=2)
    assert all(not any(c.values()) for c in summary.counts().values())
    with pytest.raises(ValueError):
        clinic.advance(timedelta(0))
    with pytest.raises(ValueError):
        clinic.advance(timedelta(hours=1), change_share=2)


def test_touch_and_delete_for_sandbox_writes() -> None:
    clinic = generate_clinic(14, "small", now=NOW)
    version = clinic.version
    clinic.touch("contacts", 3)
    assert clinic.contacts[3].modified == NOW and clinic.version == version + 1
    clinic.delete("tickets", 5, hard=False)
    assert clinic.tickets[5].deleted == SOFT_DELETED
    with pytest.raises(ValueError):
        clinic.delete("tickets", 5, hard=False)
    clinic.delete("tickets", 5, hard=True)
    assert clinic.tickets[5].deleted == HARD_DELETED
    assert clinic.counts()["tickets"]["hard_deleted"] == 1
    with pytest.raises(KeyError):
        clinic.records("patients")


def test_state_is_small_enough_for_the_large_preset() -> None:
    """Records use __slots__: no per-instance dict, so 150k records stay compact."""
    clinic = generate_clinic(1, {"contacts": 10, "tickets": 10}, now=NOW)
    for entity in ENTITIES:
        record = clinic.records(entity)[0]
        assert not hasattr(record, "__dict__")
