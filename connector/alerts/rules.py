"""The alert rules: each is one set-based query returning what is in alert *now*.

A rule returns findings, never writes; :mod:`connector.alerts.evaluate` reconciles them with the
``alerts`` table. Because a finding exists only while its condition holds, "the alert resolves itself"
needs no rule-specific code: deleted records (``deleted_at`` set) are excluded by every query, so
they never alert and their open alerts close.

- ``first_response`` / ``resolution`` (:mod:`connector.alerts.sla`): complaints nearing or past the
  ``[scorecard]`` limits, judged by the metrics engine's own ticket facts.
- ``follow_up_overdue``: due time passed, not completed, not cancelled. A follow-up marked done
  without a completion time counts as done.
- ``low_score``: a survey score, or a ticket's satisfaction rating, of 1..``max_score`` received
  within ``lookback``. The CRMs do not timestamp a ticket's rating, so a ticket's rating is dated by
  the ticket's modification time (``updated_at``). The alert closes when the rating ages out of the
  window, is changed to a better one, or the record is deleted.
- ``low_composite`` (:mod:`connector.alerts.composite`): month-to-date composite below a threshold.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import sqlalchemy as sa

from connector.alerts.composite import low_composite
from connector.alerts.model import Finding, RuleContext
from connector.alerts.sla import sla_rules
from connector.metrics.sql import at
from connector.store.schema import follow_ups, surveys, tickets

Rule = Callable[[sa.Connection, RuleContext], Iterable[Finding]]


def follow_up_overdue(conn: sa.Connection, context: RuleContext) -> Iterator[Finding]:
    if not context.settings.is_on("follow_up_overdue"):
        return
    f = follow_ups
    query = sa.select(f.c.source, f.c.external_id, f.c.owner_id, f.c.due_at).where(
        f.c.deleted_at.is_(None),
        f.c.due_at < at(context.now),
        f.c.completed_at.is_(None),
        sa.func.coalesce(f.c.status, "planned").not_in(["done", "cancelled"]),
    )
    for row in conn.execute(query):
        yield Finding(
            rule="follow_up_overdue",
            severity="breach",
            source=row.source,
            agent_id=row.owner_id,
            entity="follow_ups",
            entity_id=row.external_id,
            details={"label": row.external_id, "due": context.local(row.due_at)},
        )


def low_score(conn: sa.Connection, context: RuleContext) -> Iterator[Finding]:
    if not context.settings.is_on("low_score"):
        return
    rule = context.settings.low_score
    since = at(context.now - rule.lookback_delta)
    s, t = surveys, tickets
    survey_rows = sa.select(
        sa.literal("surveys").label("entity"), s.c.source, s.c.external_id, s.c.owner_id, s.c.score
    ).where(s.c.deleted_at.is_(None), s.c.score.between(1, rule.max_score), s.c.submitted_at >= since)
    ticket_rows = sa.select(
        sa.literal("tickets").label("entity"),
        t.c.source,
        t.c.external_id,
        t.c.owner_id,
        t.c.satisfaction.label("score"),
    ).where(t.c.deleted_at.is_(None), t.c.satisfaction.between(1, rule.max_score), t.c.updated_at >= since)
    for row in conn.execute(sa.union_all(survey_rows, ticket_rows)):
        yield Finding(
            rule="low_score",
            severity="warning",
            source=row.source,
            agent_id=row.owner_id,
            entity=row.entity,
            entity_id=row.external_id,
            details={"label": row.external_id, "score": row.score},
        )


#: Every rule, in evaluation order. Each checks its own switch in ``[alerts]``, so an alert of a rule
#: switched off finds nothing and closes; ``sla_rules`` serves two rules from one engine query.
RULES: tuple[Rule, ...] = (sla_rules, follow_up_overdue, low_score, low_composite)
#: Rule names: the keys of ``[alerts]`` and the values of the ``alerts.rule`` column.
RULE_NAMES = ("first_response", "resolution", "follow_up_overdue", "low_score", "low_composite")
