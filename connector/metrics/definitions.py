"""The metrics a scorecard carries, by their design.md names, and what kind of number each is.

The unit decides how a value is shown (rates as percentages in tables, fractions in JSON and the
store) and the direction decides how it is scored against a target (for "lower is better" metrics a
value at or under the target earns full marks).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Unit = Literal["rate", "count", "hours", "points", "stars", "per_hour"]
Category = Literal["quality", "efficiency", "knowledge"]

CATEGORIES: tuple[Category, ...] = ("quality", "efficiency", "knowledge")


@dataclass(frozen=True)
class MetricInfo:
    unit: Unit
    higher_is_better: bool = True


METRICS: dict[str, MetricInfo] = {
    "satisfaction_rate": MetricInfo("rate"),
    "avg_satisfaction": MetricInfo("stars"),
    "accuracy_audit": MetricInfo("points"),
    "politeness_audit": MetricInfo("points"),
    "first_response_within_sla": MetricInfo("rate"),
    "resolution_within_sla": MetricInfo("rate"),
    "median_resolution_hours": MetricInfo("hours", higher_is_better=False),
    "tickets_handled": MetricInfo("count"),
    "complaints_handled": MetricInfo("count"),
    "contacts_served": MetricInfo("count"),
    "follow_up_completion": MetricInfo("rate"),
    "follow_ups_done": MetricInfo("count"),
    "call_duration_compliance": MetricInfo("rate"),
    "contacts_per_hour": MetricInfo("per_hour"),
    "knowledge_score": MetricInfo("points"),
    "reopen_rate": MetricInfo("rate", higher_is_better=False),
}

MetricName = Literal[
    "satisfaction_rate",
    "avg_satisfaction",
    "accuracy_audit",
    "politeness_audit",
    "first_response_within_sla",
    "resolution_within_sla",
    "median_resolution_hours",
    "tickets_handled",
    "complaints_handled",
    "contacts_served",
    "follow_up_completion",
    "follow_ups_done",
    "call_duration_compliance",
    "contacts_per_hour",
    "knowledge_score",
    "reopen_rate",
]
