"""Scoring and the [scorecard] settings: targets, categories, re-normalised weights, tiers, ranks, goals."""

from __future__ import annotations

from datetime import datetime
from typing import get_args
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from connector.metrics.definitions import METRICS, MetricName
from connector.metrics.periods import parse_period
from connector.metrics.scoring import bonus_for, competition_ranks, goal_status, metric_score, score_metrics
from connector.metrics.settings import Goal, ScorecardSettings

TZ = ZoneInfo("Asia/Shanghai")
DEFAULTS = ScorecardSettings()


def test_defaults_follow_the_design() -> None:
    s = DEFAULTS
    assert (s.sla_clock, s.response_limit_hours, s.resolution_limit_hours) == ("calendar", 24, 48)
    assert s.targets["satisfaction_rate"] == 0.8 and s.targets["accuracy_audit"] == 90
    assert s.weights == {"quality": 40, "efficiency": 30, "knowledge": 30}
    assert (s.call_bands["booking"].max_s, s.call_bands["consultation"].min_s) == (180, 300)
    assert s.call_bands["consultation"].max_s == 600
    assert [(t.min_score, t.bonus_pct) for t in s.bonus_tiers] == [(90, 20), (80, 10)]
    assert set(get_args(MetricName)) == set(METRICS)


def test_partial_tables_merge_over_the_defaults() -> None:
    s = ScorecardSettings.model_validate(
        {
            "targets": {"satisfaction_rate": 0.9},
            "weights": {"knowledge": 0},
            "metric_clocks": {"resolution_within_sla": "business"},
            "bonus_tiers": [{"min_score": 80, "bonus_pct": 10}, {"min_score": 95, "bonus_pct": 25}],
        }
    )
    assert s.targets["satisfaction_rate"] == 0.9 and s.targets["knowledge_score"] == 90
    assert s.weights == {"quality": 40, "efficiency": 30, "knowledge": 0}
    assert s.clock_for("resolution_within_sla") == "business"
    assert s.clock_for("first_response_within_sla") == "calendar"
    assert [t.min_score for t in s.bonus_tiers] == [95, 80]  # highest first


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"unknown_key": 1}, "Extra inputs"),
        ({"categories": {"quality": ["avg_satisfaction"]}}, "has no entry in targets"),
        ({"categories": {"knowledge": ["satisfaction_rate"]}}, "in both quality and knowledge"),
        ({"weights": {"quality": -1}}, "zero or more"),
        ({"weights": {"quality": 0, "efficiency": 0, "knowledge": 0}}, "not all zero"),
        ({"call_bands": {"booking": {"min_s": 200, "max_s": 100}}}, "above max_s"),
        ({"call_bands": {"booking": {}}}, "needs min_s, max_s or both"),
        (
            {
                "goals": [
                    {"metric": "satisfaction_rate", "from": 0.7, "to": 0.8, "start": "2026-13", "months": 3}
                ]
            },
            "YYYY-MM",
        ),
        ({"targets": {"no_such_metric": 1}}, "no_such_metric"),
        ({"sla_clock": "wall"}, "sla_clock"),
    ],
)
def test_bad_settings_name_the_problem(section: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        ScorecardSettings.model_validate(section)


def test_metric_scores_against_targets() -> None:
    assert metric_score(DEFAULTS, "satisfaction_rate", 0.6, 0.8) == 75.0  # 0.6 / 0.8
    assert metric_score(DEFAULTS, "satisfaction_rate", 0.95, 0.8) == 100.0  # capped
    assert metric_score(DEFAULTS, "accuracy_audit", 85, 90) == 94.44  # 85 / 90 = 0.9444
    # Lower is better: at or under the target is full marks, above scales by target / value.
    assert metric_score(DEFAULTS, "median_resolution_hours", 60, 30) == 50.0
    assert metric_score(DEFAULTS, "median_resolution_hours", 20, 30) == 100.0
    threshold = ScorecardSettings(scoring="threshold")
    assert metric_score(threshold, "satisfaction_rate", 0.79, 0.8) == 0.0
    assert metric_score(threshold, "satisfaction_rate", 0.8, 0.8) == 100.0


def test_composite_is_reweighted_over_categories_with_data() -> None:
    metrics = dict.fromkeys(METRICS)
    metrics |= {"satisfaction_rate": 0.8, "follow_up_completion": 0.5, "follow_ups_done": 30}
    scores = score_metrics(DEFAULTS, metrics, follow_ups_target=60)
    # quality = satisfaction 100; efficiency = mean(completion 50, done 30/60 = 50) = 50; no knowledge.
    assert scores.categories == {"quality": 100.0, "efficiency": 50.0, "knowledge": None}
    # Weights 40 and 30 re-normalised over 70: (40 × 100 + 30 × 50) / 70 = 5500 / 70 = 78.57.
    assert scores.composite == 78.57
    assert scores.bonus_pct == 0
    assert "knowledge_score" in scores.missing and "knowledge" in scores.missing
    assert "satisfaction_rate" not in scores.missing and "quality" not in scores.missing


def test_no_data_at_all_has_no_composite() -> None:
    scores = score_metrics(DEFAULTS, dict.fromkeys(METRICS), follow_ups_target=60)
    assert scores.composite is None and scores.bonus_pct is None
    assert set(scores.missing) == set(METRICS) | {"quality", "efficiency", "knowledge"}


@pytest.mark.parametrize(
    ("composite", "bonus"), [(100, 20), (90, 20), (89.99, 10), (80, 10), (79.99, 0), (0, 0), (None, None)]
)
def test_bonus_tiers(composite: float | None, bonus: float | None) -> None:
    assert bonus_for(DEFAULTS, composite) == bonus


def test_competition_ranks_share_ties() -> None:
    ranks = competition_ranks({"a": 90.0, "b": 90.0, "c": 80.0, "d": None, "e": 70.0})
    assert ranks == {"a": 1, "b": 1, "c": 3, "d": None, "e": 4}


GOAL = Goal.model_validate(
    {"metric": "satisfaction_rate", "from": 0.7, "to": 0.8, "start": "2026-08", "months": 3}
)


def test_goal_expected_value_runs_on_a_straight_line() -> None:
    september = parse_period("2026-09", TZ)
    end_of_september = september.end_utc
    # Goal window 1 Aug – 1 Nov (92 days); by 1 Oct 61 days have passed:
    # expected = 0.7 + 0.1 × 61 / 92 = 0.7663.
    on_track = goal_status(GOAL, september, end_of_september, 0.77)
    assert on_track is not None and on_track.expected == pytest.approx(0.7663, abs=1e-4)
    assert on_track.status == "on_track"
    assert goal_status(GOAL, september, end_of_september, 0.75).status == "at_risk"
    assert goal_status(GOAL, september, end_of_september, 0.8).status == "achieved"
    # Month to date: on 16 Sep 46 of 92 days have passed, expected 0.75.
    mid = goal_status(GOAL, september, datetime(2026, 9, 16, tzinfo=TZ), 0.75)
    assert mid.expected == pytest.approx(0.75) and mid.status == "on_track"
    # After the deadline the expected value is the goal itself.
    late = goal_status(GOAL, parse_period("2026-12", TZ), datetime(2027, 1, 5, tzinfo=TZ), 0.79)
    assert late.expected == 0.8 and late.status == "at_risk"
    # Not started yet, or no data: no status.
    assert goal_status(GOAL, parse_period("2026-07", TZ), datetime(2026, 8, 1, tzinfo=TZ), 0.5) is None
    assert goal_status(GOAL, september, end_of_september, None) is None


def test_goal_on_a_lower_is_better_metric() -> None:
    goal = Goal.model_validate(
        {"metric": "median_resolution_hours", "from": 30, "to": 20, "start": "2026-09", "months": 1}
    )
    september = parse_period("2026-09", TZ)
    assert goal_status(goal, september, september.end_utc, 19.5).status == "achieved"
    assert goal_status(goal, september, september.end_utc, 25).status == "at_risk"
