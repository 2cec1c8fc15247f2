"""Call, follow-up, survey and assessment metrics in SQL: fact rows, then per-agent totals.

Like the ticket facts, each ``*_facts`` select carries the judgement (a ``state`` column) that both
the totals and ``explain`` read. Our definitions where no vendor standard exists (the README repeats
them):

* call_duration_compliance — a talk-time band, not average handle time: the share of the agent's
  answered calls, started in the period, whose ``duration_s`` lies within the band of the call's
  purpose (ends inclusive). Missed calls, calls whose purpose has no band and calls without a
  duration are not judged.
* follow_up_completion — follow-ups due in the period (by ``due_at``; a date-only due date is the
  next local midnight) that were completed at or before their due time, over those due by
  ``as_of``. Cancelled follow-ups count nowhere; one not yet due and not done is "pending".
  A follow-up without a due date (a ShareCRM 跟进记录 logging work done) belongs to the period
  of its ``completed_at``: it counts towards follow_ups_done but has no deadline to meet.
* contacts_served — distinct contacts of the agent's tickets created in the period, answered calls
  started in it and follow-ups done in it; contacts_per_hour divides by the business calendar's
  scheduled working hours of the period (up to ``as_of``).
* satisfaction — ratings on tickets plus survey answers; a survey about a ticket that carries its
  own rating is the same answer seen twice, and the ticket's rating wins.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from connector.metrics.sql import KEY_COLUMNS, Scope, at
from connector.store.schema import assessments, calls, follow_ups, surveys, tickets


def _count_if(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return sa.func.count(sa.case((condition, 1)))


def call_facts(scope: Scope) -> sa.Select:
    """Calls started in the period, each with its band judgement ``state``."""
    c, as_of = calls, at(scope.as_of)
    frm, key_source, key_id = scope.agents.keyed(c, c.c.source, c.c.owner_id)
    bands = scope.settings.call_bands
    within = [
        sa.and_(
            c.c.purpose == purpose,
            c.c.duration_s >= band.min_s if band.min_s is not None else sa.true(),
            c.c.duration_s <= band.max_s if band.max_s is not None else sa.true(),
        )
        for purpose, band in bands.items()
    ]
    state = sa.case(
        (c.c.direction == "missed", "missed"),
        (sa.or_(c.c.purpose.is_(None), c.c.purpose.not_in(list(bands))), "no_band"),
        (c.c.duration_s.is_(None), "no_duration"),
        (sa.or_(sa.false(), *within), "within"),
        else_="outside",
    )
    return (
        sa.select(
            c.c.source,
            c.c.external_id,
            key_source,
            key_id,
            c.c.contact_id,
            c.c.purpose,
            c.c.duration_s,
            c.c.started_at,
            state.label("state"),
        )
        .select_from(frm)
        .where(
            scope.in_period(c.c.started_at),
            c.c.started_at <= as_of,
            c.c.deleted_at.is_(None),
            c.c.owner_id.is_not(None),
        )
    )


def call_totals(scope: Scope) -> sa.Select:
    f = call_facts(scope).subquery()
    keys = [f.c[k] for k in KEY_COLUMNS]
    return sa.select(
        *keys,
        _count_if(f.c.state == "within").label("calls_within"),
        _count_if(f.c.state.in_(["within", "outside"])).label("calls_judged"),
    ).group_by(*keys)


def follow_up_facts(scope: Scope) -> sa.Select:
    """Follow-ups of the period, each with ``state`` and whether it was ``done`` by ``as_of``."""
    f, as_of = follow_ups, at(scope.as_of)
    frm, key_source, key_id = scope.agents.keyed(f, f.c.source, f.c.owner_id)
    done = sa.and_(f.c.completed_at.is_not(None), f.c.completed_at <= as_of)
    state = sa.case(
        (f.c.due_at.is_(None), "no_due_date"),
        (sa.and_(done, f.c.completed_at <= f.c.due_at), "on_time"),
        (done, "late"),
        (f.c.due_at <= as_of, "not_done"),
        else_="pending",
    )
    belongs = sa.or_(
        scope.in_period(f.c.due_at), sa.and_(f.c.due_at.is_(None), scope.in_period(f.c.completed_at))
    )
    return (
        sa.select(
            f.c.source,
            f.c.external_id,
            key_source,
            key_id,
            f.c.contact_id,
            f.c.due_at,
            f.c.completed_at,
            state.label("state"),
            sa.case((done, 1), else_=0).label("done"),
        )
        .select_from(frm)
        .where(
            belongs,
            sa.func.coalesce(f.c.status, "") != "cancelled",
            f.c.deleted_at.is_(None),
            f.c.owner_id.is_not(None),
        )
    )


def follow_up_totals(scope: Scope) -> sa.Select:
    f = follow_up_facts(scope).subquery()
    keys = [f.c[k] for k in KEY_COLUMNS]
    return sa.select(
        *keys,
        _count_if(f.c.state == "on_time").label("follow_ups_on_time"),
        _count_if(f.c.state.in_(["on_time", "late", "not_done"])).label("follow_ups_due"),
        sa.func.sum(f.c.done).label("follow_ups_done"),
    ).group_by(*keys)


def survey_facts(scope: Scope) -> sa.Select:
    """Survey answers submitted in the period; ``state`` good / not_good / on_ticket (not counted)."""
    s, as_of = surveys, at(scope.as_of)
    t = tickets.alias("rated_ticket")
    joined = s.outerjoin(
        t, sa.and_(t.c.source == s.c.source, t.c.external_id == s.c.ticket_id, t.c.deleted_at.is_(None))
    )
    owner = sa.func.coalesce(s.c.owner_id, t.c.owner_id)
    frm, key_source, key_id = scope.agents.keyed(joined, s.c.source, owner)
    state = sa.case(
        (t.c.satisfaction.between(1, 5), "on_ticket"),
        (s.c.score >= scope.settings.satisfaction_good, "good"),
        else_="not_good",
    )
    return (
        sa.select(
            s.c.source,
            s.c.external_id,
            key_source,
            key_id,
            s.c.ticket_id,
            s.c.score,
            s.c.submitted_at,
            state.label("state"),
        )
        .select_from(frm)
        .where(
            scope.in_period(s.c.submitted_at),
            s.c.submitted_at <= as_of,
            s.c.deleted_at.is_(None),
            s.c.score.between(1, 5),
            owner.is_not(None),
        )
    )


def survey_totals(scope: Scope) -> sa.Select:
    f = survey_facts(scope).subquery()
    keys = [f.c[k] for k in KEY_COLUMNS]
    counted = f.c.state != "on_ticket"
    return sa.select(
        *keys,
        _count_if(counted).label("rated"),
        _count_if(f.c.state == "good").label("good"),
        sa.func.sum(sa.case((counted, f.c.score))).label("rating_sum"),
    ).group_by(*keys)


def assessment_facts(scope: Scope) -> sa.Select:
    """Assessments in the period with the metric each feeds (``metric`` NULL: a kind no metric uses)."""
    a, settings = assessments, scope.settings
    frm, key_source, key_id = scope.agents.keyed(a, a.c.source, a.c.agent_id)
    metric = sa.case(
        (a.c.kind == "accuracy_audit", "accuracy_audit"),
        (a.c.kind == "politeness_audit", "politeness_audit"),
        (a.c.kind.in_(settings.knowledge_kinds), "knowledge_score"),
    )
    return (
        sa.select(
            a.c.source,
            a.c.external_id,
            key_source,
            key_id,
            a.c.kind,
            a.c.score,
            a.c.assessed_at,
            metric.label("metric"),
        )
        .select_from(frm)
        .where(
            scope.in_period(a.c.assessed_at),
            a.c.assessed_at <= at(scope.as_of),
            a.c.deleted_at.is_(None),
            a.c.agent_id.is_not(None),
            a.c.score.is_not(None),
        )
    )


def assessment_totals(scope: Scope) -> sa.Select:
    """Per agent key: the mean score of each assessment metric (NULL where the agent has none)."""
    f = assessment_facts(scope).subquery()
    keys = [f.c[k] for k in KEY_COLUMNS]

    def mean(metric: str) -> ColumnElement[float]:
        return sa.func.avg(sa.case((f.c.metric == metric, f.c.score))).label(metric)

    means = [mean(metric) for metric in ("accuracy_audit", "politeness_audit", "knowledge_score")]
    return sa.select(*keys, *means).where(f.c.metric.is_not(None)).group_by(*keys)


def contacts_served(scope: Scope) -> sa.Select:
    """Per agent key: distinct (source, contact) served through tickets, answered calls, follow-ups."""

    def contact(source: ColumnElement[str], contact_id: ColumnElement[str]) -> ColumnElement[str]:
        return (source + "|" + contact_id).label("contact")

    t = tickets
    frm, key_source, key_id = scope.agents.keyed(t, t.c.source, t.c.owner_id)
    from_tickets = (
        sa.select(key_source, key_id, contact(t.c.source, t.c.contact_id))
        .select_from(frm)
        .where(
            scope.in_period(t.c.created_at),
            t.c.created_at <= at(scope.as_of),
            t.c.deleted_at.is_(None),
            t.c.owner_id.is_not(None),
            t.c.contact_id.is_not(None),
        )
    )
    c = call_facts(scope).subquery()
    from_calls = sa.select(c.c.key_source, c.c.key_id, contact(c.c.source, c.c.contact_id)).where(
        c.c.state != "missed", c.c.contact_id.is_not(None)
    )
    f = follow_up_facts(scope).subquery()
    from_follow_ups = sa.select(f.c.key_source, f.c.key_id, contact(f.c.source, f.c.contact_id)).where(
        f.c.done == 1, f.c.contact_id.is_not(None)
    )
    served = sa.union_all(from_tickets, from_calls, from_follow_ups).subquery("served")
    keys = [served.c[k] for k in KEY_COLUMNS]
    distinct = sa.func.count(sa.distinct(served.c.contact)).label("contacts_served")
    return sa.select(*keys, distinct).group_by(*keys)
