"""One connection's scorecard work: SQL totals per agent, the metrics derived from them, scores.

A :class:`Computation` reads the (small) agents table to know who merges with whom, loads the merged
members and, when a clock counts business hours, the calendar's working intervals into temporary
tables, then runs a few set-based statements per period (:data:`GROUPS`). Only per-agent totals come
back to Python, so the cost grows with the database's work, not with Python loops over rows.
:mod:`connector.metrics.series` spreads the work over connections and stores the results.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from connector.calendar import BusinessCalendar
from connector.metrics import activity
from connector.metrics.agents import AgentDirectory, AgentKey, load_directory
from connector.metrics.definitions import METRICS
from connector.metrics.model import Scorecard
from connector.metrics.periods import Period
from connector.metrics.scoring import competition_ranks, goal_statuses, score_metrics
from connector.metrics.settings import ScorecardSettings
from connector.metrics.sql import AgentKeys, Scope, agent_keys, work_table
from connector.metrics.tickets import median_hours, ticket_totals
from connector.store import Store

ConnOrStore = Connection | Store
Totals = dict[str, Any]
PeriodMetrics = dict[AgentKey, dict[str, float | None]]
#: Connections working at once (series.py): the databases run statements outside the GIL.
WORKERS = max(1, min(4, os.cpu_count() or 1))
#: One period's statements in two groups of similar cost, so a lone period can use two cores.
GROUPS = ("tickets", "activity")


def _queries(scope: Scope, group: str, metrics: Collection[str]) -> list[tuple[sa.Select, str]]:
    """The statements of ``group`` that ``metrics`` need, and the prefix their columns get.

    The distinct contacts, the median and the reopen counts are over a third of a period's work and
    feed no default score, so a period computed only for a trend's composite leaves them out unless
    they are scored.
    """
    if group == "tickets":
        return [(ticket_totals(scope, metrics), "")]
    queries = [
        (activity.survey_totals(scope), "survey_"),
        (activity.call_totals(scope), ""),
        (activity.follow_up_totals(scope), ""),
        (activity.assessment_totals(scope), ""),
    ]
    if not {"contacts_served", "contacts_per_hour"}.isdisjoint(metrics):
        queries.append((activity.contacts_served(scope), ""))
    return queries


@contextmanager
def connection(conn_or_store: ConnOrStore) -> Iterator[Connection]:
    """The caller's connection as is, or a new transaction on the store's engine."""
    if isinstance(conn_or_store, Connection):
        yield conn_or_store
    else:
        with conn_or_store.begin() as conn:
            yield conn


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


def _mean(value: Any) -> float | None:
    return None if value is None else float(value)


def derive_metrics(totals: Totals, scheduled_hours: float) -> dict[str, float | None]:
    """Every design.md metric from one agent's totals (None where the denominator is empty)."""

    def n(name: str) -> float:
        return float(totals.get(name) or 0)

    rated = n("rated") + n("survey_rated")
    served = int(n("contacts_served"))
    median = median_hours(totals)
    return {
        "satisfaction_rate": _ratio(n("good") + n("survey_good"), rated),
        "avg_satisfaction": _ratio(n("rating_sum") + n("survey_rating_sum"), rated),
        "accuracy_audit": _mean(totals.get("accuracy_audit")),
        "politeness_audit": _mean(totals.get("politeness_audit")),
        "first_response_within_sla": _ratio(n("response_met"), n("response_met") + n("response_breached")),
        "resolution_within_sla": _ratio(n("resolution_met"), n("resolution_met") + n("resolution_breached")),
        "median_resolution_hours": median,
        "tickets_handled": int(n("tickets_handled")),
        "complaints_handled": int(n("complaints_handled")),
        "contacts_served": served,
        "follow_up_completion": _ratio(n("follow_ups_on_time"), n("follow_ups_due")),
        "follow_ups_done": int(n("follow_ups_done")),
        "call_duration_compliance": _ratio(n("calls_within"), n("calls_judged")),
        "contacts_per_hour": served / scheduled_hours if scheduled_hours > 0 else None,
        "knowledge_score": _mean(totals.get("knowledge_score")),
        "reopen_rate": _ratio(n("reopened"), n("ever_resolved")),
    }


@dataclass
class Computation:
    """One connection's worth of scorecard work: agents resolved once, periods computed on demand."""

    conn: Connection
    settings: ScorecardSettings
    calendar: BusinessCalendar
    as_of: datetime
    directory: AgentDirectory
    keys: AgentKeys

    @contextmanager
    def scope(self, start: datetime, end: datetime) -> Iterator[Scope]:
        """Records in ``[start, end)``, with the working-interval table when a clock needs it.

        Every instant a clock reads lies between ``start`` and ``as_of`` (nothing after ``as_of``
        has happened yet), so that is the span of working intervals loaded.
        """
        clocks = {self.settings.clock_for(m) for m in ("first_response_within_sla", "resolution_within_sla")}
        clocks.add(self.settings.clock_for("median_resolution_hours"))
        with ExitStack() as stack:
            work = None
            if "business" in clocks:
                work = stack.enter_context(
                    work_table(self.conn, self.calendar, start, max(self.as_of, start))
                )
            yield Scope(self.settings, start, end, self.as_of, self.keys, self.conn.dialect.name, work)

    def totals(
        self, period: Period, groups: Sequence[str] = GROUPS, metrics: Collection[str] = METRICS
    ) -> dict[AgentKey, Totals]:
        """Per agent key, the counts and means of ``groups`` (see :data:`GROUPS`) in ``period``
        behind ``metrics`` (others may be left out)."""
        per_key: dict[AgentKey, Totals] = defaultdict(dict)
        with self.scope(period.start_utc, period.end_utc) as scope:
            for group in groups:
                for query, prefix in _queries(scope, group, metrics):
                    for row in self.conn.execute(query).mappings():
                        key, values = (row["key_source"], row["key_id"]), dict(row)
                        del values["key_source"], values["key_id"]
                        per_key[key].update({f"{prefix}{name}": value for name, value in values.items()})
        return per_key

    def metrics(self, period: Period, metrics: Collection[str] = METRICS) -> PeriodMetrics:
        """Every agent's metrics of ``period``; only those in ``metrics`` are sure to be right."""
        return period_metrics(self.calendar, period, self.as_of, self.totals(period, GROUPS, metrics))


def scheduled_hours(calendar: BusinessCalendar, period: Period, as_of: datetime) -> float:
    """Working hours of the period up to ``as_of`` (month-to-date is not diluted by the future)."""
    end = min(period.end_utc, as_of)
    return calendar.working_hours(period.start_utc, end) if end > period.start_utc else 0.0


def period_metrics(
    calendar: BusinessCalendar, period: Period, as_of: datetime, per_key: Mapping[AgentKey, Totals]
) -> PeriodMetrics:
    """Every metric of every agent of ``period`` from their totals."""
    hours = scheduled_hours(calendar, period, as_of)
    return {key: derive_metrics(totals, hours) for key, totals in per_key.items()}


def follow_ups_target(settings: ScorecardSettings, period: Period, as_of: datetime) -> float:
    """The monthly follow-up target scaled to the period's length and to how much of it has passed."""
    return round(settings.follow_up_monthly_target * period.months * period.elapsed_share(as_of), 2)


def composites(
    settings: ScorecardSettings, period: Period, as_of: datetime, per_key: PeriodMetrics
) -> dict[AgentKey, float | None]:
    """Each agent's composite score (what a trend compares against)."""
    target = follow_ups_target(settings, period, as_of)
    return {key: score_metrics(settings, metrics, target).composite for key, metrics in per_key.items()}


def score_period(
    settings: ScorecardSettings,
    directory: AgentDirectory,
    period: Period,
    as_of: datetime,
    per_key: PeriodMetrics,
    previous: Mapping[AgentKey, float | None],
) -> list[Scorecard]:
    """Every agent with data in ``period``, ranked, best first (then by key)."""
    target = follow_ups_target(settings, period, as_of)
    scored = {key: score_metrics(settings, metrics, target) for key, metrics in per_key.items()}
    ranks = competition_ranks({key: s.composite for key, s in scored.items()})
    cards = []
    for key, metrics in per_key.items():
        s, members = scored[key], tuple(directory.members(key))
        before = previous.get(key)
        cards.append(
            Scorecard(
                source=key[0],
                agent_id=key[1],
                agent_name=directory.name(key),
                period=period,
                metrics=metrics,
                follow_ups_target=target,
                scores=s.scores,
                categories=s.categories,
                composite=s.composite,
                bonus_pct=s.bonus_pct,
                rank=ranks[key],
                trend=None if s.composite is None or before is None else round(s.composite - before, 2),
                missing=s.missing,
                goals=goal_statuses(settings, period, as_of, {e for _, e in members}, metrics),
                members=members,
            )
        )
    return sorted(cards, key=lambda c: (c.rank is None, c.rank or 0, c.key))


@contextmanager
def computation(
    conn_or_store: ConnOrStore,
    settings: ScorecardSettings,
    calendar: BusinessCalendar,
    as_of: datetime,
    directory: AgentDirectory | None = None,
) -> Iterator[Computation]:
    """A computation on one connection (the given one, or a new transaction on the store)."""
    if as_of.tzinfo is None:
        raise ValueError("as_of must be an aware datetime")
    with connection(conn_or_store) as conn:
        if conn.dialect.name == "postgresql":
            # The planner's high cost estimates for the per-ticket lookups trigger JIT compilation,
            # which took longer (≈ 2.7 s) than running the month's ticket statement itself.
            conn.exec_driver_sql("SET LOCAL jit = off")
        directory = directory or load_directory(conn, settings.merge_agents_by)
        with agent_keys(conn, directory.merged) as keys:
            yield Computation(conn, settings, calendar, as_of, directory, keys)
