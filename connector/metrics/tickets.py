"""Ticket metrics in SQL: one fact row per ticket, then per-agent totals.

:func:`ticket_facts` decides, per ticket created in the period (the period of ``created_at``), every
judgement the ticket metrics and ``explain`` rest on, so the two can never disagree:

* first response (complaints only): the CRM's mapped ``first_response_at`` when set and not before
  the clock started; else the earliest answered call (``started_at``) or completed follow-up
  (``completed_at``) owned by the ticket's owner, linked to the ticket or to its contact, at or after
  the clock start — each source only if ``[scorecard] response_sources`` lists it. Missed calls and
  cancelled follow-ups are no response.
* the response clock starts at ``created_at``; with ``self_logged_clock = "second_contact"`` a
  complaint from a ``self_logged_channels`` channel (staff typed it in while the patient was on the
  phone or at the desk, so that contact already was the answer) starts it at the patient's next
  inbound call from the ticket's contact; without such a call no response is owed ("not_owed").
* resolution: ``resolution = "last"`` uses the ticket's current resolution (``resolved_at`` as the
  sync keeps it; a reopened ticket is unresolved); ``"first"`` the first move to resolved/closed in
  ``ticket_status_history``. Reopened = a move from resolved/closed back to an open status.
* elapsed time on the metric's clock (calendar or business hours) minus the time spent in
  ``pause_statuses`` (replayed from ``ticket_status_history``); ``≤ limit`` is met.
* everything is judged as of ``as_of``: later events have not happened yet; an unanswered complaint
  is "breached" once its clock passes the limit, "pending" before that (and left out of the rate).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import CTE

from connector.metrics.settings import ClockedMetric
from connector.metrics.sql import Scope, at, epoch, greatest_of, least_of, seconds
from connector.store.schema import calls, follow_ups, ticket_status_history, tickets
from connector.store.types import UTCDateTime
from connector.ticket_history import RESOLVED_STATUSES

RESOLVED = sorted(RESOLVED_STATUSES)
_CLOCKED_COLUMNS = (
    "source", "external_id", "owner_id", "category", "contact_id", "satisfaction", "created_at",
    "status", "resolved_at", "updated_at", "first_response_at", "deleted_at",
)  # fmt: skip


def _cte(select: sa.Select, name: str) -> CTE:
    # MATERIALIZED: computed once, even where a later stage refers to a column several times.
    return select.cte(name).prefix_with("MATERIALIZED")


def _typed_null() -> ColumnElement:
    return sa.cast(sa.null(), UTCDateTime())


def _history_marks(scope: Scope) -> sa.Subquery:
    """Per ticket changed since the period began: reopened (0/1) and first time resolved.

    A ticket created in the period changes status only after it began, so one pass over the
    history since then replaces a lookup per ticket.
    """
    h, as_of = ticket_status_history, at(scope.as_of)
    reopen = sa.and_(h.c.from_status.in_(RESOLVED), h.c.to_status.not_in(RESOLVED))
    return (
        sa.select(
            h.c.source,
            h.c.ticket_id,
            sa.func.max(sa.case((reopen, 1), else_=0)).label("reopened"),
            sa.func.min(sa.case((h.c.to_status.in_(RESOLVED), h.c.changed_at))).label("first_resolved"),
        )
        .where(h.c.changed_at >= at(scope.start), h.c.changed_at <= as_of)
        .group_by(h.c.source, h.c.ticket_id)
        .subquery("sc_history")
    )


def _period_tickets(scope: Scope) -> tuple[sa.FromClause, ColumnElement]:
    """The tickets to read and their response clock start.

    With ``second_contact`` the start is itself a lookup, materialized first so the response
    lookups that compare against it do not repeat it.
    """
    settings, t, as_of = scope.settings, tickets, at(scope.as_of)
    if settings.self_logged_clock == "created":
        return t, t.c.created_at
    c = calls.alias("patient_call")
    second_contact = sa.select(sa.func.min(c.c.started_at)).where(
        c.c.source == t.c.source,
        c.c.contact_id == t.c.contact_id,
        c.c.direction == "inbound",
        c.c.deleted_at.is_(None),
        c.c.started_at > t.c.created_at,
        c.c.started_at <= as_of,
    )
    self_logged = sa.and_(t.c.category == "complaint", t.c.channel.in_(settings.self_logged_channels))
    clock_start = sa.case((self_logged, second_contact.scalar_subquery()), else_=t.c.created_at)
    needed = [t.c[name] for name in _CLOCKED_COLUMNS]
    clocked = _cte(
        sa.select(*needed, clock_start.label("clock_start")).where(_in_scope(scope, t)), "sc_clock"
    )
    return clocked, clocked.c.clock_start


def _in_scope(scope: Scope, src: sa.FromClause) -> ColumnElement[bool]:
    return sa.and_(
        scope.in_period(src.c.created_at),
        src.c.created_at <= at(scope.as_of),
        src.c.deleted_at.is_(None),
        src.c.owner_id.is_not(None),
    )


def _first_activity(
    scope: Scope, src: sa.FromClause, clock_start: ColumnElement
) -> tuple[list[ColumnElement], list[ColumnElement]]:
    """Each complaint's earliest owned call / completed follow-up, per link (ticket, contact)."""
    sources, as_of = scope.settings.response_sources, at(scope.as_of)
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
        for link, value in (("ticket_id", src.c.external_id), ("contact_id", src.c.contact_id)):
            earliest = sa.select(sa.func.min(when)).where(
                table.c.source == src.c.source,
                table.c[link] == value,
                table.c.owner_id == src.c.owner_id,
                table.c.deleted_at.is_(None),
                when >= clock_start,
                when <= as_of,
                answered,
            )
            column = sa.case((src.c.category == "complaint", earliest.scalar_subquery())).label(
                f"{name}_by_{link}"
            )
            found.append(column)
            if table is calls:
                by_call.append(column)
    return found, by_call


def _lookups(scope: Scope) -> tuple[CTE, list[str], list[str]]:
    """Stage 1: the period's tickets with everything that needs a lookup elsewhere."""
    settings, as_of = scope.settings, at(scope.as_of)
    src, clock_start = _period_tickets(scope)
    marks = _history_marks(scope)
    joined = src.outerjoin(
        marks, sa.and_(marks.c.source == src.c.source, marks.c.ticket_id == src.c.external_id)
    )
    frm, key_source, key_id = scope.agents.keyed(joined, src.c.source, src.c.owner_id)
    resolved_at = sa.func.coalesce(src.c.resolved_at, src.c.updated_at)
    current = sa.case((sa.and_(src.c.status.in_(RESOLVED), resolved_at <= as_of), resolved_at))
    field = src.c.first_response_at if "field" in settings.response_sources else _typed_null()
    activity, by_call = _first_activity(scope, src, clock_start)
    query = (
        sa.select(
            *(src.c[name] for name in ("source", "external_id", "category", "contact_id", "satisfaction")),
            key_source,
            key_id,
            src.c.created_at,
            clock_start.label("clock_start"),
            sa.case((field <= as_of, field)).label("field_response"),
            current.label("resolved_current"),
            marks.c.first_resolved,
            sa.func.coalesce(marks.c.reopened, 0).label("reopened"),
            *activity,
        )
        .select_from(frm)
        .where(_in_scope(scope, src))
    )
    return _cte(query, "sc_tickets"), [c.name for c in activity], [c.name for c in by_call]


def _judged(scope: Scope, tk: CTE, activity: list[str], by_call: list[str]) -> CTE:
    """Stage 2: first response, resolution and the raw elapsed seconds on each metric's clock."""
    settings, as_of = scope.settings, at(scope.as_of)
    field_ok = sa.case((tk.c.field_response >= tk.c.clock_start, tk.c.field_response))
    earliest = least_of(*(tk.c[n] for n in activity)) if activity else _typed_null()
    first_response = sa.func.coalesce(field_ok, earliest)
    via = [(field_ok.is_not(None), "field")]
    if by_call:
        via.append((earliest == least_of(*(tk.c[n] for n in by_call)), "call"))
    via.append((earliest.is_not(None), "follow_up"))
    resolved = tk.c.resolved_current
    if settings.resolution == "first":
        resolved = least_of(tk.c.first_resolved, tk.c.resolved_current)
    complaint = tk.c.category == "complaint"
    responds = sa.and_(complaint, tk.c.clock_start.is_not(None))
    resolves = sa.or_(complaint, resolved.is_not(None))
    instants = {
        "clock_start_s": (responds, epoch(tk.c.clock_start)),
        "response_end_s": (responds, epoch(sa.func.coalesce(first_response, as_of))),
        "created_s": (resolves, epoch(tk.c.created_at)),
        "resolution_end_s": (resolves, epoch(sa.func.coalesce(resolved, as_of))),
    }

    def elapsed(metric: ClockedMetric, start: str, end: str, when: ColumnElement[bool]) -> ColumnElement:
        clock = settings.clock_for(metric)
        return sa.case((when, scope.elapsed(clock, instants[start][1], instants[end][1])))

    raw = [
        elapsed("first_response_within_sla", "clock_start_s", "response_end_s", responds).label(
            "response_raw_s"
        ),
        elapsed("resolution_within_sla", "created_s", "resolution_end_s", resolves).label("resolution_raw_s"),
    ]
    if settings.clock_for("median_resolution_hours") != settings.clock_for("resolution_within_sla"):
        raw.append(
            elapsed("median_resolution_hours", "created_s", "resolution_end_s", resolves).label(
                "median_raw_s"
            )
        )
    if settings.pause_statuses:  # pauses are clipped to these windows later
        raw += [sa.case(when_value).label(name) for name, when_value in instants.items()]
    query = sa.select(
        *(tk.c[name] for name in ("source", "external_id", "key_source", "key_id", "category", "contact_id")),
        *(tk.c[name] for name in ("satisfaction", "created_at", "clock_start", "reopened")),
        first_response.label("first_response_at"),
        sa.case(*via).label("response_via"),
        resolved.label("resolved_at"),
        *raw,
    )
    return _cte(query, "sc_tickets_judged")


def _pauses(scope: Scope, tj: CTE) -> sa.Subquery:
    """Seconds each ticket's clocks spent in a pause status, clipped to each clock's window."""
    settings, as_of = scope.settings, at(scope.as_of)
    h = ticket_status_history
    order = {"partition_by": (h.c.source, h.c.ticket_id), "order_by": (h.c.changed_at, h.c.id)}
    spans = (
        sa.select(
            h.c.source,
            h.c.ticket_id,
            h.c.to_status,
            epoch(h.c.changed_at).label("pause_start"),
            epoch(sa.func.lead(h.c.changed_at).over(**order)).label("pause_next"),
        )
        .join(tj, sa.and_(h.c.source == tj.c.source, h.c.ticket_id == tj.c.external_id))
        .where(h.c.changed_at <= as_of)
        .subquery("pause_spans")
    )
    pause_end = sa.func.coalesce(spans.c.pause_next, seconds(scope.as_of.timestamp()))

    def overlap(metric: ClockedMetric, lo: ColumnElement, hi: ColumnElement) -> ColumnElement:
        clipped = scope.elapsed(
            settings.clock_for(metric), greatest_of(spans.c.pause_start, lo), least_of(pause_end, hi)
        )
        return sa.func.sum(sa.case((lo.is_not(None), greatest_of(clipped, seconds(0.0)))))

    columns = [
        overlap("first_response_within_sla", tj.c.clock_start_s, tj.c.response_end_s).label("response"),
        overlap("resolution_within_sla", tj.c.created_s, tj.c.resolution_end_s).label("resolution"),
        overlap("median_resolution_hours", tj.c.created_s, tj.c.resolution_end_s).label("median"),
    ]
    return (
        sa.select(spans.c.source, spans.c.ticket_id, *columns)
        .join(tj, sa.and_(spans.c.source == tj.c.source, spans.c.ticket_id == tj.c.external_id))
        .where(spans.c.to_status.in_(settings.pause_statuses))
        .group_by(spans.c.source, spans.c.ticket_id)
        .subquery("sc_pauses")
    )


def _state(net: ColumnElement, done: ColumnElement[bool], limit_hours: float) -> ColumnElement[str]:
    limit = seconds(limit_hours * 3600)
    return sa.case((sa.and_(done, net <= limit), "met"), (net > limit, "breached"), else_="pending")


def ticket_facts(scope: Scope) -> sa.Subquery:
    """One row per ticket created in the period, with every judgement the ticket metrics use."""
    settings = scope.settings
    tj = _judged(scope, *_lookups(scope))
    frm: sa.FromClause = tj
    paused: dict[str, ColumnElement] = {name: seconds(0.0) for name in ("response", "resolution", "median")}
    if settings.pause_statuses:
        pz = _pauses(scope, tj)
        frm = tj.outerjoin(pz, sa.and_(pz.c.source == tj.c.source, pz.c.ticket_id == tj.c.external_id))
        paused = {name: sa.func.coalesce(pz.c[name], 0.0) for name in paused}
    response = tj.c.response_raw_s - paused["response"]
    resolution = tj.c.resolution_raw_s - paused["resolution"]
    median_base = tj.c.median_raw_s if "median_raw_s" in tj.c else tj.c.resolution_raw_s
    complaint = tj.c.category == "complaint"
    response_state = sa.case(
        (sa.not_(complaint), None),
        (tj.c.clock_start.is_(None), "not_owed"),
        else_=_state(response, tj.c.first_response_at.is_not(None), settings.response_limit_hours),
    )
    resolved = tj.c.resolved_at.is_not(None)
    resolution_state = _state(resolution, resolved, settings.resolution_limit_hours)
    query = sa.select(
        *(tj.c[name] for name in ("source", "external_id", "key_source", "key_id", "category", "contact_id")),
        *(tj.c[name] for name in ("satisfaction", "created_at", "clock_start", "first_response_at")),
        tj.c.response_via,
        tj.c.resolved_at,
        tj.c.reopened,
        (response / 3600.0).label("response_hours"),
        (paused["response"] / 3600.0).label("paused_response_hours"),
        response_state.label("response_state"),
        (resolution / 3600.0).label("resolution_elapsed_hours"),
        (paused["resolution"] / 3600.0).label("paused_resolution_hours"),
        sa.case((complaint, resolution_state)).label("resolution_state"),
        sa.case((resolved, (median_base - paused["median"]) / 3600.0)).label("resolution_hours"),
    ).select_from(frm)
    return query.subquery("sc_ticket_facts")


def ticket_totals(scope: Scope) -> sa.Select:
    """Per agent key: counts behind every ticket metric, and the median resolution hours."""
    f = ticket_facts(scope)
    good = scope.settings.satisfaction_good
    rated = f.c.satisfaction.between(1, 5)

    def count_if(condition: ColumnElement[bool]) -> ColumnElement[int]:
        return sa.func.count(sa.case((condition, 1)))

    keys = (f.c.key_source, f.c.key_id)
    totals = (
        sa.select(
            *keys,
            sa.func.count().label("tickets_handled"),
            count_if(f.c.category == "complaint").label("complaints_handled"),
            count_if(rated).label("rated"),
            count_if(sa.and_(rated, f.c.satisfaction >= good)).label("good"),
            sa.func.sum(sa.case((rated, f.c.satisfaction))).label("rating_sum"),
            count_if(f.c.response_state == "met").label("response_met"),
            count_if(f.c.response_state == "breached").label("response_breached"),
            count_if(f.c.resolution_state == "met").label("resolution_met"),
            count_if(f.c.resolution_state == "breached").label("resolution_breached"),
            count_if(sa.or_(f.c.resolved_at.is_not(None), f.c.reopened == 1)).label("ever_resolved"),
            sa.func.sum(f.c.reopened).label("reopened"),
        )
        .group_by(*keys)
        .subquery("ticket_totals")
    )
    partition = {"partition_by": keys}
    ranked = (
        sa.select(
            *keys,
            f.c.resolution_hours,
            sa.func.row_number().over(order_by=f.c.resolution_hours, **partition).label("position"),
            sa.func.count().over(**partition).label("n"),
        )
        .where(f.c.resolution_hours.is_not(None))
        .subquery("ranked")
    )
    middle = sa.or_(ranked.c.position == (ranked.c.n + 1) // 2, ranked.c.position == (ranked.c.n + 2) // 2)
    median = (
        sa.select(
            ranked.c.key_source, ranked.c.key_id, sa.func.avg(ranked.c.resolution_hours).label("median_hours")
        )
        .where(middle)
        .group_by(ranked.c.key_source, ranked.c.key_id)
        .subquery("median")
    )
    joined = totals.outerjoin(
        median, sa.and_(median.c.key_source == totals.c.key_source, median.c.key_id == totals.c.key_id)
    )
    return sa.select(totals, median.c.median_hours).select_from(joined)
