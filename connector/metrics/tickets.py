"""Ticket metrics in SQL: one row per ticket of the period, then per-agent totals in one statement.

:func:`ticket_rows` holds what every ticket metric and ``explain`` read, computed once per ticket
created in the period (the period of ``created_at``; a ticket created after ``as_of`` does not exist
yet):

* resolution — ``[scorecard] resolution = "last"``: the current resolution (``resolved_at`` as the
  sync keeps it, so a reopened ticket is unresolved until resolved again); ``"first"``: the first
  move to resolved/closed in ``ticket_status_history`` (or the current resolution if earlier).
  Resolutions after ``as_of`` have not happened yet.
* reopened — a move in the history from resolved/closed back to an open status; reopen_rate is
  reopened ÷ tickets ever resolved.
* response clock start — ``created_at``; with ``self_logged_clock = "second_contact"`` a complaint
  from a ``self_logged_channels`` channel (staff typed it in while the patient was on the phone or
  at the desk, so that contact already answered them) starts at the patient's next call from the
  ticket's contact (inbound or missed), and owes no response without one.

Complaint SLAs are judged in :mod:`connector.metrics.complaints`; median_resolution_hours covers
every resolved ticket on its own clock (``metric_clocks``), less pauses.
"""

from __future__ import annotations

import statistics
from collections.abc import Collection, Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from connector.metrics.complaints import complaint_facts, complaint_totals
from connector.metrics.sla import clocked
from connector.metrics.sql import KEY_COLUMNS, Scope, at, epoch, materialized
from connector.store.schema import calls, ticket_status_history, tickets
from connector.store.types import UTCDateTime
from connector.ticket_history import RESOLVED_STATUSES

RESOLVED = sorted(RESOLVED_STATUSES)


def _resolution(scope: Scope, t: sa.Table) -> ColumnElement:
    as_of = at(scope.as_of)
    current_at = sa.func.coalesce(t.c.resolved_at, t.c.updated_at)
    current = sa.case((sa.and_(t.c.status.in_(RESOLVED), current_at <= as_of), current_at))
    if scope.settings.resolution == "last":
        return current
    h = ticket_status_history
    moves = (
        sa.select(h.c.changed_at.label("at"))
        .where(
            h.c.source == t.c.source,
            h.c.ticket_id == t.c.external_id,
            h.c.to_status.in_(RESOLVED),
            h.c.changed_at <= as_of,
        )
        .correlate(t)
    )
    both = sa.union_all(moves, sa.select(current.label("at")).correlate(t)).subquery("resolutions")
    return sa.select(sa.func.min(both.c.at)).scalar_subquery()


def _reopened(scope: Scope, t: sa.Table) -> ColumnElement[int]:
    h = ticket_status_history
    back = sa.exists().where(
        h.c.source == t.c.source,
        h.c.ticket_id == t.c.external_id,
        h.c.from_status.in_(RESOLVED),
        h.c.to_status.not_in(RESOLVED),
        h.c.changed_at <= at(scope.as_of),
    )
    return sa.case((back, 1), else_=0)


def _clock_start(scope: Scope, t: sa.Table) -> ColumnElement:
    settings = scope.settings
    if settings.self_logged_clock == "created":
        return t.c.created_at
    c = calls.alias("patient_call")
    next_call = sa.select(sa.func.min(c.c.started_at)).where(
        c.c.source == t.c.source,
        c.c.contact_id == t.c.contact_id,
        c.c.direction.in_(("inbound", "missed")),
        c.c.deleted_at.is_(None),
        c.c.started_at > t.c.created_at,
        c.c.started_at <= at(scope.as_of),
    )
    self_logged = sa.and_(t.c.category == "complaint", t.c.channel.in_(settings.self_logged_channels))
    return sa.case((self_logged, next_call.scalar_subquery()), else_=t.c.created_at)


def ticket_rows(scope: Scope, *, reopened: bool = True) -> sa.CTE:
    """The period's tickets with their key and every lookup the ticket metrics need (computed once).

    ``reopened=False`` leaves out the per-ticket history look-up when reopen_rate is not wanted.
    """
    t, as_of = tickets, at(scope.as_of)
    frm, key_source, key_id = scope.agents.keyed(t, t.c.source, t.c.owner_id)
    mapped = sa.case((t.c.first_response_at <= as_of, t.c.first_response_at))
    if "field" not in scope.settings.response_sources:
        mapped = sa.cast(sa.null(), UTCDateTime())
    query = (
        sa.select(
            *(
                t.c[name]
                for name in ("source", "external_id", "owner_id", "category", "contact_id", "satisfaction")
            ),
            key_source,
            key_id,
            t.c.created_at,
            _clock_start(scope, t).label("clock_start"),
            mapped.label("first_response_at"),
            _resolution(scope, t).label("resolved_at"),
            *([_reopened(scope, t).label("reopened")] if reopened else []),
        )
        .select_from(frm)
        .where(
            scope.in_period(t.c.created_at),
            t.c.created_at <= as_of,
            t.c.deleted_at.is_(None),
            t.c.owner_id.is_not(None),
        )
    )
    return materialized(query, "sc_ticket_rows")


def resolution_seconds(scope: Scope, rows: sa.CTE) -> ColumnElement[float]:
    """Seconds from creation to resolution on median_resolution_hours' clock, less pauses (None: open)."""
    elapsed, paused = clocked(
        scope, "median_resolution_hours", rows, epoch(rows.c.created_at), epoch(rows.c.resolved_at)
    )
    return sa.case((rows.c.resolved_at.is_not(None), elapsed - paused))


def _median(scope: Scope, seconds: ColumnElement[float]) -> ColumnElement:
    # SQLite has no median aggregate, and a window-function median costs more than the rest of the
    # ticket metrics together: it hands each agent's whole seconds over in one string instead, and
    # median_hours takes the middle (per-agent post-processing).
    if scope.dialect == "postgresql":
        return sa.func.percentile_cont(0.5).within_group(seconds / 3600.0).label("median_hours")
    whole = sa.cast(sa.func.round(seconds), sa.Integer)
    return sa.func.group_concat(whole).label("resolution_seconds_list")


def median_hours(totals: Mapping[str, Any]) -> float | None:
    """The median resolution hours of one agent's :func:`ticket_totals` row."""
    if "median_hours" in totals:
        return None if totals["median_hours"] is None else float(totals["median_hours"])
    listed = totals.get("resolution_seconds_list")
    return statistics.median(int(v) for v in listed.split(",")) / 3600 if listed else None


def _reopen_counts(rows: sa.CTE) -> tuple[ColumnElement[int], ColumnElement[int]]:
    ever = sa.func.count(sa.case((sa.or_(rows.c.resolved_at.is_not(None), rows.c.reopened == 1), 1)))
    return ever.label("ever_resolved"), sa.func.sum(rows.c.reopened).label("reopened")


def ticket_totals(scope: Scope, metrics: Collection[str]) -> sa.Select:
    """Per agent key: the counts behind the ticket and complaint metrics, in one statement.

    The reopen and median counts are left out unless ``metrics`` has reopen_rate and
    median_resolution_hours (each a tenth of the statement or more; a trend needs neither by default).
    """
    reopen, median = "reopen_rate" in metrics, "median_resolution_hours" in metrics
    rows = ticket_rows(scope, reopened=reopen)
    good = scope.settings.satisfaction_good
    rated = rows.c.satisfaction.between(1, 5)

    def count_if(condition: ColumnElement[bool]) -> ColumnElement[int]:
        return sa.func.count(sa.case((condition, 1)))

    keys = [rows.c[k] for k in KEY_COLUMNS]
    totals = (
        sa.select(
            *keys,
            sa.func.count().label("tickets_handled"),
            count_if(rows.c.category == "complaint").label("complaints_handled"),
            count_if(rated).label("rated"),
            count_if(sa.and_(rated, rows.c.satisfaction >= good)).label("good"),
            sa.func.sum(sa.case((rated, rows.c.satisfaction))).label("rating_sum"),
            *(_reopen_counts(rows) if reopen else ()),
            *([_median(scope, resolution_seconds(scope, rows))] if median else []),
        )
        .group_by(*keys)
        .subquery("ticket_totals")
    )
    sla = complaint_totals(complaint_facts(scope, rows))
    joined = totals.outerjoin(
        sla, sa.and_(sla.c.key_source == totals.c.key_source, sla.c.key_id == totals.c.key_id)
    )
    sla_counts = [
        sla.c[name] for name in ("response_met", "response_breached", "resolution_met", "resolution_breached")
    ]
    return sa.select(totals, *sla_counts).select_from(joined)
