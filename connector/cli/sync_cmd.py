"""``crm-connector sync``: pull every configured source (or one) into the store."""

from __future__ import annotations

import click
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from connector.cli.context import AppContext, ExitCode
from connector.i18n import tr
from connector.runtime import build_source
from connector.sync import EntityRun, sync_source

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
    "progress": {
        "en": "{source}.{entity}: {fetched} records",
        "zh": "{source}.{entity}：已拉取 {fetched} 条",
    },
    "error_line": {"en": "{source}.{entity} failed: {error}", "zh": "{source}.{entity} 同步失败：{error}"},
    "quarantine_hint": {
        "en": "{count} record(s) quarantined; see `crm-connector status` for reasons.",
        "zh": "{count} 条记录进入隔离区(异常记录)，原因见 `crm-connector status`。",
    },
}


def run_sync(app: AppContext, source: str | None, entities: tuple[str, ...], full: bool) -> list[EntityRun]:
    """Sync the chosen sources with a progress display; shared by `sync`, `demo` and the scheduler."""
    config, lang = app.config, app.lang
    names = [source] if source else list(config.sources)
    for name in names:
        if name not in config.sources:
            app.fail(
                tr(MESSAGES, "unknown_source", lang, name=name, known=", ".join(config.sources)),
                ExitCode.USAGE,
            )
    runs: list[EntityRun] = []
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

        for name in names:
            live = build_source(config, name, app.store, clock=app.clock)
            runs += sync_source(
                app.store,
                name,
                live.adapter,
                live.mappings,
                entities=entities or None,
                full=full,
                clock=app.clock,
                on_page=on_page,
            )
    return runs


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
        data["status"] = tr(MESSAGES, "success" if run.status == "success" else "failed", lang)
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


@click.command()
@click.option("--source", help="Only this source (a name under [sources]).")
@click.option("--entity", "entities", multiple=True, help="Only these entities (repeatable).")
@click.option("--full", is_flag=True, help="Ignore stored cursors and read everything again.")
@click.pass_obj
def sync(app: AppContext, source: str | None, entities: tuple[str, ...], full: bool) -> None:
    """Pull changed records from the CRM(s) into the store."""
    runs = run_sync(app, source, entities, full)
    app.emit([r.as_dict() for r in runs], lambda: print_runs(app, runs))
    if any(r.status != "success" for r in runs):
        raise SystemExit(ExitCode.JOB_FAILED)


COMMANDS = [sync]
