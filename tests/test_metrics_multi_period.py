"""Several periods at once give exactly the scorecards of each period computed alone.

A computation of several periods shares connections and work, and a period needed only for the
previous period's trend is computed leaner (only the metrics its composite rests on). Neither may
change a number: on a seeded, irregular store — complaints answered by calls and follow-ups, open
ones past their limit, pauses and reopenings in the status history, records around local month
ends, deleted rows — every scorecard of a series must equal the one computed for its month alone,
and each trend must equal the difference of two fully computed composites. On SQLite and
PostgreSQL, with the default settings, with business hours, pauses and the other vendor choices,
and with the lean-computed metrics (median, contacts per hour, reopen rate) scored.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from test_metrics_support import TZ, Rows, local, weekday_calendar

from connector.metrics import ScorecardSettings, compute_scorecards, compute_series
from connector.store import Store, open_store

CALENDAR = weekday_calendar("CN")  # National Day week off, Sat 10 Oct 2026 a make-up working day
AS_OF = local(2026, 10, 20, 15, 30)  # mid-October: open complaints past and within their limits
MONTHS = ["2026-07", "2026-08", "2026-09", "2026-10"]
AGENTS = ("a1", "a2", "a3")
CONTACTS = [f"c{i}" for i in range(12)]  # few contacts, so responses by contact are common

SETTINGS = {
    "defaults": ScorecardSettings(),
    "business_paused_first": ScorecardSettings(
        sla_clock="business",
        pause_statuses=["pending"],
        resolution="first",
        self_logged_clock="second_contact",
    ),
    "lean_metrics_scored": ScorecardSettings(
        metric_clocks={"median_resolution_hours": "business"},
        pause_statuses=["pending"],
        categories={
            "efficiency": [
                "first_response_within_sla",
                "resolution_within_sla",
                "median_resolution_hours",
                "contacts_per_hour",
                "reopen_rate",
            ]
        },
        targets={"median_resolution_hours": 24.0, "contacts_per_hour": 2.0, "reopen_rate": 0.05},
    ),
}


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    store = open_store(db_url)
    _irregular_rows(random.Random(5)).write(store)
    yield store
    store.dispose()


def _instant(rng: random.Random) -> datetime:
    """A local instant from late June to late October, often within a day of a month's end."""
    if rng.random() < 0.3:
        month_end = local(2026, rng.choice([7, 8, 9, 10]), 1)
        return month_end + timedelta(minutes=rng.randrange(-24 * 60, 24 * 60))
    return local(2026, 6, 25) + timedelta(minutes=rng.randrange(122 * 24 * 60))


def _later(rng: random.Random, at: datetime, hours: float) -> datetime:
    return at + timedelta(minutes=int(rng.expovariate(1 / hours) * 60))


def _tickets(rows: Rows, rng: random.Random) -> None:
    for i in range(160):
        created, owner, ticket = _instant(rng), rng.choice(AGENTS), f"t{i}"
        resolved = _later(rng, created, 40) if rng.random() < 0.7 else None
        status = "resolved" if resolved and resolved <= AS_OF else rng.choice(["open", "pending"])
        rows.ticket(
            ticket,
            owner,
            created,
            category=rng.choice(["complaint", "complaint", "consultation", "appointment"]),
            contact=rng.choice(CONTACTS),
            channel=rng.choice(["phone", "online"]),
            status=status,
            resolved=resolved,
            first_response=_later(rng, created, 20) if rng.random() < 0.3 else None,
            satisfaction=rng.choice([None, 1, 3, 4, 5]),
            deleted=rng.random() < 0.05,
        )
        if rng.random() < 0.5:  # pauses and reopenings, some after as_of (not happened yet)
            at = _later(rng, created, 6)
            rows.status(ticket, "open", "pending", at)
            at = _later(rng, at, 10)
            rows.status(ticket, "pending", "resolved", at)
            if rng.random() < 0.4:
                rows.status(ticket, "resolved", "open", _later(rng, at, 8))


def _activity(rows: Rows, rng: random.Random) -> None:
    for i in range(300):
        at, linked = _instant(rng), f"t{rng.randrange(160)}" if rng.random() < 0.4 else None
        rows.call(
            f"k{i}",
            rng.choice(AGENTS),
            at,
            contact=rng.choice(CONTACTS),
            ticket=linked,
            direction=rng.choice(["outbound", "inbound", "missed"]),
            purpose=rng.choice(["booking", "consultation", "other"]),
            duration=rng.choice([None, 90, 200, 400, 700]),
            deleted=rng.random() < 0.05,
        )
    for i in range(200):
        due, done = _instant(rng), rng.random()
        rows.follow_up(
            f"f{i}",
            rng.choice(AGENTS),
            None if rng.random() < 0.1 else due,
            completed=_later(rng, due - timedelta(hours=12), 12) if done < 0.7 else None,
            contact=rng.choice(CONTACTS),
            ticket=f"t{rng.randrange(160)}" if rng.random() < 0.4 else None,
            status="cancelled" if done > 0.95 else None,
            deleted=rng.random() < 0.05,
        )
    for i in range(60):
        ticket = f"t{rng.randrange(160)}" if rng.random() < 0.3 else None
        rows.survey(f"s{i}", rng.choice(AGENTS), _instant(rng), rng.randint(1, 5), ticket=ticket)
    for i in range(40):
        kind = rng.choice(["knowledge_exam", "policy_exam", "accuracy_audit", "politeness_audit"])
        rows.assessment(f"x{i}", rng.choice(AGENTS), kind, rng.randrange(50, 101), _instant(rng))


def _irregular_rows(rng: random.Random) -> Rows:
    rows = Rows()
    for agent in AGENTS:
        rows.agent(agent, agent.upper())
    _tickets(rows, rng)
    _activity(rows, rng)
    return rows


@pytest.mark.parametrize("name", list(SETTINGS))
def test_a_series_equals_each_period_computed_alone(store: Store, name: str) -> None:
    settings = SETTINGS[name]
    series = compute_series(store, settings, CALENDAR, TZ, MONTHS, as_of=AS_OF)
    alone = [compute_scorecards(store, settings, CALENDAR, TZ, month, as_of=AS_OF) for month in MONTHS]
    assert [[card.as_json() for card in cards] for cards in series] == [
        [card.as_json() for card in cards] for cards in alone
    ]
    # On a caller's connection the periods are computed one after another: the same again.
    with store.begin() as conn:
        sequential = compute_series(conn, settings, CALENDAR, TZ, MONTHS, as_of=AS_OF)
    assert [[card.as_json() for card in cards] for cards in sequential] == [
        [card.as_json() for card in cards] for cards in alone
    ]
    # The data reaches every corner the lean trend computation could get wrong.
    metrics = [card.metrics for cards in series for card in cards]
    assert any(m["first_response_within_sla"] not in (None, 0.0, 1.0) for m in metrics)
    assert all(m["median_resolution_hours"] is not None and m["reopen_rate"] is not None for m in metrics)
    assert any(m["reopen_rate"] for m in metrics)


@pytest.mark.parametrize("name", list(SETTINGS))
def test_a_trend_computed_lean_equals_the_full_composites_difference(store: Store, name: str) -> None:
    settings = SETTINGS[name]
    full = compute_series(store, settings, CALENDAR, TZ, MONTHS, as_of=AS_OF)
    composites = [{card.key: card.composite for card in cards} for cards in full]
    for index in range(1, len(MONTHS)):
        # Computed alone, the month's previous month is computed only for its composites.
        for card in compute_scorecards(store, settings, CALENDAR, TZ, MONTHS[index], as_of=AS_OF):
            before = composites[index - 1].get(card.key)
            expected = None if before is None or card.composite is None else round(card.composite - before, 2)
            assert card.trend == expected
    assert any(card.trend for card in full[-1])
