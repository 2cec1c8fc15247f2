"""Delivering alerts: each open alert to the channels of its rule, each resolved one closed.

What is due on a run:

* an open alert with no row for (fingerprint, channel, its severity) yet — new, or just escalated;
* a ``pending`` row — in doubt after a crash: sent again (webhook, same key) or looked up (task);
* a ``failed`` row whose ``next_attempt_at`` has come (back-off doubles per attempt);
* a ``sent``/``closed`` row of an alert re-opened since (a new occurrence, with a new key);
* a resolved alert with rows not yet ``closed``: its CRM task is closed, its webhook rows retired.

The guarantee: **at least once, with a stable idempotency key**. A webhook is re-sent only after a
crash between sending and recording (or a failed attempt), with the same ``Idempotency-Key`` header
and ``idempotency_key`` field, so a receiver that dedupes on the key shows it exactly once. Robot
webhooks (WeCom, DingTalk) do not dedupe: there, a crash in that window can repeat one message. A
CRM task is created **exactly once**: a retried create first looks the task up by its unique key.

Runs hold the store lock ``deliver``: a second process finds it taken and skips the run.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import requests

from connector.adapter import PushResult
from connector.alerts import Alert, open_alerts
from connector.clock import Clock
from connector.delivery.content import (
    closing_fields,
    idempotency_key,
    task_fields,
    task_key,
    webhook_payload,
)
from connector.delivery.crm_tasks import BACKENDS, TaskBackend
from connector.delivery.ledger import (
    CLOSED,
    FAILED,
    PENDING,
    SENT,
    DeliveryRow,
    Ledger,
    ResolvedAlert,
    RowKey,
    rows_for,
    unclosed_of_resolved,
)
from connector.delivery.settings import CRM_TASK
from connector.delivery.webhook import post_alert
from connector.http import TransportError
from connector.push.fieldmap import PushMapError, load_write_map
from connector.store import LockBusy, named_lock

if TYPE_CHECKING:
    from connector.config import Config
    from connector.store import Store

log = logging.getLogger(__name__)

#: How far before an alert's occurrence a task lookup still reads (CRM and connector clocks differ).
LOOKUP_MARGIN = timedelta(days=1)


@dataclass(frozen=True)
class DeliveryOutcome:
    fingerprint: str
    channel: str
    severity: str
    action: str  # sent | closed | failed
    remote_id: str | None = None
    error: str | None = None


@dataclass
class DeliveryReport:
    outcomes: list[DeliveryOutcome] = field(default_factory=list)
    deferred: int = 0  # due, but over max_per_run: next run
    skipped: str | None = None  # another process was delivering

    def counts(self) -> dict[str, int]:
        actions = [o.action for o in self.outcomes]
        return {
            "delivered": actions.count("sent"),
            "closed": actions.count("closed"),
            "delivery_failed": actions.count("failed"),
            "delivery_deferred": self.deferred,
        }


def deliver_alerts(
    store: Store, config: Config, *, clock: Clock, sleep: Callable[[float], None] = time.sleep
) -> DeliveryReport:
    """Deliver what is due (see the module docstring); never raises for a CRM or webhook failure.

    ``sleep`` is what the adapters wait with between retries of a CRM call.
    """
    if not config.delivery.enabled:
        return DeliveryReport()
    try:
        with named_lock(store, "deliver", wait=False, now=clock), requests.Session() as session:
            return _Run(store, config, clock, sleep, session).deliver()
    except LockBusy as busy:
        return DeliveryReport(skipped=str(busy))


@dataclass(frozen=True)
class _Send:
    alert: Alert
    channel: str
    rows: list[DeliveryRow]  # the alert's rows on this channel, any severity

    @property
    def key(self) -> RowKey:
        return (self.alert.fingerprint, self.channel, self.alert.severity)

    @property
    def row(self) -> DeliveryRow | None:
        return next((r for r in self.rows if r.severity == self.alert.severity), None)


@dataclass(frozen=True)
class _Close:
    alert: ResolvedAlert
    channel: str
    rows: list[DeliveryRow]


class _Run:
    def __init__(
        self,
        store: Store,
        config: Config,
        clock: Clock,
        sleep: Callable[[float], None],
        session: requests.Session,
    ) -> None:
        self.store, self.config, self.clock, self.sleep = store, config, clock, sleep
        self.session = session
        self.settings = config.delivery
        self.ledger = Ledger(store, clock)
        self._backends: dict[str, TaskBackend | str] = {}  # source → backend, or why there is none

    # ---- what is due ------------------------------------------------------------------------

    def deliver(self) -> DeliveryReport:
        now = self.clock()
        with self.store.connect() as conn:
            current = open_alerts(conn)
            resolved = unclosed_of_resolved(conn)
            rows = rows_for(conn, [a.fingerprint for a in current] + [r.fingerprint for r in resolved])
        by_alert: dict[str, dict[str, list[DeliveryRow]]] = defaultdict(lambda: defaultdict(list))
        for row in rows.values():
            by_alert[row.fingerprint][row.channel].append(row)

        due: list[_Send | _Close] = []
        for alert in current:
            for channel in self.settings.channels_for(alert.rule):
                send = _Send(alert, channel, by_alert[alert.fingerprint][channel])
                if self._send_due(send, now):
                    due.append(send)
        for gone in resolved:
            for channel, channel_rows in sorted(by_alert[gone.fingerprint].items()):
                if any(r.state != CLOSED for r in channel_rows) and _close_due(channel_rows, now):
                    due.append(_Close(gone, channel, channel_rows))

        limit = self.settings.max_per_run
        report = DeliveryReport(deferred=max(len(due) - limit, 0))
        for work in due[:limit]:
            report.outcomes.append(self._send(work) if isinstance(work, _Send) else self._close(work))
        return report

    def _send_due(self, send: _Send, now: datetime) -> bool:
        if send.channel == CRM_TASK and isinstance(self._backend(send.alert.source), str):
            return False  # this alert's CRM keeps no tasks (or its field map has none)
        row = send.row
        if row is None or row.state == PENDING:
            return True
        if row.state == FAILED:
            return row.next_attempt_at is None or row.next_attempt_at <= now
        if row.state == CLOSED:
            return True  # closed when its alert resolved; open again now: a new occurrence
        return row.sent_at is not None and send.alert.opened_at > row.sent_at  # re-opened since

    # ---- sending ----------------------------------------------------------------------------

    def _send(self, send: _Send) -> DeliveryOutcome:
        row = send.row
        attempts = self.ledger.begin(send.key, fresh=row is None or row.state in (SENT, CLOSED))
        result = self._send_task(send, attempts) if send.channel == CRM_TASK else self._send_webhook(send)
        alert = send.alert
        if result.ok:
            self.ledger.sent(send.key, result.remote_id)
            return DeliveryOutcome(alert.fingerprint, send.channel, alert.severity, "sent", result.remote_id)
        error = f"{result.code}: {result.message}"
        self.ledger.failed(send.key, error, self.clock() + self.settings.retry_delay(attempts))
        return DeliveryOutcome(alert.fingerprint, send.channel, alert.severity, "failed", None, error)

    def _send_webhook(self, send: _Send) -> PushResult:
        alert, settings = send.alert, self.settings.webhooks[send.channel]
        language = self.settings.language_of(send.channel, self.config.clinic.language)
        key = idempotency_key(alert, send.channel)
        payload = webhook_payload(alert, settings.format, language, self.config.clinic.tz, key)
        sent = post_alert(
            self.session, settings, payload, key=key, fingerprint=alert.fingerprint, now=self.clock()
        )
        return PushResult(key, ok=sent.ok, code=None if sent.ok else "WEBHOOK", message=sent.error)

    def _send_task(self, send: _Send, attempts: int) -> PushResult:
        backend = self._backend(send.alert.source)
        assert not isinstance(backend, str)
        alert, tz = send.alert, self.config.clinic.tz
        day = (self.clock() + timedelta(days=self.settings.crm_task.due_in_days)).astimezone(tz).date()
        record = task_fields(
            backend.layout,
            alert,
            self.settings.language_of(CRM_TASK, self.config.clinic.language),
            tz,
            due=backend.due(day),
            owner=backend.owner(alert.agent_id) if alert.agent_id else None,
        )
        key = task_key(alert.fingerprint)
        try:
            existing = _remote_id(send.rows)
            if existing is None and attempts > 1:  # an earlier create may have gone through
                existing = backend.find(key, since=alert.opened_at - LOOKUP_MARGIN)
            return backend.update(existing, record) if existing else backend.create(record)
        except TransportError as exc:
            return PushResult(key, ok=False, code=type(exc).__name__, message=str(exc))

    # ---- closing ----------------------------------------------------------------------------

    def _close(self, close: _Close) -> DeliveryOutcome:
        alert = close.alert
        backend = self._backend(alert.source) if close.channel == CRM_TASK else None
        fields = None if backend is None or isinstance(backend, str) else closing_fields(backend.layout)
        if (
            backend is None
            or isinstance(backend, str)
            or fields is None
            or not self.settings.crm_task.close_on_resolve
        ):
            self.ledger.closed(alert.fingerprint, close.channel)  # nothing to take back in the CRM
            return DeliveryOutcome(alert.fingerprint, close.channel, alert.severity, "closed")
        key = task_key(alert.fingerprint)
        remote = _remote_id(close.rows)
        try:
            remote = remote or backend.find(key, since=alert.opened_at - LOOKUP_MARGIN)
            result = backend.update(remote, fields) if remote else PushResult(key, ok=True)
        except TransportError as exc:
            result = PushResult(key, ok=False, code=type(exc).__name__, message=str(exc))
        if result.ok:
            self.ledger.closed(alert.fingerprint, close.channel)
            return DeliveryOutcome(alert.fingerprint, close.channel, alert.severity, "closed", remote)
        latest = max(close.rows, key=lambda r: r.updated_at)
        error = f"closing the task: {result.code}: {result.message}"
        self.ledger.failed(latest.key, error, self.clock() + self.settings.retry_delay(latest.attempts))
        return DeliveryOutcome(alert.fingerprint, close.channel, latest.severity, "failed", remote, error)

    # ---- shared -----------------------------------------------------------------------------

    def _backend(self, source: str) -> TaskBackend | str:
        """The source's task backend, or the reason it has none (built once per run)."""
        if source not in self._backends:
            self._backends[source] = self._build_backend(source)
        return self._backends[source]

    def _build_backend(self, source: str) -> TaskBackend | str:
        from connector.runtime import build_source  # imports the config package, which imports us

        config = self.config.sources.get(source)
        if config is None:
            return f"source {source!r} is no longer configured"
        backend_class = BACKENDS.get(config.kind)
        if backend_class is None:
            return f"{config.kind} sources keep no alert tasks"
        try:
            layout = load_write_map(config.kind, self.config.push.field_maps.get(source)).tasks
            if layout is None:
                return f"the push field map of {source} has no [tasks]"
            live = build_source(self.config, source, self.store, clock=self.clock, sleep=self.sleep)
            return backend_class(live.adapter, layout)
        except (PushMapError, ValueError) as exc:  # the admin must fix the field map or the source
            log.warning("alert tasks cannot be delivered to %s: %s", source, exc)
            return f"{source}: {exc}"


def _close_due(rows: list[DeliveryRow], now: datetime) -> bool:
    """A resolved alert's rows are closed now unless a failed close waits for its retry time."""
    waiting = [r.next_attempt_at for r in rows if r.state == FAILED and r.next_attempt_at is not None]
    return not waiting or min(waiting) <= now


def _remote_id(rows: list[DeliveryRow]) -> str | None:
    """The CRM task an earlier delivery of this alert created (escalations update it)."""
    return next((r.remote_id for r in sorted(rows, key=lambda r: r.updated_at) if r.remote_id), None)
