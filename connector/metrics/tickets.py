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


def _cte(select: sa.Select, name: str) -> CTE:
    # MATERIALIZED: computed once, even where a later stage refers to a column several times.
    return select.cte(name).prefix_with("MATERIALIZED")


def _typed_null() -> ColumnElement:
    return sa.cast(sa.null(), UTCDateTime())


def _base(scope: Scope) -> CTE:
    """Stage 1: the period's tickets with their key, clock start, mapped response and resolution."""
    settings, t, as_of = scope.settings, tickets, at(scope.as_of)
    frm, key_source, key_id = scope.agents.keyed(t, t.c.source, t.c.owner_id)
    h = ticket_status_history.alias("h")

    def history(*conditions: ColumnElement[bool]) -> ColumnElement[bool]:
        return sa.and_(
            h.c.source == t.c.source, h.c.ticket_id == t.c.external_id, h.c.changed_at <= as_of, *conditions
        )

    current = sa.case((t.c.status.in_(RESOLVED), sa.func.coalesce(t.c.resolved_at, t.c.updated_at)))
    resolved = current
    if settings.resolution == "first":
        first = sa.select(sa.func.min(h.c.changed_at)).where(history(h.c.to_status.in_(RESOLVED)))
        resolved = least_of(first.scalar_subquery(), current)
    reopened = sa.exists().where(history(h.c.from_status.in_(RESOLVED), h.c.to_status.not_in(RESOLVED)))
    complaint = t.c.category == "complaint"
    clock_start: ColumnElement = t.c.created_at
    if settings.self_logged_clock == "second_contact":
        c = calls.alias("patient_call")
        second_contact = sa.select(sa.func.min(c.c.started_at)).where(
            c.c.source == t.c.source,
            c.c.contact_id == t.c.contact_id,
            c.c.direction == "inbound",
            c.c.deleted_at.is_(None),
            c.c.started_at > t.c.created_at,
            c.c.started_at <= as_of,
        )
        self_logged = sa.and_(complaint, t.c.channel.in_(settings.self_logged_channels))
        clock_start = sa.case((self_logged, second_contact.scalar_subquery()), else_=t.c.created_at)
    field = (
        sa.case((t.c.first_response_at <= as_of, t.c.first_response_at))
        if "field" in settings.response_sources
        else _typed_null()
    )
    query = (
        sa.select(
            t.c.source,
            t.c.external_id,
            t.c.owner_id,
            key_source,
            key_id,
            t.c.category,
            t.c.contact_id,
            t.c.satisfaction,
            t.c.created_at,
            clock_start.label("clock_start"),
            field.label("field_response"),
            resolved.label("resolved_raw"),
            sa.case((reopened, 1), else_=0).label("reopened"),
        )
        .select_from(frm)
        .where(
            scope.in_period(t.c.created_at),
            t.c.created_at <= as_of,
            t.c.deleted_at.is_(None),
            t.c.owner_id.is_not(None),
        )
    )
    return _cte(query, "sc_tickets")


def _candidates(scope: Scope, tk: CTE) -> tuple[CTE, list[str], list[str]]:
    """Stage 2: each complaint's earliest call / follow-up per link (ticket, contact)."""
    sources, as_of = scope.settings.response_sources, at(scope.as_of)
    columns: list[ColumnElement] = []
    call_names: list[str] = []
    activity_names: list[str] = []

    def earliest(
        table: sa.Table, time_column: str, link: str, value: ColumnElement, *extra: ColumnElement
    ) -> None:
        when = table.c[time_column]
        found = sa.select(sa.func.min(when)).where(
            table.c.source == tk.c.source,
            table.c[link] == value,
            table.c.owner_id == tk.c.owner_id,
            table.c.deleted_at.is_(None),
            when >= tk.c.clock_start,
            when <= as_of,
            *extra,
        )
        name = f"{table.name}_by_{link}"
        columns.append(sa.case((tk.c.category == "complaint", found.scalar_subquery())).label(name))
        activity_names.append(name)
        if table is calls:
            call_names.append(name)

    for source, table, time_column, extra in (
        ("calls", calls, "started_at", sa.func.coalesce(calls.c.direction, "") != "missed"),
        ("follow_ups", follow_ups, "completed_at", sa.func.coalesce(follow_ups.c.status, "") != "cancelled"),
    ):
        if source in sources:
            earliest(table, time_column, "ticket_id", tk.c.external_id, extra)
            earliest(table, time_column, "contact_id", tk.c.contact_id, extra)
    resolved = sa.case((tk.c.resolved_raw <= as_of, tk.c.resolved_raw)).label("resolved_at")
    return _cte(sa.select(tk, resolved, *columns), "sc_ticket_candidates"), activity_names, call_names


def _instants(scope: Scope, tr: CTE, activity_names: list[str], call_names: list[str]) -> CTE:
    """Stage 3: the first response (and what it was) and the instants the clocks run between."""
    as_of = at(scope.as_of)
    field_ok = sa.case((tr.c.field_response >= tr.c.clock_start, tr.c.field_response))
    activity = least_of(*(tr.c[n] for n in activity_names)) if activity_names else _typed_null()
    first_response = sa.func.coalesce(field_ok, activity)
    via_whens = [(field_ok.is_not(None), "field")]
    if call_names:
        via_whens.append((activity == least_of(*(tr.c[n] for n in call_names)), "call"))
    via_whens.append((activity.is_not(None), "follow_up"))
    query = sa.select(
        *(tr.c[name] for name in ("source", "external_id", "key_source", "key_id", "category", "contact_id")),
        *(tr.c[name] for name in ("satisfaction", "created_at", "clock_start", "resolved_at", "reopened")),
        first_response.label("first_response_at"),
        sa.case(*via_whens).label("response_via"),
        epoch(tr.c.created_at).label("created_s"),
        epoch(tr.c.clock_start).label("clock_start_s"),
        epoch(sa.func.coalesce(first_response, as_of)).label("response_end_s"),
        epoch(sa.func.coalesce(tr.c.resolved_at, as_of)).label("resolution_end_s"),
    )
    return _cte(query, "sc_ticket_instants")


def _elapsed(scope: Scope, te: CTE) -> CTE:
    """Stage 4: raw elapsed seconds on each metric's clock, before pauses."""
    settings = scope.settings
    response = scope.elapsed(
        settings.clock_for("first_response_within_sla"), te.c.clock_start_s, te.c.response_end_s
    )
    resolution_clock = settings.clock_for("resolution_within_sla")
    query = sa.select(
        te,
        sa.case((te.c.category == "complaint", response)).label("response_raw_s"),
        scope.elapsed(resolution_clock, te.c.created_s, te.c.resolution_end_s).label("resolution_raw_s"),
    )
    if settings.clock_for("median_resolution_hours") != resolution_clock:
        median_clock = settings.clock_for("median_resolution_hours")
        query = query.add_columns(
            scope.elapsed(median_clock, te.c.created_s, te.c.resolution_end_s).label("median_raw_s")
        )
    return _cte(query, "sc_ticket_elapsed")


def _pauses(scope: Scope, tw: CTE) -> sa.Subquery:
    """Seconds each ticket's clocks spent in a pause status, per window (response, resolution)."""
    settings, as_of = scope.settings, at(scope.as_of)
    h = ticket_status_history
    spans = (
        sa.select(
            h.c.source,
            h.c.ticket_id,
            h.c.to_status,
            epoch(h.c.changed_at).label("pause_start"),
            epoch(
                sa.func.lead(h.c.changed_at).over(
                    partition_by=(h.c.source, h.c.ticket_id), order_by=(h.c.changed_at, h.c.id)
                )
            ).label("pause_next"),
        )
        .join(tw, sa.and_(h.c.source == tw.c.source, h.c.ticket_id == tw.c.external_id))
        .where(h.c.changed_at <= as_of)
        .subquery("pause_spans")
    )
    pause_end = sa.func.coalesce(spans.c.pause_next, seconds(scope.as_of.timestamp()))

    def overlap(clock_metric: ClockedMetric, lo: ColumnElement, hi: ColumnElement) -> ColumnElement:
        clipped = scope.elapsed(
            settings.clock_for(clock_metric),
            greatest_of(spans.c.pause_start, lo),
            least_of(pause_end, hi),
        )
        return sa.func.sum(greatest_of(clipped, seconds(0.0)))

    columns = [
        overlap("first_response_within_sla", tw.c.clock_start_s, tw.c.response_end_s).label(
            "paused_response_s"
        ),
        overlap("resolution_within_sla", tw.c.created_s, tw.c.resolution_end_s).label("paused_resolution_s"),
    ]
    if "median_raw_s" in tw.c:
        columns.append(
            overlap("median_resolution_hours", tw.c.created_s, tw.c.resolution_end_s).label("paused_median_s")
        )
    return (
        sa.select(spans.c.source, spans.c.ticket_id, *columns)
        .join(tw, sa.and_(spans.c.source == tw.c.source, spans.c.ticket_id == tw.c.external_id))
        .where(spans.c.to_status.in_(settings.pause_statuses))
        .group_by(spans.c.source, spans.c.ticket_id)
        .subquery("sc_pauses")
    )


def _state(net: ColumnElement, done: ColumnElement[bool], limit_hours: float) -> ColumnElement[str]:
    limit = seconds(limit_hours * 3600)
    return sa.case((sa.and_(done, net <= limit), "met"), (net > limit, "breached"), else_="pending")


def ticket_facts(scope: Scope) -> CTE:
    """One row per ticket created in the period, with every judgement the ticket metrics use."""
    settings = scope.settings
    tk = _base(scope)
    tr, activity_names, call_names = _candidates(scope, tk)
    tw = _elapsed(scope, _instants(scope, tr, activity_names, call_names))
    frm: sa.FromClause = tw
    paused = {"response": seconds(0.0), "resolution": seconds(0.0), "median": seconds(0.0)}
    if settings.pause_statuses:
        pz = _pauses(scope, tw)
        frm = tw.outerjoin(pz, sa.and_(pz.c.source == tw.c.source, pz.c.ticket_id == tw.c.external_id))
        paused = {
            "response": sa.func.coalesce(pz.c.paused_response_s, 0.0),
            "resolution": sa.func.coalesce(pz.c.paused_resolution_s, 0.0),
            "median": sa.func.coalesce(
                pz.c.paused_median_s if "median_raw_s" in tw.c else pz.c.paused_resolution_s, 0.0
            ),
        }
    response = tw.c.response_raw_s - paused["response"]
    resolution = tw.c.resolution_raw_s - paused["resolution"]
    median_base = tw.c.median_raw_s if "median_raw_s" in tw.c else tw.c.resolution_raw_s
    complaint = tw.c.category == "complaint"
    response_state = sa.case(
        (sa.not_(complaint), None),
        (tw.c.clock_start.is_(None), "not_owed"),
        else_=_state(response, tw.c.first_response_at.is_not(None), settings.response_limit_hours),
    )
    resolved = tw.c.resolved_at.is_not(None)
    query = sa.select(
        *(tw.c[name] for name in ("source", "external_id", "key_source", "key_id", "category", "contact_id")),
        *(tw.c[name] for name in ("satisfaction", "created_at", "clock_start", "first_response_at")),
        tw.c.response_via,
        tw.c.resolved_at,
        tw.c.reopened,
        (response / 3600.0).label("response_hours"),
        (paused["response"] / 3600.0).label("paused_response_hours"),
        response_state.label("response_state"),
        (resolution / 3600.0).label("resolution_elapsed_hours"),
        (paused["resolution"] / 3600.0).label("paused_resolution_hours"),
        sa.case((complaint, _state(resolution, resolved, settings.resolution_limit_hours))).label(
            "resolution_state"
        ),
        sa.case((resolved, (median_base - paused["median"]) / 3600.0)).label("resolution_hours"),
    ).select_from(frm)
    return _cte(query, "sc_ticket_facts")


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
