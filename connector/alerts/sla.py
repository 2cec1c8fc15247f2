"""The complaint SLA rules, ``first_response`` and ``resolution``, judged by the metrics engine.

Whether a complaint is answered, how many hours its clock has run (calendar or business hours,
minus pause statuses, from the clock start the ``[scorecard]`` settings define) and whether that is
past the limit all come from :func:`connector.metrics.ticket_sla`, the very judgement the scorecard
counts. This module only adds the warning lead and picks what needs action now:

- ``first_response``: an open complaint (not resolved) with no first response — ``breach`` once the
  scorecard calls it breached (elapsed > limit), ``warning`` from ``limit - warn_before`` on.
- ``resolution``: an unresolved complaint, the same way against the resolution limit.

A complaint that was answered or resolved, even late, is no longer in alert: the scorecard keeps
the breach, the alert was the call to act. Complaints without an owner are not judged by the
scorecard and do not alert; nor do those whose response clock has not started (``not_owed``).

Only currently open complaints old enough to be near a limit are handed to the engine: elapsed time
on any clock is at most the calendar time since creation, so younger ones cannot be in alert.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from connector.alerts.model import Finding, RuleContext
from connector.alerts.settings import DeadlineRule
from connector.metrics import TicketSla, ticket_sla
from connector.metrics.sql import at
from connector.store.schema import tickets
from connector.ticket_history import RESOLVED_STATUSES

_SUBJECT_CHARS = 30


@dataclass(frozen=True)
class _Limit:
    rule: str
    settings: DeadlineRule
    limit: timedelta
    clock: str

    @property
    def warn_from(self) -> timedelta:
        """Elapsed clock time from which the rule is in alert (the limit itself when no warning)."""
        return self.limit - self.settings.lead(self.limit)


@dataclass(frozen=True)
class _Open:
    owner_id: str
    subject: str | None
    created_at: datetime


def sla_rules(conn: sa.Connection, context: RuleContext) -> Iterator[Finding]:
    scorecard = context.scorecard
    limits = [
        _Limit(name, getattr(context.settings, name), limit, scorecard.clock_for(metric))
        for name, limit, metric in (
            ("first_response", scorecard.response_limit, "first_response_within_sla"),
            ("resolution", scorecard.resolution_limit, "resolution_within_sla"),
        )
        if context.settings.is_on(name)
    ]
    if not limits:
        return
    created_to = context.now - min(limit.warn_from for limit in limits) + timedelta(microseconds=1)
    candidates = _open_complaints(conn, created_to)
    if not candidates:
        return
    judged = ticket_sla(
        conn,
        scorecard,
        context.calendar,
        created_from=min(ticket.created_at for ticket in candidates.values()),
        created_to=created_to,
        as_of=context.now,
    )
    for sla in judged:
        ticket = candidates.get((sla.source, sla.ticket_id))
        if ticket is None or sla.resolved_at is not None:
            continue
        for limit in limits:
            finding = _finding(limit, sla, ticket, context)
            if finding is not None:
                yield finding


def _open_complaints(conn: sa.Connection, created_to: datetime) -> dict[tuple[str, str], _Open]:
    t = tickets
    query = sa.select(t.c.source, t.c.external_id, t.c.owner_id, t.c.subject, t.c.created_at).where(
        t.c.category == "complaint",
        t.c.deleted_at.is_(None),
        t.c.owner_id.is_not(None),
        sa.func.coalesce(t.c.status, "open").not_in(sorted(RESOLVED_STATUSES)),
        t.c.created_at < at(created_to),
    )
    return {
        (row.source, row.external_id): _Open(row.owner_id, row.subject, row.created_at)
        for row in conn.execute(query)
    }


def _finding(limit: _Limit, sla: TicketSla, ticket: _Open, context: RuleContext) -> Finding | None:
    if limit.rule == "first_response":
        if sla.first_response_at is not None or sla.response_hours is None:
            return None
        state, hours = sla.response_state, sla.response_hours
    else:
        state, hours = sla.resolution_state, sla.resolution_hours
    elapsed = timedelta(hours=hours)
    if state == "breached":
        severity = "breach"
    elif state == "pending" and limit.warn_from < limit.limit and elapsed >= limit.warn_from:
        severity = "warning"
    else:
        return None
    details: dict[str, object] = {
        "label": _label(sla.ticket_id, ticket.subject),
        "limit_h": limit.limit / timedelta(hours=1),
        "created": context.local(sla.created_at),
    }
    if severity == "warning":
        details["deadline"] = context.local(_deadline(limit, elapsed, context))
    return Finding(
        rule=limit.rule,
        severity=severity,
        source=sla.source,
        agent_id=ticket.owner_id,
        entity="tickets",
        entity_id=sla.ticket_id,
        details=details,
    )


def _deadline(limit: _Limit, elapsed: timedelta, context: RuleContext) -> datetime:
    """When the clock reaches the limit if it runs on from now (to the second: the engine's
    millisecond arithmetic must not make the shown minute flicker between evaluations)."""
    remaining = limit.limit - elapsed
    if limit.clock == "business":
        moment = context.calendar.add_working_time(context.now, remaining)
    else:
        moment = context.now + remaining
    return moment.replace(microsecond=0) + timedelta(seconds=round(moment.microsecond / 1e6))


def _label(ticket_id: str, subject: str | None) -> str:
    text = " ".join((subject or "").split())
    if not text:
        return ticket_id
    if len(text) > _SUBJECT_CHARS:
        text = text[: _SUBJECT_CHARS - 1] + "…"
    return f"{ticket_id} “{text}”"
