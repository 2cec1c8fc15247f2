"""Why a number is what it is: the records behind each metric of one agent's scorecard.

Management must be able to trust every number, so ``explain`` reads the very fact rows the totals
are computed from (:mod:`connector.metrics.tickets`, :mod:`connector.metrics.activity`) and lists,
per metric, each record with its outcome — counted or not, met or breached, and the hours, band or
due time that decided it. :func:`ticket_sla` exposes the per-complaint SLA judgement for the alert
rules, so an alert and the scorecard never disagree about what a breach is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from connector.calendar import BusinessCalendar
from connector.metrics import activity
from connector.metrics.agents import AgentKey
from connector.metrics.complaints import complaint_facts
from connector.metrics.definitions import METRICS
from connector.metrics.engine import ConnOrStore, computation, scheduled_hours
from connector.metrics.model import Scorecard
from connector.metrics.periods import Period, parse_period
from connector.metrics.series import compute_scorecards
from connector.metrics.settings import ScorecardSettings
from connector.metrics.sql import Scope
from connector.metrics.tickets import resolution_seconds, ticket_rows

#: Outcomes that enter a metric; the others (pending, not_owed, excluded, missed, no_band, …) do not.
COUNTED_OUTCOMES = frozenset(
    {"met", "breached", "good", "not_good", "counted", "within", "outside", "on_time", "late", "not_done"}
    | {"reopened", "not_reopened"}
)


@dataclass(frozen=True)
class Evidence:
    """One record's part in one metric."""

    metric: str
    entity: str  # ticket | survey | follow_up | call | assessment
    source: str
    record_id: str
    at: datetime | None
    outcome: str
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def counted(self) -> bool:
        return self.outcome in COUNTED_OUTCOMES

    def as_json(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "entity": self.entity,
            "source": self.source,
            "record_id": self.record_id,
            "at": self.at.isoformat() if self.at else None,
            "outcome": self.outcome,
            "counted": self.counted,
            **self.detail,
        }


@dataclass(frozen=True)
class Explanation:
    scorecard: Scorecard
    evidence: tuple[Evidence, ...]
    scheduled_hours: float

    def for_metric(self, metric: str) -> list[Evidence]:
        return [e for e in self.evidence if e.metric == metric]

    def as_json(self) -> dict[str, Any]:
        return {
            "scorecard": self.scorecard.as_json(),
            "scheduled_hours": self.scheduled_hours,
            "evidence": {m: [e.as_json() for e in self.for_metric(m)] for m in METRICS if self.for_metric(m)},
        }


@dataclass(frozen=True)
class TicketSla:
    """A complaint's first-response and resolution judgement as of a moment (hours on each clock)."""

    source: str
    ticket_id: str
    agent: AgentKey
    created_at: datetime
    clock_start: datetime | None
    first_response_at: datetime | None
    response_via: str | None  # field | call | follow_up
    response_hours: float | None  # to the response, or elapsed so far while unanswered
    response_state: str  # met | breached | pending | not_owed
    resolved_at: datetime | None
    resolution_hours: float  # to the resolution, or elapsed so far while open
    resolution_state: str  # met | breached | pending


def _ticket_adder(found: list[Evidence], row: Any) -> Any:
    def add(metric: str, outcome: str, **detail: Any) -> None:
        found.append(
            Evidence(metric, "ticket", row["source"], row["external_id"], row["created_at"], outcome, detail)
        )

    return add


def _ticket_evidence(scope: Scope, conn: Connection, key: AgentKey) -> list[Evidence]:
    t = ticket_rows(scope)
    f = complaint_facts(scope, t)
    judged = [f.c[name] for name in ("response_state", "response_hours", "first_response_at", "response_via")]
    judged += [f.c[name] for name in ("response_paused_hours", "resolution_state", "resolution_paused_hours")]
    query = (
        sa.select(
            *(t.c[name] for name in ("source", "external_id", "category", "satisfaction", "created_at")),
            *(t.c[name] for name in ("clock_start", "resolved_at", "reopened")),
            (resolution_seconds(scope, t) / 3600.0).label("resolution_hours"),
            f.c.resolution_hours.label("sla_resolution_hours"),
            *judged,
        )
        .select_from(t.outerjoin(f, sa.and_(f.c.source == t.c.source, f.c.external_id == t.c.external_id)))
        .where(t.c.key_source == key[0], t.c.key_id == key[1])
    )
    rows = conn.execute(query).mappings()
    settings, found = scope.settings, []
    for r in rows:
        add = _ticket_adder(found, r)
        add("tickets_handled", "counted", category=r["category"])
        if r["satisfaction"] is not None and 1 <= r["satisfaction"] <= 5:
            good = r["satisfaction"] >= settings.satisfaction_good
            add("satisfaction_rate", "good" if good else "not_good", score=r["satisfaction"])
            add("avg_satisfaction", "counted", score=r["satisfaction"])
        if r["category"] == "complaint":
            add("complaints_handled", "counted")
            add(
                "first_response_within_sla",
                r["response_state"],
                hours=r["response_hours"],
                limit_hours=settings.response_limit_hours,
                clock=settings.clock_for("first_response_within_sla"),
                clock_start=r["clock_start"],
                first_response_at=r["first_response_at"],
                via=r["response_via"],
                paused_hours=r["response_paused_hours"],
            )
            add(
                "resolution_within_sla",
                r["resolution_state"],
                hours=r["sla_resolution_hours"],
                limit_hours=settings.resolution_limit_hours,
                clock=settings.clock_for("resolution_within_sla"),
                resolved_at=r["resolved_at"],
                paused_hours=r["resolution_paused_hours"],
            )
        if r["resolution_hours"] is not None:
            add(
                "median_resolution_hours",
                "counted",
                hours=r["resolution_hours"],
                resolved_at=r["resolved_at"],
            )
        if r["resolved_at"] is not None or r["reopened"]:
            add("reopen_rate", "reopened" if r["reopened"] else "not_reopened")
    return found


def _activity_evidence(scope: Scope, conn: Connection, key: AgentKey) -> list[Evidence]:
    found: list[Evidence] = []

    def rows(select: sa.Select) -> Any:
        sub = select.subquery()
        return conn.execute(
            sa.select(sub).where(sub.c.key_source == key[0], sub.c.key_id == key[1])
        ).mappings()

    for r in rows(activity.survey_facts(scope)):
        ident = (r["source"], r["external_id"], r["submitted_at"])
        detail = {"score": r["score"], "ticket_id": r["ticket_id"]}
        found.append(Evidence("satisfaction_rate", "survey", *ident, r["state"], detail))
        counted = "excluded" if r["state"] == "on_ticket" else "counted"
        found.append(Evidence("avg_satisfaction", "survey", *ident, counted, detail))
    bands = scope.settings.call_bands
    for r in rows(activity.call_facts(scope)):
        band = bands.get(r["purpose"] or "")
        detail = {"purpose": r["purpose"], "duration_s": r["duration_s"]}
        if band is not None:
            detail |= {"band_min_s": band.min_s, "band_max_s": band.max_s}
        found.append(
            Evidence(
                "call_duration_compliance",
                "call",
                r["source"],
                r["external_id"],
                r["started_at"],
                r["state"],
                detail,
            )
        )
    for r in rows(activity.follow_up_facts(scope)):
        ident = (r["source"], r["external_id"], r["due_at"] or r["completed_at"])
        detail = {"due_at": r["due_at"], "completed_at": r["completed_at"]}
        found.append(Evidence("follow_up_completion", "follow_up", *ident, r["state"], detail))
        if r["done"]:
            found.append(Evidence("follow_ups_done", "follow_up", *ident, "counted", detail))
    for r in rows(activity.assessment_facts(scope)):
        if r["metric"] is not None:
            detail = {"kind": r["kind"], "score": r["score"]}
            found.append(
                Evidence(
                    r["metric"],
                    "assessment",
                    r["source"],
                    r["external_id"],
                    r["assessed_at"],
                    "counted",
                    detail,
                )
            )
    return found


def explain(
    conn_or_store: ConnOrStore,
    settings: ScorecardSettings,
    calendar: BusinessCalendar,
    tz: ZoneInfo,
    period: Period | str,
    agent_id: str,
    *,
    as_of: datetime,
    source: str | None = None,
) -> Explanation:
    """The scorecard of ``agent_id`` (external id of the agent or a merged member) with its evidence.

    Raises LookupError when the agent has no data in the period, or when the id exists in several
    sources and ``source`` does not say which.
    """
    period = parse_period(period, tz) if isinstance(period, str) else period
    cards = compute_scorecards(conn_or_store, settings, calendar, tz, period, as_of=as_of)
    matches = [card for card in cards if card.matches(agent_id, source)]
    if not matches:
        raise LookupError(f"agent {agent_id!r} has no scorecard in {period.label}")
    if len(matches) > 1:
        sources = ", ".join(sorted(card.source for card in matches))
        raise LookupError(f"agent {agent_id!r} is in several sources ({sources}); name one")
    card = matches[0]
    with (
        computation(conn_or_store, settings, calendar, as_of) as run,
        run.scope(period.start_utc, period.end_utc) as scope,
    ):
        evidence = _ticket_evidence(scope, run.conn, card.key) + _activity_evidence(scope, run.conn, card.key)
    hours = scheduled_hours(calendar, period, as_of)
    order = {metric: index for index, metric in enumerate(METRICS)}
    evidence.sort(key=lambda e: (order[e.metric], e.at.timestamp() if e.at else math.inf, e.record_id))
    return Explanation(card, tuple(evidence), hours)


def ticket_sla(
    conn_or_store: ConnOrStore,
    settings: ScorecardSettings,
    calendar: BusinessCalendar,
    *,
    created_from: datetime,
    created_to: datetime,
    as_of: datetime,
) -> list[TicketSla]:
    """Every complaint created in ``[created_from, created_to)``, judged as of ``as_of``."""
    with (
        computation(conn_or_store, settings, calendar, as_of) as run,
        run.scope(created_from, created_to) as scope,
    ):
        f = complaint_facts(scope, ticket_rows(scope))
        query = sa.select(f).order_by(f.c.created_at, f.c.source, f.c.external_id)
        return [
            TicketSla(
                source=r["source"],
                ticket_id=r["external_id"],
                agent=(r["key_source"], r["key_id"]),
                created_at=r["created_at"],
                clock_start=r["clock_start"],
                first_response_at=r["first_response_at"],
                response_via=r["response_via"],
                response_hours=r["response_hours"],
                response_state=r["response_state"],
                resolved_at=r["resolved_at"],
                resolution_hours=r["resolution_hours"],
                resolution_state=r["resolution_state"],
            )
            for r in run.conn.execute(query).mappings()
        ]
