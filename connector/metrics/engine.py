"""Computing and storing scorecards: the engine's entry points.

A computation runs on one connection: it reads the (small) agents table to know who merges with
whom, loads the merged members and, when a clock counts business hours, the calendar's working
intervals into temporary tables, then runs one set-based query per metric group and period. Only
per-agent totals come back to Python, so the cost grows with the database's work, not with Python
loops over rows. The previous period is computed too, for the trend.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from connector.calendar import BusinessCalendar
from connector.metrics import activity
from connector.metrics.agents import AgentDirectory, AgentKey, load_directory
from connector.metrics.definitions import CATEGORIES
from connector.metrics.model import Scorecard
from connector.metrics.periods import Period, parse_period
from connector.metrics.scoring import competition_ranks, goal_statuses, score_metrics
from connector.metrics.settings import ScorecardSettings
from connector.metrics.sql import AgentKeys, Scope, agent_keys, work_table
from connector.metrics.tickets import ticket_totals
from connector.store import Store
from connector.store.schema import scorecards as scorecards_table

ConnOrStore = Connection | Store
Totals = dict[str, Any]


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


def derive_metrics(totals: Totals, scheduled_hours: float) -> dict[str, float | None]:
    """Every design.md metric from one agent's totals (None where the denominator is empty)."""

    def n(name: str) -> float:
        return float(totals.get(name) or 0)

    rated = n("rated") + n("survey_rated")
    served = int(n("contacts_served"))
    median = totals.get("median_hours")
    return {
        "satisfaction_rate": _ratio(n("good") + n("survey_good"), rated),
        "avg_satisfaction": _ratio(n("rating_sum") + n("survey_rating_sum"), rated),
        "accuracy_audit": totals.get("accuracy_audit"),
        "politeness_audit": totals.get("politeness_audit"),
        "first_response_within_sla": _ratio(n("response_met"), n("response_met") + n("response_breached")),
        "resolution_within_sla": _ratio(n("resolution_met"), n("resolution_met") + n("resolution_breached")),
        "median_resolution_hours": None if median is None else float(median),
        "tickets_handled": int(n("tickets_handled")),
        "complaints_handled": int(n("complaints_handled")),
        "contacts_served": served,
        "follow_up_completion": _ratio(n("follow_ups_on_time"), n("follow_ups_due")),
        "follow_ups_done": int(n("follow_ups_done")),
        "call_duration_compliance": _ratio(n("calls_within"), n("calls_judged")),
        "contacts_per_hour": served / scheduled_hours if scheduled_hours > 0 else None,
        "knowledge_score": totals.get("knowledge_score"),
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
            yield Scope(self.settings, start, end, self.as_of, self.keys, work)

    def scheduled_hours(self, period: Period) -> float:
        """Working hours of the period up to ``as_of`` (month-to-date is not diluted by the future)."""
        end = min(period.end_utc, self.as_of)
        return self.calendar.working_hours(period.start_utc, end) if end > period.start_utc else 0.0

    def follow_ups_target(self, period: Period) -> float:
        share = period.elapsed_share(self.as_of)
        return round(self.settings.follow_up_monthly_target * period.months * share, 2)

    def totals(self, period: Period) -> dict[AgentKey, Totals]:
        per_key: dict[AgentKey, Totals] = defaultdict(dict)
        with self.scope(period.start_utc, period.end_utc) as scope:
            queries: list[tuple[sa.Select, str]] = [
                (ticket_totals(scope), ""),
                (activity.survey_totals(scope), "survey_"),
                (activity.call_totals(scope), ""),
                (activity.follow_up_totals(scope), ""),
                (activity.contacts_served(scope), ""),
            ]
            for query, prefix in queries:
                for row in self.conn.execute(query).mappings():
                    key = (row["key_source"], row["key_id"])
                    per_key[key].update(
                        {
                            f"{prefix}{name}": value
                            for name, value in row.items()
                            if name not in ("key_source", "key_id")
                        }
                    )
            for row in self.conn.execute(activity.assessment_totals(scope)).mappings():
                per_key[(row["key_source"], row["key_id"])][row["metric"]] = float(row["mean_score"])
        return per_key

    def metrics(self, period: Period) -> dict[AgentKey, dict[str, float | None]]:
        hours = self.scheduled_hours(period)
        return {key: derive_metrics(totals, hours) for key, totals in self.totals(period).items()}

    def composites(self, period: Period) -> dict[AgentKey, float | None]:
        target = self.follow_ups_target(period)
        return {
            key: score_metrics(self.settings, m, target).composite for key, m in self.metrics(period).items()
        }

    def scorecards(self, period: Period, previous: Mapping[AgentKey, float | None]) -> list[Scorecard]:
        """Every agent with data in ``period``, ranked, best first (then by key)."""
        target = self.follow_ups_target(period)
        per_key = self.metrics(period)
        scored = {key: score_metrics(self.settings, metrics, target) for key, metrics in per_key.items()}
        ranks = competition_ranks({key: s.composite for key, s in scored.items()})
        cards = []
        for key, metrics in per_key.items():
            s, members = scored[key], tuple(self.directory.members(key))
            before = previous.get(key)
            cards.append(
                Scorecard(
                    source=key[0],
                    agent_id=key[1],
                    agent_name=self.directory.name(key),
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
                    goals=goal_statuses(self.settings, period, self.as_of, {e for _, e in members}, metrics),
                    members=members,
                )
            )
        return sorted(cards, key=lambda c: (c.rank is None, c.rank or 0, c.key))


@contextmanager
def computation(
    conn_or_store: ConnOrStore, settings: ScorecardSettings, calendar: BusinessCalendar, as_of: datetime
) -> Iterator[Computation]:
    if as_of.tzinfo is None:
        raise ValueError("as_of must be an aware datetime")
    with connection(conn_or_store) as conn:
        directory = load_directory(conn, settings.merge_agents_by)
        with agent_keys(conn, directory.merged) as keys:
            yield Computation(conn, settings, calendar, as_of, directory, keys)


def _resolve(period: Period | str, tz: ZoneInfo) -> Period:
    return parse_period(period, tz) if isinstance(period, str) else period


def compute_series(
    conn_or_store: ConnOrStore,
    settings: ScorecardSettings,
    calendar: BusinessCalendar,
    tz: ZoneInfo,
    periods: Sequence[Period | str],
    *,
    as_of: datetime,
    agent: str | None = None,
) -> list[list[Scorecard]]:
    """Scorecards of several periods in one go; consecutive periods reuse each other for the trend."""
    resolved = [_resolve(p, tz) for p in periods]
    results: list[list[Scorecard]] = []
    with computation(conn_or_store, settings, calendar, as_of) as run:
        last: tuple[Period, dict[AgentKey, float | None]] | None = None
        for period in resolved:
            before = period.previous()
            previous = last[1] if last and last[0] == before else run.composites(before)
            cards = run.scorecards(period, previous)
            last = (period, {card.key: card.composite for card in cards})
            results.append([card for card in cards if agent is None or card.matches(agent)])
    return results


def compute_scorecards(
    conn_or_store: ConnOrStore,
    settings: ScorecardSettings,
    calendar: BusinessCalendar,
    tz: ZoneInfo,
    period: Period | str,
    *,
    as_of: datetime,
    agent: str | None = None,
) -> list[Scorecard]:
    """Scorecards of every agent with data in ``period`` (a Period or a label such as "2026-10").

    Everything is judged as it stood at ``as_of`` (inject the clock). Ranks are within the whole team
    even when ``agent`` (an external id of the agent or of any merged member) narrows the result.
    """
    return compute_series(conn_or_store, settings, calendar, tz, [period], as_of=as_of, agent=agent)[0]


def scorecard_row(card: Scorecard, computed_at: datetime) -> dict[str, Any]:
    """The ``scorecards`` table row of ``card``."""
    return {
        "source": card.source,
        "agent_id": card.agent_id,
        "period": card.period.label,
        "period_start": card.period.start_utc,
        "period_end": card.period.end_utc,
        "agent_name": card.agent_name,
        "metrics": json.dumps({**card.metrics, "follow_ups_target": card.follow_ups_target}, sort_keys=True),
        **{category: card.categories[category] for category in CATEGORIES},
        "composite": card.composite,
        "bonus_pct": card.bonus_pct,
        "rank": card.rank,
        "trend": card.trend,
        "missing": json.dumps(list(card.missing)),
        "computed_at": computed_at,
    }


def store_scorecards(
    conn_or_store: ConnOrStore, period: Period, cards: Sequence[Scorecard], *, computed_at: datetime
) -> int:
    """Replace the stored scorecards of ``period`` with ``cards`` (all of the period's agents).

    Recomputing a period after late data arrived therefore leaves no stale row behind, including
    for an agent who no longer has data in it.
    """
    if any(card.period.label != period.label for card in cards):
        raise ValueError(f"store_scorecards({period.label}): got a scorecard of another period")
    with connection(conn_or_store) as conn:
        conn.execute(sa.delete(scorecards_table).where(scorecards_table.c.period == period.label))
        if cards:
            conn.execute(sa.insert(scorecards_table), [scorecard_row(card, computed_at) for card in cards])
    return len(cards)
