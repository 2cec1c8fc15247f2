"""SLA clocks in SQL: elapsed seconds on a metric's clock, less the time spent in pause statuses.

``[scorecard] pause_statuses`` (e.g. ``["pending"]``: waiting for the patient) stop the clock. The
pauses are replayed from ``ticket_status_history``: each transition into a pause status starts a
pause that lasts until the ticket's next transition (or until ``as_of``). Only the part of a pause
inside the measured window counts, measured on the same clock (calendar or business hours).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from connector.metrics.settings import Clock, ClockedMetric
from connector.metrics.sql import Scope, at, epoch, greatest_of, least_of, seconds
from connector.store.schema import ticket_status_history


def paused_seconds(
    scope: Scope, clock: Clock, ticket: sa.FromClause, start_s: ColumnElement, end_s: ColumnElement
) -> ColumnElement[float]:
    """Seconds of ``[start_s, end_s]`` the ticket (a row of ``ticket``) spent in a pause status."""
    h = ticket_status_history
    ordered = {"order_by": (h.c.changed_at, h.c.id)}
    spans = (
        sa.select(
            h.c.to_status,
            epoch(h.c.changed_at).label("pause_start"),
            epoch(sa.func.lead(h.c.changed_at).over(**ordered)).label("pause_next"),
        )
        .where(
            h.c.source == ticket.c.source,
            h.c.ticket_id == ticket.c.external_id,
            h.c.changed_at <= at(scope.as_of),
        )
        .correlate(ticket)
        .subquery("pause_spans")
    )
    pause_end = sa.func.coalesce(spans.c.pause_next, seconds(scope.as_of.timestamp()))
    clipped = scope.elapsed(clock, greatest_of(spans.c.pause_start, start_s), least_of(pause_end, end_s))
    total = (
        sa.select(sa.func.sum(greatest_of(clipped, seconds(0.0))))
        .where(spans.c.to_status.in_(scope.settings.pause_statuses))
        .correlate_except(spans)
    )
    return sa.func.coalesce(total.scalar_subquery(), 0.0)


def clocked(
    scope: Scope, metric: ClockedMetric, ticket: sa.FromClause, start_s: ColumnElement, end_s: ColumnElement
) -> tuple[ColumnElement[float], ColumnElement[float]]:
    """(elapsed, paused) seconds from ``start_s`` to ``end_s`` on ``metric``'s clock."""
    clock = scope.settings.clock_for(metric)
    elapsed = scope.elapsed(clock, start_s, end_s)
    if not scope.settings.pause_statuses:
        return elapsed, seconds(0.0)
    return elapsed, paused_seconds(scope, clock, ticket, start_s, end_s)
