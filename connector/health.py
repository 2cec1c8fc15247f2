"""Job health from ``sync_runs``, served by ``run --health-port`` as ``/healthz`` and ``/metrics``.

Everything is computed from the store on each request, so any process (``status``, a monitoring
probe, the ``run`` daemon) sees the same answer and nothing is lost when the daemon restarts.

Reading ``sync_runs``: a *job run* is a row whose ``entity`` is NULL or whose job is not ``sync``;
a sync's per-entity rows are its parts and carry the record counts (:mod:`connector.jobs`).
Consecutive failures count ``failed`` job runs since the last ``success``; ``skipped``,
``stopped`` and ``running`` rows neither break nor extend a streak.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from connector.jobs import job_key, scheduled_jobs
from connector.store.schema import alerts, sync_runs

if TYPE_CHECKING:
    from connector.config import Config
    from connector.store import Store

log = logging.getLogger(__name__)

_SOURCE = sa.func.coalesce(sync_runs.c.source, sa.literal_column("''"))  # a literal: PG groups by it
_JOB_RUN = sa.or_(sync_runs.c.job != "sync", sync_runs.c.entity.is_(None))
_NOT_SUMMARY = sa.or_(sync_runs.c.job != "sync", sync_runs.c.entity.is_not(None))
_RECORD_COUNTS = ("fetched", "inserted", "updated", "deleted", "quarantined")


@dataclass(frozen=True)
class JobHealth:
    """How one scheduled job (a source's sync, or a step) has been doing."""

    job: str
    source: str | None
    last_status: str | None = None
    last_started: datetime | None = None
    last_finished: datetime | None = None
    last_error: str | None = None
    last_success: datetime | None = None
    consecutive_failures: int = 0

    @property
    def key(self) -> str:
        return job_key(self.job, self.source)

    def as_dict(self) -> dict[str, Any]:
        return {
            "job": self.job,
            "source": self.source,
            "last_status": self.last_status,
            "last_started": self.last_started,
            "last_finished": self.last_finished,
            "last_error": self.last_error,
            "last_success": self.last_success,
            "consecutive_failures": self.consecutive_failures,
        }


def _latest_ids(conn: Connection, *where: sa.ColumnElement[bool]) -> dict[tuple[str, str], int]:
    rows = conn.execute(
        sa.select(sync_runs.c.job, _SOURCE, sa.func.max(sync_runs.c.id))
        .where(_JOB_RUN, *where)
        .group_by(sync_runs.c.job, _SOURCE)
    )
    return {(job, source): last_id for job, source, last_id in rows}


def _failure_streaks(conn: Connection) -> dict[tuple[str, str], int]:
    last_ok = (
        sa.select(sync_runs.c.job, _SOURCE.label("source"), sa.func.max(sync_runs.c.id).label("ok_id"))
        .where(_JOB_RUN, sync_runs.c.status == "success")
        .group_by(sync_runs.c.job, _SOURCE)
        .subquery()
    )
    joined = sync_runs.outerjoin(last_ok, (sync_runs.c.job == last_ok.c.job) & (last_ok.c.source == _SOURCE))
    rows = conn.execute(
        sa.select(sync_runs.c.job, _SOURCE, sa.func.count())
        .select_from(joined)
        .where(
            _JOB_RUN, sync_runs.c.status == "failed", sync_runs.c.id > sa.func.coalesce(last_ok.c.ok_id, 0)
        )
        .group_by(sync_runs.c.job, _SOURCE)
    )
    return {(job, source): count for job, source, count in rows}


def job_health(store: Store, config: Config) -> list[JobHealth]:
    """The health of every job ``run`` schedules (:func:`connector.jobs.scheduled_jobs`), in that order."""
    with store.connect() as conn:
        latest = _latest_ids(conn)
        successes = _latest_ids(conn, sync_runs.c.status == "success")
        streaks = _failure_streaks(conn)
        wanted = [*latest.values(), *successes.values()]
        rows = {row.id: row for row in conn.execute(sa.select(sync_runs).where(sync_runs.c.id.in_(wanted)))}
    health = []
    for job, source in scheduled_jobs(config):
        key = (job, source or "")
        last, success = rows.get(latest.get(key, -1)), rows.get(successes.get(key, -1))
        health.append(
            JobHealth(
                job,
                source,
                last_status=last.status if last else None,
                last_started=last.started_at if last else None,
                last_finished=last.finished_at if last else None,
                last_error=last.error if last else None,
                last_success=success.finished_at if success else None,
                consecutive_failures=streaks.get(key, 0),
            )
        )
    return health


def health_report(store: Store, config: Config) -> tuple[int, dict[str, Any]]:
    """The ``/healthz`` answer: HTTP 200, or 503 once a job has failed N times in a row."""
    limit = config.schedule.unhealthy_after_failures
    jobs = job_health(store, config)
    failing = [job.key for job in jobs if job.consecutive_failures >= limit]
    body = {
        "status": "failing" if failing else "ok",
        "unhealthy_after_failures": limit,
        "failing": failing,
        "jobs": {
            job.key: {
                "last_status": job.last_status,
                "last_success": job.last_success.isoformat() if job.last_success else None,
                "consecutive_failures": job.consecutive_failures,
            }
            for job in jobs
        },
    }
    return (503 if failing else 200), body


# ---- Prometheus text format -------------------------------------------------------------------


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _sample(name: str, labels: Mapping[str, str | None], value: float) -> str:
    shown = ",".join(f'{key}="{_escape(str(v))}"' for key, v in labels.items() if v not in (None, ""))
    number = int(value) if float(value).is_integer() else value
    return f"{name}{{{shown}}} {number}" if shown else f"{name} {number}"


def _family(
    name: str, kind: str, help_text: str, samples: Iterable[tuple[Mapping[str, str | None], float]]
) -> list[str]:
    return [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"] + [
        _sample(name, labels, value) for labels, value in samples
    ]


def prometheus_text(store: Store, config: Config) -> str:
    """Counters and gauges for ``/metrics`` (text exposition format 0.0.4), all from the store."""
    with store.connect() as conn:
        runs = conn.execute(
            sa.select(sync_runs.c.job, sync_runs.c.status, sa.func.count())
            .where(_JOB_RUN)
            .group_by(sync_runs.c.job, sync_runs.c.status)
            .order_by(sync_runs.c.job, sync_runs.c.status)
        ).all()
        records = conn.execute(
            sa.select(
                sync_runs.c.job,
                _SOURCE,
                sync_runs.c.entity,
                *(sa.func.sum(sync_runs.c[name]) for name in _RECORD_COUNTS),
            )
            .where(sync_runs.c.entity.is_not(None))
            .group_by(sync_runs.c.job, _SOURCE, sync_runs.c.entity)
            .order_by(sync_runs.c.job, _SOURCE, sync_runs.c.entity)
        ).all()
        calls_and_errors = conn.execute(
            sa.select(
                sync_runs.c.job,
                _SOURCE,
                sa.func.sum(sync_runs.c.api_calls),
                sa.func.sum(sa.case((sync_runs.c.status == "failed", 1), else_=0)),
            )
            .where(_NOT_SUMMARY)
            .group_by(sync_runs.c.job, _SOURCE)
            .order_by(sync_runs.c.job, _SOURCE)
        ).all()
        open_alerts = conn.execute(
            sa.select(alerts.c.rule, alerts.c.severity, sa.func.count())
            .where(alerts.c.resolved_at.is_(None))
            .group_by(alerts.c.rule, alerts.c.severity)
            .order_by(alerts.c.rule, alerts.c.severity)
        ).all()
    jobs = job_health(store, config)
    lines = [
        *_family(
            "crm_connector_job_runs_total",
            "counter",
            "Job runs recorded in sync_runs, by job and result.",
            (({"job": job, "status": status}, count) for job, status, count in runs),
        ),
        *_family(
            "crm_connector_records_total",
            "counter",
            "Records handled by syncs and imports, by source, entity and outcome.",
            (
                ({"job": job, "source": source, "entity": entity, "outcome": outcome}, value or 0)
                for job, source, entity, *values in records
                for outcome, value in zip(_RECORD_COUNTS, values, strict=True)
            ),
        ),
        *_family(
            "crm_connector_api_calls_total",
            "counter",
            "CRM API calls made, by job and source.",
            (({"job": job, "source": source}, calls or 0) for job, source, calls, _ in calls_and_errors),
        ),
        *_family(
            "crm_connector_errors_total",
            "counter",
            "Runs that failed (a sync counts each failed entity), by job and source.",
            (({"job": job, "source": source}, errors or 0) for job, source, _, errors in calls_and_errors),
        ),
        *_family(
            "crm_connector_open_alerts",
            "gauge",
            "Alerts open now, by rule and severity.",
            (({"rule": rule, "severity": severity}, count) for rule, severity, count in open_alerts),
        ),
        *_family(
            "crm_connector_job_consecutive_failures",
            "gauge",
            "Failed runs of a scheduled job since its last success.",
            (({"job": job.job, "source": job.source}, job.consecutive_failures) for job in jobs),
        ),
        *_family(
            "crm_connector_job_last_success_timestamp_seconds",
            "gauge",
            "When a scheduled job last finished successfully (Unix time).",
            (
                ({"job": job.job, "source": job.source}, job.last_success.timestamp())
                for job in jobs
                if job.last_success
            ),
        ),
    ]
    return "\n".join(lines) + "\n"


# ---- the HTTP server --------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], store: Store, config: Config) -> None:
        super().__init__(address, _Handler)
        self.store, self.config = store, config


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        try:
            if path == "/healthz":
                code, body = health_report(self.server.store, self.server.config)
                self._send(code, "application/json", json.dumps(body, ensure_ascii=False))
            elif path == "/metrics":
                text = prometheus_text(self.server.store, self.server.config)
                self._send(200, "text/plain; version=0.0.4; charset=utf-8", text)
            else:
                self._send(404, "text/plain; charset=utf-8", "not found: try /healthz or /metrics\n")
        except Exception as exc:  # a store that cannot be read is not healthy
            log.warning("health endpoint %s failed: %s", path, exc)
            body = {"status": "error", "error": f"{type(exc).__name__}: {exc}"}
            self._send(503, "application/json", json.dumps(body, ensure_ascii=False))

    def _send(self, code: int, content_type: str, text: str) -> None:
        data = text.encode("utf-8")
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:  # probes every few seconds: keep it quiet
        log.debug("health %s - " + format, self.address_string(), *args)


class HealthServer:
    """``/healthz`` and ``/metrics`` on ``host:port`` (port 0: any free port), in a daemon thread."""

    def __init__(self, store: Store, config: Config, host: str, port: int) -> None:
        self._server = _Server((host, port), store, config)
        self._thread = threading.Thread(target=self._server.serve_forever, name="health", daemon=True)

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def start(self) -> HealthServer:
        self._thread.start()
        return self

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
