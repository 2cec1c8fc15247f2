"""Team-level scoring on stored data: ties, re-normalised weights, merged agents, storing, trends.

On SQLite and PostgreSQL. Times are Asia/Shanghai local; default settings unless a test says so.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from test_metrics_support import TZ, Rows, local, weekday_calendar

from connector.metrics import (
    ScorecardSettings,
    compute_scorecards,
    compute_series,
    parse_period,
    store_scorecards,
)
from connector.store import Store, open_store
from connector.store.schema import scorecards

CALENDAR = weekday_calendar()
AS_OF = local(2026, 11, 10)


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    store = open_store(db_url)
    yield store
    store.dispose()


DEFAULTS = ScorecardSettings()


def by_agent(store: Store, settings: ScorecardSettings = DEFAULTS) -> dict:
    return {c.agent_id: c for c in compute_scorecards(store, settings, CALENDAR, TZ, "2026-10", as_of=AS_OF)}


def test_ties_share_a_rank_and_missing_categories_are_reweighted(store: Store) -> None:
    r = Rows()
    # A and B: one knowledge exam of 90 each; C: 45. Nobody has quality data; efficiency is
    # follow_ups_done 0 of 60 = 0. Knowledge 90 / 90 = 100 (C: 50). Composite over efficiency and
    # knowledge only (30 + 30): A, B (0 + 100) / 2 = 50; C (0 + 50) / 2 = 25.
    for agent, score in (("A", 90), ("B", 90), ("C", 45)):
        r.assessment(f"x{agent}", agent, "knowledge_exam", score, local(2026, 10, 5))
    # D has no knowledge data: two 5★ tickets (satisfaction 100) and one of two follow-ups done on time
    # against a target of 2 (completion 50, done 1 / 2 = 50 → efficiency 50):
    # (40 × 100 + 30 × 50) / (40 + 30) = 78.57 (and not (4000 + 1500) / 100 = 55).
    r.ticket("t1", "D", local(2026, 10, 5, 9), satisfaction=5)
    r.ticket("t2", "D", local(2026, 10, 6, 9), satisfaction=5)
    r.follow_up("f1", "D", local(2026, 10, 7, 18), completed=local(2026, 10, 7, 10))
    r.follow_up("f2", "D", local(2026, 10, 8, 18))
    r.write(store)
    cards = by_agent(store, ScorecardSettings(follow_up_monthly_target=2))
    assert {k: (c.composite, c.rank) for k, c in cards.items()} == {
        "D": (78.57, 1),
        "A": (50.0, 2),
        "B": (50.0, 2),
        "C": (25.0, 4),
    }
    d = cards["D"]
    assert d.categories == {"quality": 100.0, "efficiency": 50.0, "knowledge": None}
    assert {"knowledge_score", "knowledge"} <= set(d.missing)
    assert "quality" in cards["A"].missing and "knowledge" not in cards["A"].missing


def test_one_person_in_two_crms_gets_one_scorecard(store: Store) -> None:
    r = Rows()
    r.agent("z1", "Wang Fang", source="zoho", email="Wang.Fang@clinic.cn", phone="+86 138-0013-8000")
    r.agent("s1", "王芳", source="share", email=" wang.fang@clinic.cn ", phone="13800138000")
    r.agent("z2", "Li Na", source="zoho", email="li@clinic.cn")
    # The same contact id "c1" exists in both CRMs: they are two different patients.
    r.ticket("t1", "z1", local(2026, 10, 5, 9), source="zoho", contact="c1", satisfaction=5)
    r.ticket("t1", "s1", local(2026, 10, 6, 9), source="share", contact="c1", satisfaction=3)
    r.assessment("x1", "s1", "knowledge_exam", 81, local(2026, 10, 7), source="share")
    r.ticket("t2", "z2", local(2026, 10, 5, 9), source="zoho", contact="c2")
    r.write(store)
    merged = by_agent(store)
    # The key is the member that sorts first by (source, id): ("share", "s1").
    assert set(merged) == {"s1", "z2"}
    wang = merged["s1"]
    assert (wang.source, wang.agent_name, wang.members) == (
        "share",
        "王芳",
        (("share", "s1"), ("zoho", "z1")),
    )
    # One 5★ and one 3★ → 1 / 2; two tickets; two patients (zoho c1 and share c1); exam 81.
    assert wang.metrics["satisfaction_rate"] == 0.5 and wang.metrics["tickets_handled"] == 2
    assert wang.metrics["contacts_served"] == 2 and wang.metrics["knowledge_score"] == 81.0
    assert wang.as_json()["merged_from"] == ["zoho:z1"]
    # Narrowing by any member's id finds the merged scorecard; ranks stay team ranks.
    only = compute_scorecards(store, ScorecardSettings(), CALENDAR, TZ, "2026-10", as_of=AS_OF, agent="z1")
    assert [c.agent_id for c in only] == ["s1"]
    # By phone: "+86 138-0013-8000" and "13800138000" are the same number.
    assert set(by_agent(store, ScorecardSettings(merge_agents_by="phone"))) == {"s1", "z2"}
    separate = by_agent(store, ScorecardSettings(merge_agents_by="none"))
    assert set(separate) == {"s1", "z1", "z2"}
    assert (separate["z1"].metrics["satisfaction_rate"], separate["s1"].metrics["satisfaction_rate"]) == (
        1.0,
        0.0,
    )


def test_recomputing_a_period_replaces_its_rows(store: Store) -> None:
    r = Rows()
    r.agent("a1", "Alice")
    r.ticket("t1", "a1", local(2026, 10, 5, 9), satisfaction=5)
    r.ticket("t2", "b1", local(2026, 10, 5, 9), satisfaction=2)
    r.write(store)
    october = parse_period("2026-10", TZ)
    first = compute_scorecards(store, ScorecardSettings(), CALENDAR, TZ, october, as_of=AS_OF)
    assert store_scorecards(store, october, first, computed_at=AS_OF) == 2
    with store.begin() as conn:  # late news: t2 was deleted in the CRM
        conn.execute(sa.text("UPDATE tickets SET deleted_at = updated_at WHERE external_id = 't2'"))
    again = compute_scorecards(store, ScorecardSettings(), CALENDAR, TZ, october, as_of=AS_OF)
    store_scorecards(store, october, again, computed_at=AS_OF)
    with store.begin() as conn:
        rows = conn.execute(sa.select(scorecards)).mappings().all()
    assert [(row["agent_id"], row["period"]) for row in rows] == [("a1", "2026-10")]
    row = rows[0]
    assert json.loads(row["metrics"])["satisfaction_rate"] == 1.0
    assert json.loads(row["missing"])[:2] == ["accuracy_audit", "politeness_audit"]
    assert (row["agent_name"], row["rank"], row["period_start"]) == ("Alice", 1, october.start_utc)
    with pytest.raises(ValueError, match="another period"):
        store_scorecards(store, parse_period("2026-11", TZ), again, computed_at=AS_OF)


def _exams(store: Store, *scores: tuple[str, int, int]) -> None:
    r = Rows()
    for name, month, score in scores:
        r.assessment(name, "a1", "knowledge_exam", score, local(2026, month, 5))
    r.write(store)


def test_trend_against_the_previous_period(store: Store) -> None:
    # September: exam 45 → knowledge 50, efficiency 0 → composite 25. October: exam 90 → 100 → 50.
    _exams(store, ("x9", 9, 45), ("x10", 10, 90))
    settings = ScorecardSettings()
    september, october = compute_series(store, settings, CALENDAR, TZ, ["2026-09", "2026-10"], as_of=AS_OF)
    assert (september[0].composite, september[0].trend) == (25.0, None)  # August had no data
    assert (october[0].composite, october[0].trend) == (50.0, 25.0)
    # The store is worked on in parallel connections; a caller's connection computes in sequence:
    # the same scorecards either way.
    with store.begin() as conn:
        sequential = compute_series(conn, settings, CALENDAR, TZ, ["2026-09", "2026-10"], as_of=AS_OF)
    assert [[c.as_json() for c in cards] for cards in sequential] == [
        [c.as_json() for c in cards] for cards in (september, october)
    ]


def test_trend_uses_final_stored_scorecards_of_the_previous_period(store: Store) -> None:
    _exams(store, ("x9", 9, 45), ("x10", 10, 90))
    settings, sept = ScorecardSettings(), parse_period("2026-09", TZ)
    stored = compute_scorecards(store, settings, CALENDAR, TZ, sept, as_of=AS_OF)
    store_scorecards(store, sept, stored, computed_at=AS_OF)  # computed after September ended: final
    _exams(store, ("x9b", 9, 90))  # a late September exam, not recomputed yet
    october = compute_scorecards(store, settings, CALENDAR, TZ, "2026-10", as_of=AS_OF)[0]
    assert october.trend == 25.0  # against the stored 25, as reported for September
    # Stored mid-September (not final): September is computed afresh: exams (45 + 90) / 2 = 67.5,
    # knowledge 67.5 / 90 = 75, composite (0 + 75) / 2 = 37.5 → trend 50 − 37.5 = 12.5.
    store_scorecards(store, sept, stored, computed_at=local(2026, 9, 20))
    october = compute_scorecards(store, settings, CALENDAR, TZ, "2026-10", as_of=AS_OF)[0]
    assert october.trend == 12.5


def test_goals_are_tracked_on_the_scorecard(store: Store) -> None:
    _exams(store, ("x10", 10, 81))
    goal = {"metric": "knowledge_score", "from": 70, "to": 90, "start": "2026-09", "months": 2}
    settings = ScorecardSettings.model_validate({"goals": [goal]})
    card = compute_scorecards(store, settings, CALENDAR, TZ, "2026-10", as_of=AS_OF)[0]
    # October is the goal's last month: expected 90, score 81 → at risk.
    assert [(g.metric, g.expected, g.status) for g in card.goals] == [("knowledge_score", 90.0, "at_risk")]
    assert card.as_json()["goals"][0]["status"] == "at_risk"
