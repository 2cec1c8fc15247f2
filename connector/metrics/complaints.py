"""Complaint SLAs in SQL: first response within 24 h, resolution within 48 h (by default).

:func:`complaint_facts` judges each complaint of the period's ticket rows; the scorecard totals,
``explain`` and the alert rules all read it, so they can never disagree about a breach.

* First response: the CRM's mapped ``first_response_at`` when set and not before the clock start;
  else the earliest answered call (``started_at``) or completed follow-up (``completed_at``) owned
  by the ticket's owner, linked to the ticket or to its contact, at or after the clock start — each
  source only if ``[scorecard] response_sources`` lists it. Missed calls and cancelled follow-ups
  are no response.
* States, judged as of ``as_of``: "met" (answered / resolved within the limit, inclusive),
  "breached" (answered late, or still waiting past the limit), "pending" (still waiting, limit not
  reached: not counted in the rate) and, for the response only, "not_owed" (a self-logged complaint
  whose patient never called again — see ``self_logged_clock``).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from connector.metrics.sla import clocked
from connector.metrics.sql import KEY_COLUMNS, Scope, at, epoch, least_of, materialized, seconds
from connector.store.schema import calls, follow_ups
from connector.store.types import UTCDateTime

_CARRIED = (
    "source",
    "external_id",
    "key_source",
    "key_id",
    "contact_id",
    "created_at",
    "clock_start",
    "resolved_at",
)


def _earliest_activity(scope: Scope, rows: sa.CTE) -> tuple[list[ColumnElement], list[ColumnElement]]:
    """Per complaint, the earliest owned call / completed follow-up per link (ticket, contact).

    Only looked up where the CRM's own first-response time does not settle it: it wins when set.
    """
    sources, as_of = scope.settings.response_sources, at(scope.as_of)
    unsettled = sa.or_(rows.c.first_response_at.is_(None), rows.c.first_response_at < rows.c.clock_start)
    found: list[ColumnElement] = []
    by_call: list[ColumnElement] = []
    lookups = (
        ("calls", calls, "started_at", sa.func.coalesce(calls.c.direction, "") != "missed"),
        ("follow_ups", follow_ups, "completed_at", sa.func.coalesce(follow_ups.c.status, "") != "cancelled"),
    )
    for name, table, time_column, answered in lookups:
        if name not in sources:
            continue
        when = table.c[time_column]
        for link, value in (("ticket_id", rows.c.external_id), ("contact_id", rows.c.contact_id)):
            earliest = sa.select(sa.func.min(when)).where(
                table.c.source == rows.c.source,
                table.c[link] == value,
                table.c.owner_id == rows.c.owner_id,
                table.c.deleted_at.is_(None),
                when >= rows.c.clock_start,
                when <= as_of,
                answered,
            )
            column = sa.case((unsettled, earliest.scalar_subquery())).label(f"{name}_by_{link}")
            found.append(column)
            if table is calls:
                by_call.append(column)
    return found, by_call


def _judged(scope: Scope, rows: sa.CTE) -> sa.CTE:
    """Complaints with their first response and raw / paused seconds on each SLA clock."""
    activity, by_call = _earliest_activity(scope, rows)
    looked_up = materialized(
        sa.select(
            *(rows.c[name] for name in _CARRIED), rows.c.first_response_at.label("field"), *activity
        ).where(rows.c.category == "complaint"),
        "sc_complaints",
    )
    k, as_of = looked_up, at(scope.as_of)
    field_ok = sa.case((k.c.field >= k.c.clock_start, k.c.field))
    earliest = least_of(*(k.c[c.name] for c in activity)) if activity else sa.cast(sa.null(), UTCDateTime())
    first_response = sa.func.coalesce(field_ok, earliest)
    via = [(field_ok.is_not(None), "field")]
    if by_call:
        via.append((earliest == least_of(*(k.c[c.name] for c in by_call)), "call"))
    via.append((earliest.is_not(None), "follow_up"))
    response_raw, response_paused = clocked(
        scope,
        "first_response_within_sla",
        k,
        epoch(k.c.clock_start),
        epoch(sa.func.coalesce(first_response, as_of)),
    )
    resolution_raw, resolution_paused = clocked(
        scope,
        "resolution_within_sla",
        k,
        epoch(k.c.created_at),
        epoch(sa.func.coalesce(k.c.resolved_at, as_of)),
    )
    query = sa.select(
        *(k.c[name] for name in _CARRIED),
        first_response.label("first_response_at"),
        sa.case(*via).label("response_via"),
        response_raw.label("response_raw_s"),
        response_paused.label("response_paused_s"),
        resolution_raw.label("resolution_raw_s"),
        resolution_paused.label("resolution_paused_s"),
    )
    return materialized(query, "sc_complaints_judged")


def _state(net: ColumnElement, done: ColumnElement[bool], limit_hours: float) -> ColumnElement[str]:
    limit = seconds(limit_hours * 3600)
    return sa.case((sa.and_(done, net <= limit), "met"), (net > limit, "breached"), else_="pending")


def complaint_facts(scope: Scope, rows: sa.CTE) -> sa.Subquery:
    """One row per complaint among ``rows`` (:func:`connector.metrics.tickets.ticket_rows`)."""
    settings = scope.settings
    j = _judged(scope, rows)
    response = j.c.response_raw_s - j.c.response_paused_s
    resolution = j.c.resolution_raw_s - j.c.resolution_paused_s
    response_state = sa.case(
        (j.c.clock_start.is_(None), "not_owed"),
        else_=_state(response, j.c.first_response_at.is_not(None), settings.response_limit_hours),
    )
    resolution_state = _state(resolution, j.c.resolved_at.is_not(None), settings.resolution_limit_hours)
    return sa.select(
        *(j.c[name] for name in _CARRIED),
        j.c.first_response_at,
        j.c.response_via,
        (response / 3600.0).label("response_hours"),
        (j.c.response_paused_s / 3600.0).label("response_paused_hours"),
        response_state.label("response_state"),
        (resolution / 3600.0).label("resolution_hours"),
        (j.c.resolution_paused_s / 3600.0).label("resolution_paused_hours"),
        resolution_state.label("resolution_state"),
    ).subquery("sc_complaint_facts")


def complaint_totals(facts: sa.Subquery) -> sa.Subquery:
    """Per agent key: complaints met / breached on each SLA."""

    def count(column: ColumnElement, state: str) -> ColumnElement[int]:
        return sa.func.count(sa.case((column == state, 1)))

    keys = [facts.c[k] for k in KEY_COLUMNS]
    return (
        sa.select(
            *keys,
            count(facts.c.response_state, "met").label("response_met"),
            count(facts.c.response_state, "breached").label("response_breached"),
            count(facts.c.resolution_state, "met").label("resolution_met"),
            count(facts.c.resolution_state, "breached").label("resolution_breached"),
        )
        .group_by(*keys)
        .subquery("complaint_totals")
    )
