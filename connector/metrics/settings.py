"""The ``[scorecard]`` section of the config: every threshold, weight, target and vendor choice.

Defaults are the clinics' policy (design.md, "Performance metrics"). Where helpdesk vendors read a
metric differently, the reading is a setting here and the default is the design's.

```toml
[scorecard]
sla_clock = "calendar"            # "calendar" | "business" (working hours of [clinic.calendar])
response_limit_hours = 24         # first response within 24 h (inclusive)
resolution_limit_hours = 48       # resolved within 48 h (inclusive)
pause_statuses = []               # e.g. ["pending"]: time spent in these statuses stops SLA clocks
resolution = "last"               # "last" (current resolution; reopened = unresolved) | "first"
response_sources = ["field", "calls", "follow_ups"]
self_logged_clock = "created"     # "created" | "second_contact"
self_logged_channels = ["phone", "walk_in"]
satisfaction_good = 4             # a rating >= this (of 5) is "satisfied"
follow_up_monthly_target = 60     # follow-ups done per agent per month
knowledge_kinds = ["knowledge_exam", "policy_exam"]
scoring = "linear"                # "linear" (value / target, capped at 100) | "threshold" (100 or 0)
merge_agents_by = "email"         # "email" | "phone" | "none"
[scorecard.metric_clocks]         # per-metric override of sla_clock
resolution_within_sla = "business"
[scorecard.call_bands]            # replaces the default bands; seconds, inclusive
booking = { max_s = 180 }
consultation = { min_s = 300, max_s = 600 }
[scorecard.targets]               # merged over the defaults; rates are fractions
satisfaction_rate = 0.8
[scorecard.categories]            # merged over the defaults
knowledge = ["knowledge_score"]
[scorecard.weights]               # merged over the defaults; re-normalised over categories with data
quality = 40
[[scorecard.bonus_tiers]]         # replaces the default tiers
min_score = 90
bonus_pct = 20
[[scorecard.goals]]
metric = "satisfaction_rate"
from = 0.7
to = 0.8
start = "2026-08"
months = 3
```
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from connector.metrics.definitions import CATEGORIES, Category, MetricName

Clock = Literal["calendar", "business"]
ClockedMetric = Literal["first_response_within_sla", "resolution_within_sla", "median_resolution_hours"]
ResponseSource = Literal["field", "calls", "follow_ups"]

DEFAULT_TARGETS: dict[str, float] = {
    "satisfaction_rate": 0.8,
    "accuracy_audit": 90.0,
    "politeness_audit": 90.0,
    "first_response_within_sla": 1.0,
    "resolution_within_sla": 1.0,
    "follow_up_completion": 1.0,
    "call_duration_compliance": 0.9,
    "knowledge_score": 90.0,
}
DEFAULT_CATEGORIES: dict[str, list[str]] = {
    "quality": ["satisfaction_rate", "accuracy_audit", "politeness_audit"],
    "efficiency": [
        "first_response_within_sla",
        "resolution_within_sla",
        "follow_up_completion",
        "follow_ups_done",
        "call_duration_compliance",
    ],
    "knowledge": ["knowledge_score"],
}
DEFAULT_WEIGHTS: dict[str, float] = {"quality": 40.0, "efficiency": 30.0, "knowledge": 30.0}
_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


_STRICT = ConfigDict(extra="forbid", frozen=True)


class CallBand(BaseModel):
    """Talk time expected for one call purpose, in seconds; both ends inclusive, either may be open."""

    model_config = _STRICT

    min_s: int | None = Field(None, ge=0, description="Shortest compliant call (seconds).")
    max_s: int | None = Field(None, ge=0, description="Longest compliant call (seconds).")

    @model_validator(mode="after")
    def _check(self) -> CallBand:
        if self.min_s is None and self.max_s is None:
            raise ValueError("a call band needs min_s, max_s or both")
        if self.min_s is not None and self.max_s is not None and self.min_s > self.max_s:
            raise ValueError(f"call band min_s {self.min_s} is above max_s {self.max_s}")
        return self


class BonusTier(BaseModel):
    model_config = _STRICT

    min_score: float = Field(ge=0, le=100, description="Lowest composite score of the tier.")
    bonus_pct: float = Field(ge=0, description="Bonus as a percentage of monthly salary.")


class Goal(BaseModel):
    """An improvement goal: ``metric`` moves from ``from`` to ``to`` over ``months`` from ``start``."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    metric: MetricName
    from_: float = Field(alias="from", description="Value when the goal starts.")
    to: float = Field(description="Value to reach by the end of the goal.")
    start: str = Field(description="First month of the goal, 'YYYY-MM'.")
    months: int = Field(ge=1, description="Length of the goal in months.")
    agent: str | None = Field(None, description="Agent external id; omitted = every agent.")

    @field_validator("start")
    @classmethod
    def _check_start(cls, value: str) -> str:
        if not _MONTH.match(value):
            raise ValueError(f"{value!r} is not a month; use 'YYYY-MM'")
        return value


class ScorecardSettings(BaseModel):
    """``[scorecard]``: how metrics are measured and scored. See the module docstring for the TOML."""

    model_config = _STRICT

    sla_clock: Clock = Field(
        "calendar", description="Clock of SLA metrics: calendar hours or business hours."
    )
    metric_clocks: dict[ClockedMetric, Clock] = Field(
        default_factory=dict, description="Per-metric override of sla_clock."
    )
    response_limit_hours: float = Field(24.0, gt=0, description="First-response limit (inclusive).")
    resolution_limit_hours: float = Field(48.0, gt=0, description="Resolution limit (inclusive).")
    pause_statuses: list[Literal["open", "pending"]] = Field(
        default_factory=list,
        description="Ticket statuses that stop SLA clocks, replayed from ticket_status_history.",
    )
    resolution: Literal["first", "last"] = Field(
        "last",
        description="'last': the current resolution (a reopened ticket is unresolved until resolved "
        "again); 'first': the first time the ticket was resolved or closed.",
    )
    response_sources: list[ResponseSource] = Field(
        default_factory=lambda: ["field", "calls", "follow_ups"],
        min_length=1,
        description="What counts as a first response: the CRM's mapped field (wins when set), "
        "the owner's calls, the owner's completed follow-ups.",
    )
    self_logged_clock: Literal["created", "second_contact"] = Field(
        "created",
        description="'second_contact': a complaint staff typed in while talking to the patient (a "
        "self_logged_channels ticket) starts its response clock at the patient's next call "
        "(inbound or missed); without one no response is owed.",
    )
    self_logged_channels: list[str] = Field(
        default_factory=lambda: ["phone", "walk_in"],
        description="Channels whose tickets staff log themselves.",
    )
    satisfaction_good: int = Field(
        4, ge=1, le=5, description="Lowest rating (of 5) that counts as satisfied."
    )
    call_bands: dict[str, CallBand] = Field(
        default_factory=lambda: {
            "booking": CallBand(max_s=180),
            "consultation": CallBand(min_s=300, max_s=600),
        },
        description="Talk-time band per call purpose; purposes without a band are not judged.",
    )
    follow_up_monthly_target: float = Field(60.0, ge=0, description="Follow-ups done per agent per month.")
    knowledge_kinds: list[str] = Field(
        default_factory=lambda: ["knowledge_exam", "policy_exam"],
        description="Assessment kinds averaged into knowledge_score.",
    )
    targets: dict[MetricName, float] = Field(
        default_factory=lambda: dict(DEFAULT_TARGETS),
        description="Target per scored metric (rates as fractions), merged over the defaults.",
    )
    scoring: Literal["linear", "threshold"] = Field(
        "linear", description="'linear': 100 × value / target, capped at 100; 'threshold': 100 if met else 0."
    )
    categories: dict[Category, list[MetricName]] = Field(
        default_factory=lambda: {k: list(v) for k, v in DEFAULT_CATEGORIES.items()},
        description="Metrics averaged into each category, merged over the defaults.",
    )
    weights: dict[Category, float] = Field(
        default_factory=lambda: dict(DEFAULT_WEIGHTS),
        description="Category weights, merged over the defaults.",
    )
    bonus_tiers: list[BonusTier] = Field(
        default_factory=lambda: [
            BonusTier(min_score=90, bonus_pct=20),
            BonusTier(min_score=80, bonus_pct=10),
        ],
        description="Bonus by composite score; the highest tier reached applies, none = 0.",
    )
    goals: list[Goal] = Field(default_factory=list, description="Improvement goals to track.")
    merge_agents_by: Literal["email", "phone", "none"] = Field(
        "email", description="Merge one person's agent records across sources by email or phone."
    )

    @field_validator("targets", mode="after")
    @classmethod
    def _merge_targets(cls, value: dict[str, float]) -> dict[str, float]:
        return {**DEFAULT_TARGETS, **value}

    @field_validator("categories", mode="after")
    @classmethod
    def _merge_categories(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        return {**DEFAULT_CATEGORIES, **value}

    @field_validator("weights", mode="after")
    @classmethod
    def _merge_weights(cls, value: dict[str, float]) -> dict[str, float]:
        merged = {**DEFAULT_WEIGHTS, **value}
        if any(weight < 0 for weight in merged.values()) or sum(merged.values()) <= 0:
            raise ValueError("weights must be zero or more and not all zero")
        return merged

    @field_validator("bonus_tiers", mode="after")
    @classmethod
    def _order_tiers(cls, value: list[BonusTier]) -> list[BonusTier]:
        return sorted(value, key=lambda tier: tier.min_score, reverse=True)

    @model_validator(mode="after")
    def _check_categories(self) -> ScorecardSettings:
        seen: dict[str, str] = {}
        for category in CATEGORIES:
            for metric in self.categories[category]:
                if metric in seen:
                    raise ValueError(f"categories: {metric} is in both {seen[metric]} and {category}")
                seen[metric] = category
                if metric != "follow_ups_done" and metric not in self.targets:
                    raise ValueError(f"categories.{category}: {metric} is scored but has no entry in targets")
        return self

    def clock_for(self, metric: ClockedMetric) -> Clock:
        """The clock ``metric`` counts with: its override, else ``sla_clock``."""
        return self.metric_clocks.get(metric, self.sla_clock)

    @property
    def response_limit(self) -> timedelta:
        return timedelta(hours=self.response_limit_hours)

    @property
    def resolution_limit(self) -> timedelta:
        return timedelta(hours=self.resolution_limit_hours)

    def category_of(self, metric: str) -> Category | None:
        return next((c for c in CATEGORIES if metric in self.categories[c]), None)

    @property
    def scored_metrics(self) -> frozenset[str]:
        """The metrics the composite rests on (all a previous period's trend needs)."""
        return frozenset(metric for category in CATEGORIES for metric in self.categories[category])
