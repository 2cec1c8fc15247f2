"""The performance engine: per-agent scorecards by the clinic's own policy (design.md).

Public API (what the CLI, the alert rules and the push planner call):

* :class:`ScorecardSettings` — the ``[scorecard]`` config section.
* :func:`compute_scorecards` / :func:`compute_series` — scorecards of one or several periods.
* :func:`store_scorecards` — replace a period's rows in the ``scorecards`` table.
* :func:`explain` — the records behind each metric of one agent's scorecard.
* :func:`ticket_sla` — each complaint's first-response and resolution judgement (met / breached /
  pending), exactly as the scorecard counts it.
* Periods: :class:`Period`, :func:`parse_period`, :func:`period_containing`, :func:`periods_between`,
  :func:`range_period`, :func:`current_period`.
"""

from connector.metrics.definitions import CATEGORIES, METRICS
from connector.metrics.explain import Evidence, Explanation, TicketSla, explain, ticket_sla
from connector.metrics.model import GoalStatus, Scorecard
from connector.metrics.periods import (
    Period,
    current_period,
    parse_period,
    period_containing,
    periods_between,
    range_period,
)
from connector.metrics.series import compute_scorecards, compute_series, store_scorecards
from connector.metrics.settings import ScorecardSettings

__all__ = [
    "CATEGORIES",
    "METRICS",
    "Evidence",
    "Explanation",
    "GoalStatus",
    "Period",
    "Scorecard",
    "ScorecardSettings",
    "TicketSla",
    "compute_scorecards",
    "compute_series",
    "current_period",
    "explain",
    "parse_period",
    "period_containing",
    "periods_between",
    "range_period",
    "store_scorecards",
    "ticket_sla",
]
