"""``crm-connector sync``: pull every configured source (or one) into the store.

Each source is synced under the store lock ``sync:<source>`` that scheduled syncs take too, so a
manual sync never runs alongside ``crm-connector run`` (or another manual sync) on the same source.
By default a busy source is not waited for: the command says who holds it and exits 1;
``--wait SECONDS`` waits that long first. SIGTERM/SIGINT commit the pages already fetched and exit 0.
A CRM whose daily call quota is spent ends that source ``stopped`` (exit 0 too): the error line says
when the quota resets, and the next sync after that resumes from the stored cursors.
"""

from __future__ import annotations

from typing import Any

import click
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from connector.cli.context import AppContext, ExitCode
from connector.i18n import tr
from connector.jobs import JobEnv, JobOutcome, StopSignal, sync_sources
from connector.store import LockBusy
from connector.sync import EntityRun

MESSAGES = {
    "unknown_source": {
        "en": "unknown source {name!r}; configured: {known}",
        "zh": "未知数据源 {name!r}；已配置：{known}",
    },
    "title": {"en": "Sync summary", "zh": "同步任务结果"},
    "source": {"en": "Source", "zh": "数据源"},
    "entity": {"en": "Entity", "zh": "对象"},
    "status": {"en": "Status", "zh": "状态"},
    "fetched": {"en": "Fetched", "zh": "拉取"},
    "inserted": {"en": "New", "zh": "新增"},
    "updated": {"en": "Updated", "zh": "更新"},
    "unchanged": {"en": "Unchanged", "zh": "未变"},
    "deleted": {"en": "Deleted", "zh": "删除"},
    "quarantined": {"en": "Quarantined", "zh": "隔离"},
    "api_calls": {"en": "API calls", "zh": "API调用"},
    "success": {"en": "ok", "zh": "成功"},
    "failed": {"en": "FAILED", "zh": "失败"},
    "stopped": {"en": "stopped (resumes next run)", "zh": "已停止（下次继续）"},
    "progress": {
        "en": "{source}.{entity}: {fetched} records",
        "zh": "{source}.{entity}：已拉取 {fetched} 条",
    },
    "error_line": {"en": "{source}.{entity} failed: {error}", "zh": "{source}.{entity} 同步失败：{error}"},
    "source_failed": {"en": "{source} failed: {error}", "zh": "{source} 同步失败：{error}"},
    "quarantine_hint": {
        "en": "{count} record(s) quarantined; see `crm-connector status` for reasons.",
        "zh": "{count} 条记录进入隔离区(异常记录)，原因见 `crm-connector status`。",
    },
    "busy": {
        "en": "Source {source} is being synced by another process ({holder}); it was not synced now. "
        "Try again later, or wait for it with --wait SECONDS.",
        "zh": "数据源 {source} 正由另一进程（{holder}）同步，本次未同步。"
        "请稍后再试，或加 --wait 秒数 等待其完成。",
    },
    "waiting": {
        "en": "Source {source} is being synced by another process ({holder}); waiting up to {seconds:g} s …",
        "zh": "数据源 {source} 正由另一进程（{holder}）同步；最多等待 {seconds:g} 秒 …",
    },
    "unknown_holder": {"en": "holder unknown", "zh": "持有者未知"},
    "stopping": {
        "en": "Stopped on request after committing the pages already fetched; the next sync resumes there.",
        "zh": "已按请求停止：已拉取的页均已提交，下次同步从此处继续。",
    },
}


def _holder(holder: str | None, lang: str) -> str:
    return holder or tr(MESSAGES, "unknown_holder", lang)


def sync_with_progress(
    app: AppContext,
    source: str | None,
    entities: tuple[str, ...],
    full: bool,
    *,
    wait: float = 0.0,
    stop: StopSignal | None = None,
) -> list[JobOutcome]:
    """Sync the chosen sources under their locks with a progress display, one outcome per source."""
    config, lang = app.config, app.lang
    names = [source] if source else list(config.sources)
    for name in names:
        if name not in config.sources:
            app.fail(
                tr(MESSAGES, "unknown_source", lang, name=name, known=", ".join(config.sources)),
                ExitCode.USAGE,
            )
    env = JobEnv(config=config, store=app.store, clock=app.clock, stop=stop or StopSignal())
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=app.err_console,
        transient=True,
        disable=app.as_json,
    ) as progress:
        task = progress.add_task("", total=None)

        def on_page(run: EntityRun) -> None:
            progress.update(
                task,
                description=tr(
                    MESSAGES,
                    "progress",
                    lang,
                    source=run.source,
                    entity=run.entity,
                    fetched=run.counts.fetched,
                ),
            )

        def on_busy(busy: LockBusy) -> None:
            name = busy.name.removeprefix("sync:")
            holder = _holder(busy.holder, lang)
            app.err_console.print(tr(MESSAGES, "waiting", lang, source=name, holder=holder, seconds=wait))

        return sync_sources(
            env, names, wait=wait, entities=entities or None, full=full, on_page=on_page, on_busy=on_busy
        )


def run_sync(app: AppContext, source: str | None, entities: tuple[str, ...], full: bool) -> list[EntityRun]:
    """The entity runs of :func:`sync_with_progress` (for ``demo``, whose fresh store nobody else holds)."""
    return [run for outcome in sync_with_progress(app, source, entities, full) for run in outcome.runs]


def print_runs(app: AppContext, runs: list[EntityRun]) -> None:
    lang = app.lang
    columns = [
        "source",
        "entity",
        "status",
        "fetched",
        "inserted",
        "updated",
        "unchanged",
        "deleted",
        "quarantined",
        "api_calls",
    ]
    table = Table(title=tr(MESSAGES, "title", lang))
    for column in columns:
        table.add_column(tr(MESSAGES, column, lang), justify="right" if column not in columns[:3] else "left")
    for run in runs:
        data = run.as_dict()
        data["status"] = tr(MESSAGES, run.status if run.status in ("success", "stopped") else "failed", lang)
        table.add_row(*(str(data[c]) for c in columns))
    app.console.print(table)
    for run in runs:
        if run.error:
            app.console.print(
                tr(MESSAGES, "error_line", lang, source=run.source, entity=run.entity, error=run.error)
            )
    quarantined = sum(r.counts.quarantined for r in runs)
    if quarantined:
        app.console.print(tr(MESSAGES, "quarantine_hint", lang, count=quarantined))


def print_outcomes(app: AppContext, outcomes: list[JobOutcome]) -> None:
    """The entity table, then what happened to sources that never got to their entities."""
    lang = app.lang
    runs = [run for outcome in outcomes for run in outcome.runs]
    print_runs(app, runs)
    for outcome in outcomes:
        if outcome.status == "skipped":
            holder = _holder(outcome.holder, lang)
            message = tr(MESSAGES, "busy", lang, source=outcome.source, holder=holder)
        elif outcome.status == "failed" and not outcome.runs:
            message = tr(MESSAGES, "source_failed", lang, source=outcome.source, error=outcome.error)
        else:
            continue
        app.console.print(message, markup=False, emoji=False, highlight=False)  # errors are not markup
    if any(run.status == "stopped" and run.resumes_at is None for run in runs) or any(
        outcome.status == "stopped" and not outcome.runs for outcome in outcomes
    ):  # a stop request, not the CRM's spent call budget (whose error line says when it resets)
        app.console.print(tr(MESSAGES, "stopping", lang))


def outcomes_json(outcomes: list[JobOutcome]) -> list[dict[str, Any]]:
    """One dict per entity run; a source that synced no entity (skipped, failed to start) as itself."""
    rows: list[dict[str, Any]] = []
    for outcome in outcomes:
        if outcome.runs:
            rows += [run.as_dict() for run in outcome.runs]
        else:
            rows.append(
                {
                    "source": outcome.source,
                    "entity": None,
                    "status": outcome.status,
                    "error": outcome.error,
                    "holder": outcome.holder,
                }
            )
    return rows


@click.command()
@click.option("--source", help="Only this source (a name under [sources]).")
@click.option("--entity", "entities", multiple=True, help="Only these entities (repeatable).")
@click.option("--full", is_flag=True, help="Ignore stored cursors and read everything again.")
@click.option(
    "--wait",
    type=click.FloatRange(min=0),
    default=0,
    show_default=True,
    metavar="SECONDS",
    help="How long to wait for a source another process is syncing (0: do not wait, exit 1).",
)
@click.pass_obj
def sync(app: AppContext, source: str | None, entities: tuple[str, ...], full: bool, wait: float) -> None:
    """Pull changed records from the CRM(s) into the store."""
    stop = StopSignal()
    with stop.on_signals():
        outcomes = sync_with_progress(app, source, entities, full, wait=wait, stop=stop)
    app.emit(outcomes_json(outcomes), lambda: print_outcomes(app, outcomes))
    if any(outcome.status in ("failed", "skipped") for outcome in outcomes):
        raise SystemExit(ExitCode.JOB_FAILED)


COMMANDS = [sync]
