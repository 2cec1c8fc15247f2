"""The alerts job as the CLI and the scheduler run it: from the config, recorded in ``sync_runs``."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa

from connector.alerts.evaluate import evaluate_alerts
from connector.alerts.model import EvaluationResult
from connector.calendar import BusinessCalendar
from connector.store.schema import sync_runs

if TYPE_CHECKING:
    from connector.config import Config
    from connector.store import Store


def run_alerts(store: Store, config: Config, *, now: datetime) -> EvaluationResult:
    """Evaluate every rule of ``config.alerts`` and record the run (job ``alerts``), failed or not.

    In the ``sync_runs`` row, ``inserted`` counts opened (and re-opened) alerts, ``updated``
    escalated ones, ``deleted`` resolved ones and ``fetched`` the alerts open afterwards.
    """
    calendar = BusinessCalendar.from_config(config.clinic.calendar, config.clinic.tz)
    try:
        result = evaluate_alerts(store, config.alerts, config.scorecard, calendar, config.clinic.tz, now=now)
    except Exception as exc:
        _record(store, now, status="failed", error=f"{type(exc).__name__}: {exc}")
        raise
    _record(
        store,
        now,
        status="success",
        fetched=len(result.open_alerts),
        inserted=len(result.opened),
        updated=len(result.escalated),
        deleted=len(result.resolved),
    )
    return result


def _record(store: Store, now: datetime, *, status: str, error: str | None = None, **counts: int) -> None:
    values = {"fetched": 0, "inserted": 0, "updated": 0, "deleted": 0, **counts}
    with store.begin() as conn:
        conn.execute(
            sa.insert(sync_runs).values(
                job="alerts",
                started_at=now,
                finished_at=now,
                status=status,
                unchanged=0,
                quarantined=0,
                api_calls=0,
                error=error,
                **values,
            )
        )
