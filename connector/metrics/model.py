"""What the performance engine hands out: scorecards and goal statuses (plain, frozen data)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from connector.metrics.agents import AgentKey
from connector.metrics.definitions import CATEGORIES
from connector.metrics.periods import Period

GoalState = Literal["achieved", "on_track", "at_risk"]


@dataclass(frozen=True)
class GoalStatus:
    """Where one agent stands on one ``[[scorecard.goals]]`` entry at the end of the period."""

    metric: str
    start: str
    months: int
    goal_from: float
    goal_to: float
    expected: float  # where the metric should be by now on a straight line from `from` to `to`
    value: float
    status: GoalState

    def as_json(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "start": self.start,
            "months": self.months,
            "from": self.goal_from,
            "to": self.goal_to,
            "expected": self.expected,
            "value": self.value,
            "status": self.status,
        }


@dataclass(frozen=True)
class Scorecard:
    """One agent's scorecard for one period.

    ``metrics`` holds every metric of design.md by name (None = no data; rates are fractions 0..1);
    ``scores`` the 0..100 score of each scored metric with data; ``categories`` the category means;
    ``missing`` the metrics and categories without data; ``members`` every (source, external_id)
    merged into this scorecard, the key first.
    """

    source: str
    agent_id: str
    agent_name: str | None
    period: Period
    metrics: dict[str, float | None]
    follow_ups_target: float
    scores: dict[str, float]
    categories: dict[str, float | None]
    composite: float | None
    bonus_pct: float | None
    rank: int | None
    trend: float | None
    missing: tuple[str, ...]
    goals: tuple[GoalStatus, ...]
    members: tuple[AgentKey, ...]

    @property
    def key(self) -> AgentKey:
        return (self.source, self.agent_id)

    def matches(self, agent_id: str, source: str | None = None) -> bool:
        """Whether an operator's ``agent_id`` (one of the merged members' ids) means this scorecard."""
        return any(e == agent_id and (source is None or s == source) for s, e in self.members)

    def as_json(self) -> dict[str, Any]:
        """The ``--json`` / push shape: design.md metric names, fractions for rates."""
        return {
            "source": self.source,
            "agent_id": self.agent_id,
            "agent_name": self.agent_name,
            "period": self.period.label,
            "period_start": self.period.start_utc.isoformat(),
            "period_end": self.period.end_utc.isoformat(),
            **self.metrics,
            "follow_ups_target": self.follow_ups_target,
            **{category: self.categories[category] for category in CATEGORIES},
            "composite": self.composite,
            "bonus_pct": self.bonus_pct,
            "rank": self.rank,
            "trend": self.trend,
            "missing": list(self.missing),
            "goals": [goal.as_json() for goal in self.goals],
            "merged_from": [f"{s}:{e}" for s, e in self.members[1:]],
        }
