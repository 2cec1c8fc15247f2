"""``crm-connector run``: the unattended daemon, or ``--once`` for system cron.

The daemon runs the jobs of ``[schedule]`` until SIGTERM/SIGINT, then lets the running jobs finish
their page in flight and exits 0. ``--once`` runs the whole chain one time — sync every source,
then metrics, alerts and push (each unless scheduled ``off``) — and exits 1 if anything failed.
A source another process is syncing right now is skipped, which is not a failure: that process
runs the chain for it.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import click
from rich.table import Table
from rich.text import Text

from connector.cli.context import AppContext, ExitCode
from connector.health import HealthServer
from connector.i18n import tr
from connector.jobs import JobEnv, JobOutcome, StopSignal, once_steps, run_chain
from connector.scheduler import Daemon, next_fire

MESSAGES = {
    "started": {
        "en": "Scheduler started (time zone {tz}); stop with Ctrl-C or SIGTERM. Jobs:",
        "zh": "定时任务已启动（时区 {tz}）；按 Ctrl-C 或发送 SIGTERM 停止。任务：",
    },
    "job_line": {"en": "  {id:<24} {cron:<16} next: {next}", "zh": "  {id:<24} {cron:<16} 下次：{next}"},
    "no_jobs": {
        "en": "  (none: every job is off in [schedule])",
        "zh": "  （无：[schedule] 中所有任务均已关闭）",
    },
    "health": {
        "en": "Health: http://{host}:{port}/healthz and /metrics",
        "zh": "健康检查：http://{host}:{port}/healthz 与 /metrics",
    },
    "daemon_stopped": {
        "en": "Scheduler stopped; running jobs finished their page in flight.",
        "zh": "定时任务已停止；运行中的任务已提交当前页。",
    },
    "health_needs_daemon": {
        "en": "--health-port serves the daemon; it cannot be combined with --once.",
        "zh": "--health-port 仅用于常驻运行，不能与 --once 同时使用。",
    },
    "title": {"en": "Run summary", "zh": "运行结果"},
    "col_job": {"en": "Job", "zh": "任务"},
    "col_source": {"en": "Source", "zh": "数据源"},
    "col_status": {"en": "Result", "zh": "结果"},
    "col_counts": {"en": "Counts", "zh": "数量"},
    "col_error": {"en": "Error / note", "zh": "错误 / 说明"},
    "success": {"en": "ok", "zh": "成功"},
    "failed": {"en": "FAILED", "zh": "失败"},
    "skipped": {"en": "skipped", "zh": "跳过"},
    "stopped": {"en": "stopped", "zh": "已停止"},
    "busy": {"en": "busy in another process ({holder})", "zh": "另一进程（{holder}）正在运行"},
}


def _daemon(app: AppContext, env: JobEnv, health_host: str | None, health_port: int | None) -> None:
    daemon = Daemon(env)
    connector_log = logging.getLogger("connector")
    if connector_log.getEffectiveLevel() > logging.INFO:
        connector_log.setLevel(logging.INFO)  # a daemon's log is its record of what ran
    server = None
    if health_port is not None:
        server = HealthServer(
            app.store, app.config, health_host or app.config.schedule.health_host, health_port
        )
        server.start()
    tz, now, lang = app.config.clinic.tz, app.clock(), app.lang
    jobs = [{"id": job.id, "cron": job.cron, "next_run": next_fire(job.cron, tz, now)} for job in daemon.plan]
    started: dict[str, Any] = {"event": "started", "timezone": str(tz), "jobs": jobs}
    if server is not None:
        started["health"] = {"host": server.address[0], "port": server.address[1]}
    if app.as_json:
        click.echo(json.dumps(started, ensure_ascii=False, default=str))
    else:
        click.echo(tr(MESSAGES, "started", lang, tz=tz))
        for job in jobs:
            when = job["next_run"].strftime("%Y-%m-%d %H:%M") if job["next_run"] else "-"
            click.echo(tr(MESSAGES, "job_line", lang, id=job["id"], cron=job["cron"], next=when))
        if not jobs:
            click.echo(tr(MESSAGES, "no_jobs", lang))
        if server is not None:
            host, port = server.address
            click.echo(tr(MESSAGES, "health", lang, host=host, port=port))
    try:
        with env.stop.on_signals(then=daemon.shutdown):
            daemon.run()
    finally:
        if server is not None:
            server.close()
    if app.as_json:
        click.echo(json.dumps({"event": "stopped"}))
    else:
        click.echo(tr(MESSAGES, "daemon_stopped", lang))


def _note(outcome: JobOutcome, lang: str) -> str:
    if outcome.status == "skipped":
        return tr(MESSAGES, "busy", lang, holder=outcome.holder or "?")
    return (outcome.error or "")[:200]


def print_outcomes(app: AppContext, outcomes: list[JobOutcome]) -> None:
    lang = app.lang
    table = Table(title=tr(MESSAGES, "title", lang))
    for key in ("col_job", "col_source", "col_status", "col_counts", "col_error"):
        table.add_column(tr(MESSAGES, key, lang))
    for outcome in outcomes:
        counts = ", ".join(f"{key}={value}" for key, value in outcome.counts.items() if value)
        cells = (outcome.job, outcome.source or "-", tr(MESSAGES, outcome.status, lang), counts or "-")
        table.add_row(*cells, Text(_note(outcome, lang)))  # an error message is not markup
    app.console.print(table)


@click.command()
@click.option("--once", is_flag=True, help="Run sync → metrics → alerts → push one time and exit (for cron).")
@click.option(
    "--health-port",
    type=click.IntRange(0, 65535),
    default=None,
    help="Serve /healthz and /metrics on this port (0: any free port, printed at start).",
)
@click.option(
    "--health-host", default=None, help="Address to serve them on (default: [schedule] health_host)."
)
@click.pass_obj
def run(app: AppContext, once: bool, health_port: int | None, health_host: str | None) -> None:
    """Run the scheduled jobs until stopped (SIGTERM/Ctrl-C finish the page in flight, exit 0)."""
    env = JobEnv(config=app.config, store=app.store, clock=app.clock, stop=StopSignal())
    if not once:
        _daemon(app, env, health_host, health_port)
        return
    if health_port is not None:
        app.fail(tr(MESSAGES, "health_needs_daemon", app.lang), ExitCode.USAGE)
    with env.stop.on_signals():
        outcomes = run_chain(env, None, once_steps(app.config))
    app.emit([outcome.as_dict() for outcome in outcomes], lambda: print_outcomes(app, outcomes))
    if any(outcome.status == "failed" for outcome in outcomes):
        raise SystemExit(ExitCode.JOB_FAILED)


COMMANDS = [run]
