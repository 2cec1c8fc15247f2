"""Admin commands: ``init``, ``check``, ``status`` and ``db upgrade|current``.

``status`` runs in its own process, apart from ``crm-connector run``: job health comes from
``sync_runs`` and next run times are computed from ``[schedule]`` and the clock, never asked of a
running scheduler.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import sqlalchemy as sa
from rich.table import Table

from connector.cli.context import AppContext, ExitCode
from connector.delivery import failing_deliveries
from connector.health import job_health
from connector.i18n import tr
from connector.runtime import build_source
from connector.scheduler import next_run_times
from connector.store.schema import quarantine, sync_runs, sync_state

if TYPE_CHECKING:
    from connector.config import Config

MESSAGES = {
    "exists": {
        "en": "{path} already exists; use --force to overwrite it.",
        "zh": "{path} 已存在；如需覆盖请加 --force。",
    },
    "written": {
        "en": "Wrote a starter config to {path}. Edit it, then run `crm-connector check`.",
        "zh": "已生成配置文件 {path}。修改后运行 `crm-connector check` 检查。",
    },
    "config_ok": {"en": "Config {path}: OK", "zh": "配置文件 {path}：正常"},
    "store_ok": {"en": "Store {url}: revision {rev}", "zh": "本地库 {url}：版本 {rev}"},
    "source_ok": {
        "en": "Source {name} ({kind}): OK — {detail}",
        "zh": "数据源 {name}（{kind}）：正常 — {detail}",
    },
    "source_bad": {
        "en": "Source {name} ({kind}): FAILED — {detail}",
        "zh": "数据源 {name}（{kind}）：失败 — {detail}",
    },
    "runs_title": {"en": "Last sync per source and entity", "zh": "各数据源最近一次同步"},
    "quarantine_title": {"en": "Quarantine (records that could not be mapped)", "zh": "隔离区(异常记录)"},
    "no_runs": {"en": "No sync has run yet.", "zh": "尚未运行过同步任务。"},
    "no_quarantine": {"en": "Quarantine is empty.", "zh": "隔离区为空。"},
    "col_source": {"en": "Source", "zh": "数据源"},
    "col_entity": {"en": "Entity", "zh": "对象"},
    "col_status": {"en": "Status", "zh": "状态"},
    "col_finished": {"en": "Finished", "zh": "完成时间"},
    "col_counts": {"en": "Fetched/New/Upd/Del", "zh": "拉取/新增/更新/删除"},
    "col_cursor": {"en": "Cursor", "zh": "游标"},
    "col_count": {"en": "Records", "zh": "条数"},
    "col_reason": {"en": "Example reason", "zh": "原因示例"},
    "col_error": {"en": "Error", "zh": "错误"},
    "db_current": {"en": "Store revision: {rev} (head: {head})", "zh": "本地库版本：{rev}（最新：{head}）"},
    "db_upgraded": {"en": "Store upgraded to {rev}.", "zh": "本地库已升级到 {rev}。"},
    "jobs_title": {"en": "Scheduled jobs (crm-connector run)", "zh": "定时任务（crm-connector run）"},
    "col_job": {"en": "Job", "zh": "任务"},
    "col_schedule": {"en": "Schedule", "zh": "定时计划"},
    "col_last": {"en": "Last result", "zh": "最近结果"},
    "col_last_success": {"en": "Last success", "zh": "最近成功"},
    "col_failures": {"en": "Failures in a row", "zh": "连续失败"},
    "col_next": {"en": "Next run", "zh": "下次运行"},
    "after_sync": {"en": "after each sync", "zh": "每次同步后"},
    "off": {"en": "off", "zh": "关闭"},
    "never": {"en": "never", "zh": "从未"},
    "failing_title": {"en": "Failing jobs:", "zh": "失败中的任务："},
    "failing_line": {
        "en": "  {job}: failed {count} time(s) in a row{unhealthy} — {error}",
        "zh": "  {job}：连续失败 {count} 次{unhealthy} — {error}",
    },
    "unhealthy": {"en": " (health check failing)", "zh": "（健康检查不通过）"},
    "success": {"en": "ok", "zh": "成功"},
    "failed": {"en": "failed", "zh": "失败"},
    "skipped": {"en": "skipped (busy elsewhere)", "zh": "跳过（他处运行中）"},
    "stopped": {"en": "stopped", "zh": "已停止"},
    "running": {"en": "running", "zh": "运行中"},
    "partial": {"en": "partial", "zh": "部分成功"},
    "deliveries_title": {
        "en": "Alert deliveries failing (still retried; see [delivery] failing_after):",
        "zh": "预警推送失败（仍会重试；见 [delivery] failing_after）：",
    },
    "delivery_line": {
        "en": "  {rule} → {channel} ({severity}, alert {fingerprint}): {attempts} attempts, "
        "next {next} — {error}",
        "zh": "  {rule} → {channel}（{severity}，预警 {fingerprint}）：已尝试 {attempts} 次，"
        "下次 {next} — {error}",
    },
}


@click.command()
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
@click.pass_obj
def init(app: AppContext, force: bool) -> None:
    """Write a commented starter config (to --config, default ./connector.toml)."""
    from connector.config import starter_config

    path = Path(app.config_path)
    lang = app.lang_override or "zh"
    if path.exists() and not force:
        app.fail(tr(MESSAGES, "exists", lang, path=path), ExitCode.USAGE)
    path.write_text(starter_config(), encoding="utf-8")
    app.emit({"written": str(path)}, lambda: app.console.print(tr(MESSAGES, "written", lang, path=path)))


@click.command()
@click.option("--source", help="Only check this source.")
@click.pass_obj
def check(app: AppContext, source: str | None) -> None:
    """Validate the config, open the store and test each source's credentials."""
    from connector.store.migrate import current_revision

    config, lang = app.config, app.lang
    revision = current_revision(app.store.engine)
    results: list[dict[str, Any]] = []
    for name, source_config in config.sources.items():
        if source and name != source:
            continue
        try:
            result = build_source(config, name, app.store, clock=app.clock).adapter.check()
            results.append(
                {
                    "source": name,
                    "kind": source_config.kind,
                    "ok": result.ok,
                    "detail": result.detail,
                    "facts": result.facts,
                }
            )
        except Exception as exc:
            results.append(
                {"source": name, "kind": source_config.kind, "ok": False, "detail": str(exc), "facts": {}}
            )

    def human() -> None:
        app.console.print(tr(MESSAGES, "config_ok", lang, path=config.path))
        app.console.print(tr(MESSAGES, "store_ok", lang, url=app.store.url, rev=revision))
        for r in results:
            key = "source_ok" if r["ok"] else "source_bad"
            app.console.print(tr(MESSAGES, key, lang, name=r["source"], kind=r["kind"], detail=r["detail"]))

    app.emit({"config": str(config.path), "store_revision": revision, "sources": results}, human)
    if not all(r["ok"] for r in results):
        raise SystemExit(ExitCode.JOB_FAILED)


def _last_runs(conn: sa.Connection) -> list[dict[str, Any]]:
    latest = (
        sa.select(sa.func.max(sync_runs.c.id))
        .where(sync_runs.c.job == "sync", sync_runs.c.entity.is_not(None))
        .group_by(sync_runs.c.source, sync_runs.c.entity)
        .scalar_subquery()
    )
    cursors = {
        (r.source, r.entity, r.stream): r.cursor
        for r in conn.execute(
            sa.select(sync_state.c.source, sync_state.c.entity, sync_state.c.stream, sync_state.c.cursor)
        )
    }
    rows = conn.execute(
        sa.select(sync_runs).where(sync_runs.c.id.in_(latest)).order_by(sync_runs.c.source, sync_runs.c.id)
    ).mappings()
    return [
        {
            **{
                k: row[k]
                for k in (
                    "source",
                    "entity",
                    "status",
                    "started_at",
                    "finished_at",
                    "fetched",
                    "inserted",
                    "updated",
                    "unchanged",
                    "deleted",
                    "quarantined",
                    "api_calls",
                    "error",
                )
            },
            "cursor": json.loads(cursors.get((row["source"], row["entity"], "records")) or "null"),
        }
        for row in rows
    ]


def _quarantine_summary(conn: sa.Connection) -> list[dict[str, Any]]:
    grouped = conn.execute(
        sa.select(
            quarantine.c.source,
            quarantine.c.entity,
            sa.func.count().label("count"),
            sa.func.max(quarantine.c.reason).label("reason"),
        )
        .group_by(quarantine.c.source, quarantine.c.entity)
        .order_by(quarantine.c.source, quarantine.c.entity)
    )
    summary = []
    for row in grouped:
        reasons = conn.execute(
            sa.select(quarantine.c.external_id, quarantine.c.reason)
            .where(quarantine.c.source == row.source, quarantine.c.entity == row.entity)
            .order_by(quarantine.c.last_seen.desc(), quarantine.c.external_id)
            .limit(5)
        ).all()
        summary.append(
            {
                "source": row.source,
                "entity": row.entity,
                "count": row.count,
                "examples": [{"external_id": r.external_id, "reason": r.reason} for r in reasons],
            }
        )
    return summary


def _schedule_of(config: Config, job: str, source: str | None) -> str:
    schedule = config.schedule
    if job != "sync":
        return schedule.step_schedule(job)
    own = schedule.sources.get(source or "")
    return own.sync if own else schedule.sync


def _jobs(app: AppContext) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every scheduled job's health and next run, and the failing ones."""
    config = app.config
    next_runs = next_run_times(config, app.clock())
    limit = config.schedule.unhealthy_after_failures
    jobs = [
        {
            "key": health.key,
            **health.as_dict(),
            "schedule": _schedule_of(config, health.job, health.source),
            "next_run": next_runs.get(health.key),
        }
        for health in job_health(app.store, config)
    ]
    failing = [
        {
            "key": job["key"],
            "consecutive_failures": job["consecutive_failures"],
            "unhealthy": job["consecutive_failures"] >= limit,
            "last_error": job["last_error"],
        }
        for job in jobs
        if job["consecutive_failures"]
    ]
    return jobs, failing


def status_data(app: AppContext) -> dict[str, Any]:
    jobs, failing = _jobs(app)
    with app.store.connect() as conn:
        deliveries = failing_deliveries(conn, min_attempts=app.config.delivery.failing_after)
        return {
            "runs": _last_runs(conn),
            "quarantine": _quarantine_summary(conn),
            "jobs": jobs,
            "failing": failing,
            "failing_deliveries": [delivery.as_dict() for delivery in deliveries],
        }


_STATUSES = ("success", "failed", "skipped", "stopped", "running", "partial")


def _local(app: AppContext, when: Any) -> str:
    return when.astimezone(app.config.clinic.tz).strftime("%Y-%m-%d %H:%M") if when else "-"


def print_jobs(app: AppContext, data: dict[str, Any]) -> None:
    lang = app.lang
    table = Table(title=tr(MESSAGES, "jobs_title", lang))
    for key in ("col_job", "col_schedule", "col_last", "col_last_success", "col_failures", "col_next"):
        table.add_column(tr(MESSAGES, key, lang))
    for job in data["jobs"]:
        schedule = job["schedule"]
        shown = tr(MESSAGES, schedule, lang) if schedule in ("after_sync", "off") else schedule
        last = (
            tr(MESSAGES, job["last_status"], lang) if job["last_status"] in _STATUSES else job["last_status"]
        )
        table.add_row(
            job["key"],
            shown,
            last or tr(MESSAGES, "never", lang),
            _local(app, job["last_success"]) if job["last_success"] else tr(MESSAGES, "never", lang),
            str(job["consecutive_failures"]),
            _local(app, job["next_run"]),
        )
    app.console.print(table)
    if data["failing"]:
        app.console.print(tr(MESSAGES, "failing_title", lang), style="bold red")
        for job in data["failing"]:
            unhealthy = tr(MESSAGES, "unhealthy", lang) if job["unhealthy"] else ""
            app.console.print(
                tr(
                    MESSAGES,
                    "failing_line",
                    lang,
                    job=job["key"],
                    count=job["consecutive_failures"],
                    unhealthy=unhealthy,
                    error=(job["last_error"] or "-")[:200],
                ),
                markup=False,
                highlight=False,
                emoji=False,  # "sync:b: …" is not the :b: emoji
            )


def print_failing_deliveries(app: AppContext, data: dict[str, Any]) -> None:
    lang = app.lang
    if not data.get("failing_deliveries"):
        return
    app.console.print(tr(MESSAGES, "deliveries_title", lang), style="bold red")
    for d in data["failing_deliveries"]:
        app.console.print(
            tr(
                MESSAGES,
                "delivery_line",
                lang,
                rule=d["rule"] or "-",
                channel=d["channel"],
                severity=d["severity"],
                fingerprint=d["fingerprint"],
                attempts=d["attempts"],
                next=_local(app, d["next_attempt_at"]),
                error=(d["last_error"] or "-")[:200],
            ),
            markup=False,
            highlight=False,
            emoji=False,
        )


def print_status(app: AppContext, data: dict[str, Any]) -> None:
    lang = app.lang
    print_jobs(app, data)
    print_failing_deliveries(app, data)
    if not data["runs"]:
        app.console.print(tr(MESSAGES, "no_runs", lang))
    else:
        table = Table(title=tr(MESSAGES, "runs_title", lang))
        for key in ("col_source", "col_entity", "col_status", "col_finished", "col_counts", "col_cursor"):
            table.add_column(tr(MESSAGES, key, lang))
        for r in data["runs"]:
            finished = r["finished_at"].isoformat(timespec="seconds") if r["finished_at"] else "-"
            counts = f"{r['fetched']}/{r['inserted']}/{r['updated']}/{r['deleted']}"
            status = r["status"] if not r["error"] else f"{r['status']}: {r['error'][:80]}"
            cursor = json.dumps(r["cursor"], ensure_ascii=False)
            table.add_row(
                r["source"],
                r["entity"],
                status,
                finished,
                counts,
                cursor if len(cursor) <= 60 else cursor[:57] + "...",
            )
        app.console.print(table)
    if not data["quarantine"]:
        app.console.print(tr(MESSAGES, "no_quarantine", lang))
        return
    table = Table(title=tr(MESSAGES, "quarantine_title", lang))
    for key in ("col_source", "col_entity", "col_count", "col_reason"):
        table.add_column(tr(MESSAGES, key, lang))
    for q in data["quarantine"]:
        reasons = "\n".join(f"{e['external_id']}: {e['reason']}" for e in q["examples"][:3])
        table.add_row(q["source"], q["entity"], str(q["count"]), reasons)
    app.console.print(table)


@click.command()
@click.pass_obj
def status(app: AppContext) -> None:
    """Scheduled jobs (last result, failures, next run), last sync per entity, cursors, quarantine."""
    data = status_data(app)
    app.emit(data, lambda: print_status(app, data))


@click.group()
def db() -> None:
    """Store schema migrations."""


@db.command("upgrade")
@click.pass_obj
def db_upgrade(app: AppContext) -> None:
    """Apply every pending migration (also done automatically on start)."""
    from connector.store.migrate import current_revision, upgrade

    upgrade(app.store.engine)
    rev = current_revision(app.store.engine)
    app.emit({"revision": rev}, lambda: app.console.print(tr(MESSAGES, "db_upgraded", app.lang, rev=rev)))


@db.command("current")
@click.pass_obj
def db_current(app: AppContext) -> None:
    """Show the store's schema revision and the newest one this release knows."""
    from connector.store import open_store
    from connector.store.migrate import current_revision, head_revision

    store = open_store(app.config.store.url, upgrade=False)
    rev, head = current_revision(store.engine), head_revision()
    app.emit(
        {"revision": rev, "head": head},
        lambda: app.console.print(tr(MESSAGES, "db_current", app.lang, rev=rev, head=head)),
    )


COMMANDS = [init, check, status, db]
