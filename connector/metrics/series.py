"""Computing and storing the scorecards of one or more periods: the engine's public entry points.

Speed: given a store (not a caller's connection), the work — each needed period times each query
group of :data:`connector.metrics.engine.GROUPS` — is spread over up to ``WORKERS`` connections;
SQLite and PostgreSQL run the statements outside Python's GIL, so a 2-core machine computes two
statements at once. Memory stays flat: only per-agent totals come back.

Trend: each scorecard's trend compares with the previous period. That period's stored scorecards
are used when they are final — computed after the period ended and not after ``as_of`` — so a
routine recomputation of the current month does not recompute last month; otherwise (never
stored, stored mid-period, or a recomputation "as of" an earlier moment) it is computed afresh.
Late data for a closed period is picked up by recomputing that period, which replaces its rows.
A period computed only for a trend needs just its composites, so it skips the statements of
metrics that are not scored (see :func:`connector.metrics.engine.Computation.totals`).
"""

from __future__ import annotations

import json
import queue
from collections import defaultdict
from collections.abc import Collection, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from connector.calendar import BusinessCalendar
from connector.metrics.agents import AgentDirectory, AgentKey, load_directory
from connector.metrics.definitions import CATEGORIES, METRICS
from connector.metrics.engine import (
    GROUPS,
    WORKERS,
    ConnOrStore,
    PeriodMetrics,
    Totals,
    composites,
    computation,
    connection,
    period_metrics,
    score_period,
)
from connector.metrics.model import Scorecard
from connector.metrics.periods import Period, parse_period
from connector.metrics.settings import ScorecardSettings
from connector.store import Store
from connector.store.schema import scorecards as scorecards_table

Task = tuple[Period, str]


def _parallel(conn_or_store: ConnOrStore) -> bool:
    """Whether work may use separate connections (not a caller's connection, nor a shared one)."""
    return isinstance(conn_or_store, Store) and not conn_or_store.shares_one_connection


def _all_metrics(
    conn_or_store: ConnOrStore,
    settings: ScorecardSettings,
    calendar: BusinessCalendar,
    as_of: datetime,
    periods: dict[Period, Collection[str]],
) -> tuple[AgentDirectory, dict[Period, PeriodMetrics]]:
    """The metrics of every period (those it maps to), on one connection or spread over several."""
    # The costlier first, so the last ones finish together: periods computed in full before those
    # only a trend needs (fewer metrics), and within each the ticket statements before the rest.
    tasks: list[Task] = sorted(
        ((period, group) for group in GROUPS for period in periods), key=lambda task: -len(periods[task[0]])
    )
    workers = min(WORKERS, len(tasks)) if _parallel(conn_or_store) else 1
    if workers == 1:
        with computation(conn_or_store, settings, calendar, as_of) as run:
            return run.directory, {period: run.metrics(period, wanted) for period, wanted in periods.items()}
    with connection(conn_or_store) as conn:
        directory = load_directory(conn, settings.merge_agents_by)

    pending: queue.SimpleQueue[Task] = queue.SimpleQueue()
    for task in tasks:
        pending.put(task)

    def work() -> list[tuple[Period, dict[AgentKey, Totals]]]:
        done = []
        with computation(conn_or_store, settings, calendar, as_of, directory) as run:
            while True:
                try:
                    period, group = pending.get_nowait()
                except queue.Empty:
                    return done
                done.append((period, run.totals(period, [group], periods[period])))

    merged: dict[Period, dict[AgentKey, Totals]] = {period: defaultdict(dict) for period in periods}
    with ThreadPoolExecutor(workers, thread_name_prefix="scorecards") as pool:
        for future in [pool.submit(work) for _ in range(workers)]:
            for period, per_key in future.result():
                for key, totals in per_key.items():
                    merged[period][key].update(totals)
    return directory, {
        period: period_metrics(calendar, period, as_of, per_key) for period, per_key in merged.items()
    }


def _stored_composites(
    conn_or_store: ConnOrStore, period: Period, as_of: datetime
) -> dict[AgentKey, float | None] | None:
    """The stored composites of ``period`` if they are final (see the module docstring), else None."""
    table = scorecards_table
    with connection(conn_or_store) as conn:
        rows = conn.execute(
            sa.select(table.c.source, table.c.agent_id, table.c.composite, table.c.computed_at).where(
                table.c.period == period.label
            )
        ).all()
    if not rows or any(not period.end_utc <= row.computed_at <= as_of for row in rows):
        return None
    return {(row.source, row.agent_id): row.composite for row in rows}


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
    """Scorecards of several periods (each a Period or a label), in the given order."""
    resolved = [_resolve(p, tz) for p in periods]
    stored = {
        before: found
        for before in dict.fromkeys(period.previous() for period in resolved)
        if before not in resolved and (found := _stored_composites(conn_or_store, before, as_of)) is not None
    }
    needed: dict[Period, Collection[str]] = {
        p: METRICS if p in resolved else settings.scored_metrics
        for p in dict.fromkeys(p for r in resolved for p in (r.previous(), r))
        if p not in stored
    }
    directory, metrics = _all_metrics(conn_or_store, settings, calendar, as_of, needed)
    results = []
    for period in resolved:
        before = period.previous()
        if before in stored:
            previous = stored[before]
        else:
            previous = composites(settings, before, as_of, metrics[before])
        cards = score_period(settings, directory, period, as_of, metrics[period], previous)
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
    for an agent who no longer has data in it. ``computed_at`` is the ``as_of`` they were judged at.
    """
    if any(card.period.label != period.label for card in cards):
        raise ValueError(f"store_scorecards({period.label}): got a scorecard of another period")
    with connection(conn_or_store) as conn:
        conn.execute(sa.delete(scorecards_table).where(scorecards_table.c.period == period.label))
        if cards:
            conn.execute(sa.insert(scorecards_table), [scorecard_row(card, computed_at) for card in cards])
    return len(cards)
