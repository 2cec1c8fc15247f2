"""From metric values to scores, categories, the composite, bonus tier, rank and goal status.

* A metric scores 0..100 against its target: ``linear`` gives ``100 × value / target`` capped at 100
  (for "lower is better" metrics ``100 × target / value``), ``threshold`` gives 100 or 0.
* A category is the mean of its metrics that have data; the composite the weighted mean of the
  categories that have data, weights re-normalised over them. Scores are rounded to 2 decimals
  before ranking, so agents equal to the displayed precision share a rank.
* Ranks are competition ranks ("1, 1, 3") over the agents with a composite.
* A goal's expected value runs on a straight line from ``from`` (at its start) to ``to`` (at its
  end); the metric at or beyond ``to`` is "achieved", at or beyond the expected value "on_track",
  else "at_risk" (also after the deadline).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import TypeVar

from connector.metrics.definitions import CATEGORIES, METRICS
from connector.metrics.model import GoalStatus
from connector.metrics.periods import Period
from connector.metrics.settings import Goal, ScorecardSettings

K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True)
class Scores:
    scores: dict[str, float]
    categories: dict[str, float | None]
    composite: float | None
    bonus_pct: float | None
    missing: tuple[str, ...]


def _meets(metric: str, value: float, target: float) -> bool:
    return value >= target if METRICS[metric].higher_is_better else value <= target


def metric_score(settings: ScorecardSettings, metric: str, value: float, target: float) -> float:
    """``value`` of ``metric`` as 0..100 against ``target``."""
    if settings.scoring == "threshold":
        return 100.0 if _meets(metric, value, target) else 0.0
    if _meets(metric, value, target):
        return 100.0
    ratio = value / target if METRICS[metric].higher_is_better else target / value
    return round(max(0.0, 100.0 * ratio), 2)


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 2) if values else None


def bonus_for(settings: ScorecardSettings, composite: float | None) -> float | None:
    """Bonus percentage of the highest tier ``composite`` reaches (0 below every tier)."""
    if composite is None:
        return None
    return next((tier.bonus_pct for tier in settings.bonus_tiers if composite >= tier.min_score), 0.0)


def score_metrics(
    settings: ScorecardSettings, metrics: Mapping[str, float | None], follow_ups_target: float
) -> Scores:
    targets = {**settings.targets, "follow_ups_done": follow_ups_target}
    scores: dict[str, float] = {}
    categories: dict[str, float | None] = {}
    for category in CATEGORIES:
        members = []
        for metric in settings.categories[category]:
            value = metrics.get(metric)
            if value is not None:
                scores[metric] = metric_score(settings, metric, value, targets[metric])
                members.append(scores[metric])
        categories[category] = _mean(members)
    weighted = [
        (settings.weights[c], s) for c, s in categories.items() if s is not None and settings.weights[c] > 0
    ]
    total_weight = sum(weight for weight, _ in weighted)
    composite = round(sum(w * s for w, s in weighted) / total_weight, 2) if weighted else None
    missing = tuple(m for m in METRICS if metrics.get(m) is None) + tuple(
        c for c in CATEGORIES if categories[c] is None
    )
    return Scores(scores, categories, composite, bonus_for(settings, composite), missing)


def competition_ranks(composites: Mapping[K, float | None]) -> dict[K, int | None]:
    """Rank 1 = highest; equal composites share a rank and the next rank skips ("1, 1, 3")."""
    scored = sorted((value for value in composites.values() if value is not None), reverse=True)
    first_position = {}
    for position, value in enumerate(scored, start=1):
        first_position.setdefault(value, position)
    return {key: (None if value is None else first_position[value]) for key, value in composites.items()}


def _local_midnight(day: date, period: Period) -> datetime:
    return datetime.combine(day, time(), tzinfo=period.tz).astimezone(UTC)


def goal_status(goal: Goal, period: Period, as_of: datetime, value: float | None) -> GoalStatus | None:
    """The goal's state at the end of ``period`` (or at ``as_of`` if earlier); None before it starts."""
    if value is None:
        return None
    year, month = (int(part) for part in goal.start.split("-"))
    start = _local_midnight(date(year, month, 1), period)
    end_index = year * 12 + month - 1 + goal.months
    end = _local_midnight(date(end_index // 12, end_index % 12 + 1, 1), period)
    now = min(period.end_utc, as_of)
    if now <= start:
        return None
    share = min(1.0, (now - start) / (end - start))
    expected = goal.from_ + (goal.to - goal.from_) * share
    if _meets(goal.metric, value, goal.to):
        status = "achieved"
    elif _meets(goal.metric, value, expected):
        status = "on_track"
    else:
        status = "at_risk"
    return GoalStatus(
        goal.metric, goal.start, goal.months, goal.from_, goal.to, round(expected, 4), value, status
    )


def goal_statuses(
    settings: ScorecardSettings,
    period: Period,
    as_of: datetime,
    agent_ids: set[str],
    metrics: Mapping[str, float | None],
) -> tuple[GoalStatus, ...]:
    """Statuses of the goals that apply to an agent known by any of ``agent_ids``."""
    found = (
        goal_status(goal, period, as_of, metrics.get(goal.metric))
        for goal in settings.goals
        if goal.agent is None or goal.agent in agent_ids
    )
    return tuple(status for status in found if status is not None)
