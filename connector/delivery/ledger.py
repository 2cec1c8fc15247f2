"""``alert_deliveries``: one row per (fingerprint, channel, severity), written around every send.

The order is what makes delivery crash-safe:

1. :meth:`Ledger.begin` commits the intent (``pending``, ``attempts`` + 1) **before** anything is sent;
2. the send happens;
3. :meth:`Ledger.sent` / :meth:`Ledger.failed` commits the outcome.

A process killed between 2 and 3 leaves a ``pending`` row behind. The next run treats it as "in
doubt" and does the send again — a webhook with the same idempotency key, a CRM task only after
looking it up — so a crash costs at most one repeated message, which a receiver deduping on the key
drops. States: ``pending`` (being sent, or in doubt), ``sent``, ``failed`` (retried at
``next_attempt_at``), ``closed`` (its alert resolved; a CRM task was closed).

The ``alerts.delivered`` column mirrors each alert's latest state per channel for readers of the
``alerts`` table.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from connector.clock import Clock
from connector.store import Store
from connector.store.schema import alert_deliveries, alerts

PENDING, SENT, FAILED, CLOSED = "pending", "sent", "failed", "closed"
_CHUNK = 500
RowKey = tuple[str, str, str]  # fingerprint, channel, severity


@dataclass(frozen=True)
class DeliveryRow:
    fingerprint: str
    channel: str
    severity: str
    state: str
    attempts: int
    remote_id: str | None
    last_error: str | None
    next_attempt_at: datetime | None
    sent_at: datetime | None
    updated_at: datetime

    @property
    def key(self) -> RowKey:
        return (self.fingerprint, self.channel, self.severity)


@dataclass(frozen=True)
class FailingDelivery:
    """A delivery that failed ``failing_after`` times or more (for ``status``)."""

    fingerprint: str
    channel: str
    severity: str
    rule: str | None
    agent_id: str | None
    attempts: int
    last_error: str | None
    next_attempt_at: datetime | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "fingerprint": self.fingerprint,
            "channel": self.channel,
            "severity": self.severity,
            "rule": self.rule,
            "agent_id": self.agent_id,
            "attempts": self.attempts,
            "last_error": self.last_error,
            "next_attempt_at": self.next_attempt_at,
        }


def _row(row: sa.Row[Any]) -> DeliveryRow:
    return DeliveryRow(
        fingerprint=row.fingerprint,
        channel=row.channel,
        severity=row.severity,
        state=row.state,
        attempts=row.attempts,
        remote_id=row.remote_id,
        last_error=row.last_error,
        next_attempt_at=row.next_attempt_at,
        sent_at=row.sent_at,
        updated_at=row.updated_at,
    )


def rows_for(conn: Connection, fingerprints: Iterable[str]) -> dict[RowKey, DeliveryRow]:
    """Every delivery row of these alerts."""
    wanted = list(dict.fromkeys(fingerprints))
    found: dict[RowKey, DeliveryRow] = {}
    for start in range(0, len(wanted), _CHUNK):
        query = sa.select(alert_deliveries).where(
            alert_deliveries.c.fingerprint.in_(wanted[start : start + _CHUNK])
        )
        found.update((row.key, row) for row in map(_row, conn.execute(query)))
    return found


@dataclass(frozen=True)
class ResolvedAlert:
    """What closing a resolved alert's deliveries needs to know about it."""

    fingerprint: str
    source: str
    severity: str
    opened_at: datetime


def unclosed_of_resolved(conn: Connection) -> list[ResolvedAlert]:
    """Resolved alerts that still have a delivery row not closed."""
    query = (
        sa.select(alerts.c.fingerprint, alerts.c.source, alerts.c.severity, alerts.c.opened_at)
        .where(
            alerts.c.resolved_at.is_not(None),
            sa.exists().where(
                alert_deliveries.c.fingerprint == alerts.c.fingerprint, alert_deliveries.c.state != CLOSED
            ),
        )
        .order_by(alerts.c.fingerprint)
    )
    return [ResolvedAlert(*row) for row in conn.execute(query)]


def failing_deliveries(conn: Connection, *, min_attempts: int = 3) -> list[FailingDelivery]:
    """Deliveries in ``failed`` state after at least ``min_attempts`` attempts, worst first.

    ``status`` shows these with ``[delivery] failing_after`` as ``min_attempts``: each is still retried
    (at ``next_attempt_at``), but an admin should look at ``last_error``.
    """
    d = alert_deliveries
    query = (
        sa.select(d, alerts.c.rule, alerts.c.agent_id)
        .select_from(d.outerjoin(alerts, alerts.c.fingerprint == d.c.fingerprint))
        .where(d.c.state == FAILED, d.c.attempts >= min_attempts)
        .order_by(d.c.attempts.desc(), d.c.fingerprint, d.c.channel, d.c.severity)
    )
    return [
        FailingDelivery(
            fingerprint=row.fingerprint,
            channel=row.channel,
            severity=row.severity,
            rule=row.rule,
            agent_id=row.agent_id,
            attempts=row.attempts,
            last_error=row.last_error,
            next_attempt_at=row.next_attempt_at,
        )
        for row in conn.execute(query)
    ]


class Ledger:
    """Commits each step of a delivery in its own transaction (see the module docstring)."""

    def __init__(self, store: Store, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    def begin(self, key: RowKey, *, fresh: bool) -> int:
        """Record the intent to send; returns this attempt's number (1 for a new occurrence)."""
        fingerprint, channel, severity = key
        now = self._clock()
        d = alert_deliveries
        where = (d.c.fingerprint == fingerprint) & (d.c.channel == channel) & (d.c.severity == severity)
        with self._store.begin() as conn:
            attempts = conn.execute(sa.select(d.c.attempts).where(where)).scalar()
            if attempts is None:
                number = 1
                conn.execute(
                    sa.insert(d).values(
                        fingerprint=fingerprint,
                        channel=channel,
                        severity=severity,
                        state=PENDING,
                        attempts=number,
                        updated_at=now,
                    )
                )
            else:
                number = 1 if fresh else attempts + 1
                conn.execute(
                    sa.update(d)
                    .where(where)
                    .values(state=PENDING, attempts=number, next_attempt_at=None, updated_at=now)
                )
            _mirror(conn, fingerprint, channel, PENDING)
        return number

    def sent(self, key: RowKey, remote_id: str | None = None) -> None:
        now = self._clock()
        self._set(key, state=SENT, remote_id=remote_id, last_error=None, sent_at=now, updated_at=now)

    def failed(self, key: RowKey, error: str, retry_at: datetime) -> None:
        self._set(
            key, state=FAILED, last_error=error[:2000], next_attempt_at=retry_at, updated_at=self._clock()
        )

    def closed(self, fingerprint: str, channel: str) -> None:
        """Every row of the alert on ``channel`` is done (its alert resolved)."""
        d = alert_deliveries
        with self._store.begin() as conn:
            conn.execute(
                sa.update(d)
                .where(d.c.fingerprint == fingerprint, d.c.channel == channel)
                .values(state=CLOSED, next_attempt_at=None, updated_at=self._clock())
            )
            _mirror(conn, fingerprint, channel, CLOSED)

    def _set(self, key: RowKey, **values: Any) -> None:
        fingerprint, channel, severity = key
        d = alert_deliveries
        if values.get("remote_id") is None:
            values.pop("remote_id", None)  # keep the id a previous attempt found
        with self._store.begin() as conn:
            conn.execute(
                sa.update(d)
                .where(d.c.fingerprint == fingerprint, d.c.channel == channel, d.c.severity == severity)
                .values(**values)
            )
            _mirror(conn, fingerprint, channel, values["state"])


def _mirror(conn: Connection, fingerprint: str, channel: str, state: str) -> None:
    current = conn.execute(sa.select(alerts.c.delivered).where(alerts.c.fingerprint == fingerprint)).scalar()
    summary = json.loads(current) if current else {}
    summary[channel] = state
    conn.execute(
        sa.update(alerts)
        .where(alerts.c.fingerprint == fingerprint)
        .values(delivered=json.dumps(summary, sort_keys=True))
    )
