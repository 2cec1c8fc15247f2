"""Evaluating the rules and reconciling their findings with the ``alerts`` table.

Each rule is one set-based query over the store (see :mod:`connector.alerts.rules`); this module only
compares what the rules find now with what the table holds, in one transaction:

- a finding with no row → a new alert (``opened_at = now``);
- a finding whose row is resolved → the *same row is re-opened*: ``resolved_at`` cleared,
  ``opened_at`` moved to now, ``details.reopened`` counted up. The fingerprint is the table's key, so
  a second row is impossible by design; delivery tells the new occurrence by ``opened_at``;
- a finding of higher severity than its open row → escalated (warning → breach); severity never
  goes down while an alert stays open, so a breach once shown is not quietly withdrawn;
- an open row with no finding → resolved (``resolved_at = now``): the response came, the ticket was
  resolved, the follow-up done, the record deleted, or the rule was switched off.

Evaluating twice with the same data and clock changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from connector.alerts.model import SEVERITY_RANK, Alert, EvaluationResult, Finding, RuleContext
from connector.alerts.rules import RULES
from connector.alerts.settings import AlertSettings
from connector.store.schema import agents, alerts

if TYPE_CHECKING:
    from connector.calendar import BusinessCalendar
    from connector.metrics.settings import ScorecardSettings
    from connector.store import Store

_CHUNK = 500


def evaluate_alerts(
    store_or_conn: Store | sa.Engine | sa.Connection,
    settings: AlertSettings,
    scorecard_settings: ScorecardSettings,
    calendar: BusinessCalendar,
    tz: ZoneInfo,
    *,
    now: datetime,
) -> EvaluationResult:
    """Run every enabled rule at ``now`` and bring the ``alerts`` table in line with what they find."""
    context = RuleContext(settings, scorecard_settings, calendar, tz, now)
    with _transaction(store_or_conn) as conn:
        found: dict[str, Finding] = {}
        for rule in RULES:
            found.update((finding.fingerprint, finding) for finding in rule(conn, context))
        stored = _stored_alerts(conn, found)
        opened, escalated, resolved, changed = _reconcile(conn, found, stored, now)
        # After reconciling, exactly the findings are open: changed rows as re-read, the rest as stored.
        still_open = [changed.get(fp) or stored[fp] for fp in found]
        return EvaluationResult(opened, escalated, resolved, sorted(still_open, key=_listing_order))


def open_alerts(conn: sa.Connection) -> list[Alert]:
    """Every open alert, breaches first, then oldest first."""
    rows = conn.execute(_alert_select().where(alerts.c.resolved_at.is_(None)))
    return sorted((_alert(row) for row in rows), key=_listing_order)


def _listing_order(alert: Alert) -> tuple[int, datetime, str]:
    return (-SEVERITY_RANK.get(alert.severity, 0), alert.opened_at, alert.fingerprint)


@contextmanager
def _transaction(target: Store | sa.Engine | sa.Connection) -> Iterator[sa.Connection]:
    """The caller's transaction if it has one open, else a new one committed on success."""
    if isinstance(target, sa.Connection):
        if target.in_transaction():
            yield target
        else:
            with target.begin():
                yield target
        return
    with target.begin() as conn:
        yield conn


def _alert_select() -> sa.Select[Any]:
    owner = (agents.c.source == alerts.c.source) & (agents.c.external_id == alerts.c.agent_id)
    return sa.select(alerts, agents.c.name.label("agent_name")).select_from(alerts.outerjoin(agents, owner))


def _alert(row: sa.Row[Any]) -> Alert:
    return Alert(
        fingerprint=row.fingerprint,
        rule=row.rule,
        severity=row.severity,
        source=row.source,
        agent_id=row.agent_id,
        entity=row.entity,
        entity_id=row.entity_id,
        details=json.loads(row.details or "{}"),
        opened_at=row.opened_at,
        updated_at=row.updated_at,
        resolved_at=row.resolved_at,
        agent_name=row.agent_name,
    )


def _stored_alerts(conn: sa.Connection, found: dict[str, Finding]) -> dict[str, Alert]:
    """Open alerts, plus resolved ones a finding may re-open (looked up by key, in chunks)."""
    stored = {alert.fingerprint: alert for alert in open_alerts(conn)}
    unseen = [fp for fp in found if fp not in stored]
    for start in range(0, len(unseen), _CHUNK):
        chunk = unseen[start : start + _CHUNK]
        rows = conn.execute(_alert_select().where(alerts.c.fingerprint.in_(chunk)))
        stored.update((row.fingerprint, _alert(row)) for row in rows)
    return stored


def _reconcile(
    conn: sa.Connection, found: dict[str, Finding], stored: dict[str, Alert], now: datetime
) -> tuple[list[Alert], list[Alert], list[Alert], dict[str, Alert]]:
    """Write the differences; return (opened, escalated, resolved) and every changed open alert."""
    new: list[Finding] = []
    reopen: list[dict[str, Any]] = []
    escalate: list[dict[str, Any]] = []
    refresh: list[dict[str, Any]] = []
    for fp, finding in found.items():
        alert = stored.get(fp)
        if alert is None:
            new.append(finding)
            continue
        reopened = alert.details.get("reopened", 0)
        if alert.resolved_at is not None:
            details = _details(finding, reopened + 1)
            reopen.append(_values(finding, finding.severity, details, now, opened_at=now, resolved_at=None))
            continue
        severity = max(finding.severity, alert.severity, key=SEVERITY_RANK.__getitem__)
        details = _details(finding, reopened)
        if severity != alert.severity:
            escalate.append(_values(finding, severity, details, now))
        elif details != alert.details or finding.agent_id != alert.agent_id:
            refresh.append(_values(finding, severity, details, now))
    resolve = [alert for fp, alert in stored.items() if fp not in found and alert.resolved_at is None]

    _insert(conn, new, now)
    for values in (reopen, escalate, refresh):
        _update(conn, values)
    _update(conn, [{"fp": alert.fingerprint, "resolved_at": now, "updated_at": now} for alert in resolve])
    after = _by_fingerprint(
        conn, [f.fingerprint for f in new] + [v["fp"] for v in reopen + escalate + refresh]
    )
    opened = [after[f.fingerprint] for f in new] + [after[v["fp"]] for v in reopen]
    escalated = [after[v["fp"]] for v in escalate]
    resolved = [replace(alert, resolved_at=now, updated_at=now) for alert in resolve]
    return opened, escalated, resolved, after


def _details(finding: Finding, reopened: int) -> dict[str, Any]:
    """The finding's message values, plus how often the alert was re-opened (kept across updates)."""
    return {**finding.details, "reopened": reopened} if reopened else dict(finding.details)


def _values(
    finding: Finding, severity: str, details: dict[str, Any], now: datetime, **extra: Any
) -> dict[str, Any]:
    return {
        "fp": finding.fingerprint,
        "severity": severity,
        "agent_id": finding.agent_id,
        "message": finding.message("en", severity),
        "details": json.dumps(details, ensure_ascii=False, sort_keys=True),
        "updated_at": now,
        **extra,
    }


def _insert(conn: sa.Connection, findings: Sequence[Finding], now: datetime) -> None:
    if not findings:
        return
    rows = [
        {
            "fingerprint": f.fingerprint,
            "rule": f.rule,
            "severity": f.severity,
            "source": f.source,
            "agent_id": f.agent_id,
            "entity": f.entity,
            "entity_id": f.entity_id,
            "message": f.message("en"),
            "details": json.dumps(f.details, ensure_ascii=False, sort_keys=True),
            "opened_at": now,
            "updated_at": now,
            "resolved_at": None,
        }
        for f in findings
    ]
    conn.execute(_insert_ignoring_duplicates(conn), rows)


def _insert_ignoring_duplicates(conn: sa.Connection) -> sa.Insert:
    """A concurrent evaluation may have inserted the same fingerprint first; its row is as good."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif conn.dialect.name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:
        raise NotImplementedError(f"alerts need SQLite or PostgreSQL, not {conn.dialect.name}")
    return insert(alerts).on_conflict_do_nothing(index_elements=[alerts.c.fingerprint])


def _update(conn: sa.Connection, values: list[dict[str, Any]]) -> None:
    if not values:
        return
    # No .values(): SQLAlchemy sets the columns named by the parameter keys other than "fp".
    conn.execute(sa.update(alerts).where(alerts.c.fingerprint == sa.bindparam("fp")), values)


def _by_fingerprint(conn: sa.Connection, fingerprints: Iterable[str]) -> dict[str, Alert]:
    wanted = list(fingerprints)
    found: dict[str, Alert] = {}
    for start in range(0, len(wanted), _CHUNK):
        rows = conn.execute(_alert_select().where(alerts.c.fingerprint.in_(wanted[start : start + _CHUNK])))
        found.update((row.fingerprint, _alert(row)) for row in rows)
    return found
