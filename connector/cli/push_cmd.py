"""``crm-connector push``: write the stored scorecards into the CRMs — only what changed.

``--dry-run`` prints the plan (record, field, old → new) and makes no CRM call at all. A real run
holds the store lock ``job:push`` (the scheduled push takes it too, so two pushes never race to
create the same record), prints a summary with every failed record and the CRM's reason, records
the run in ``sync_runs`` and exits 1 if anything failed; failed records are planned again next run.
"""

from __future__ import annotations

from typing import Any

import click
from rich.table import Table
from rich.text import Text

from connector.cli.context import AppContext, ExitCode
from connector.i18n import tr
from connector.metrics import parse_period
from connector.push import PushError, PushReport, TargetReport, run_push
from connector.push.run import record_push_run
from connector.store import LockBusy, named_lock

MESSAGES = {
    "plan_title": {
        "en": "Dry run (nothing written): {source} → {object}: {count} to write, {unchanged} unchanged",
        "zh": "试运行(不写入)：{source} → {object}：待写入 {count} 条，未变 {unchanged} 条",
    },
    "summary": {
        "en": "{source} → {object}: {written} written ({inserted} new, {updated} updated), {failed} failed, "
        "{unchanged} unchanged, {calls} API calls",
        "zh": "{source} → {object}：写入 {written} 条（新增 {inserted}，更新 {updated}），失败 {failed} 条，"
        "未变 {unchanged} 条，API调用 {calls} 次",
    },
    "nothing": {"en": "{source} → {object}: nothing changed", "zh": "{source} → {object}：没有变化"},
    "target_failed": {
        "en": "{source} → {object}: FAILED, nothing written: {error}",
        "zh": "{source} → {object}：失败，未写入：{error}",
    },
    "failures_title": {
        "en": "Records the CRM refused (retried on the next push)",
        "zh": "CRM 拒绝写入的记录（下次推送时重试）",
    },
    "no_targets": {
        "en": "No source to push to: [push] sources is empty, or no source's CRM can take scorecards.",
        "zh": "没有可推送的数据源：[push] sources 为空，或没有可写入绩效考核表的 CRM。",
    },
    "more": {
        "en": "… {count} more record(s); --json lists them all.",
        "zh": "… 另有 {count} 条记录；使用 --json 查看全部。",
    },
    "busy": {
        "en": "Another push is running ({holder}); try again later.",
        "zh": "另一推送任务正在运行（{holder}），请稍后再试。",
    },
    "bad_period": {"en": "--period: {error}", "zh": "--period：{error}"},
    "col_record": {"en": "Record", "zh": "记录"},
    "col_field": {"en": "Field", "zh": "字段"},
    "col_old": {"en": "Old", "zh": "原值"},
    "col_new": {"en": "New", "zh": "新值"},
    "col_code": {"en": "Code", "zh": "错误码"},
    "col_reason": {"en": "CRM's reason", "zh": "CRM 返回原因"},
    "new_record": {"en": "(new)", "zh": "（新记录）"},
}
PLAN_ROWS = 40  # records shown per target in a dry run's table


@click.command()
@click.option("--dry-run", is_flag=True, help="Print the plan (record, field, old → new); write nothing.")
@click.option(
    "--period",
    default=None,
    help="Only this period's scorecards (2026-10, 2026-W43, 2026-Q4 …); default: every stored period "
    "of a granularity in [push] periods.",
)
@click.option(
    "--json", "as_json", is_flag=True, help="Machine-readable JSON output (same as the global --json)."
)
@click.pass_obj
def push(app: AppContext, dry_run: bool, period: str | None, as_json: bool) -> None:
    """Write scorecards into the CRMs: only records whose values changed since the last push."""
    app.as_json = app.as_json or as_json
    lang, config = app.lang, app.config
    if period is not None:
        try:
            period = parse_period(period, config.clinic.tz).label
        except ValueError as exc:
            app.fail(tr(MESSAGES, "bad_period", lang, error=exc), ExitCode.USAGE)
    try:
        if dry_run:
            report = run_push(app.store, config, clock=app.clock, dry_run=True, period=period)
        else:
            with named_lock(app.store, "job:push", wait=False, now=app.clock):
                started = app.clock()
                report = run_push(app.store, config, clock=app.clock, period=period)
                record_push_run(app.store, report, started=started, finished=app.clock())
    except PushError as exc:
        app.fail(f"{config.path}: {exc}", ExitCode.USAGE)
    except LockBusy as busy:
        app.fail(tr(MESSAGES, "busy", lang, holder=busy.holder or "?"), ExitCode.JOB_FAILED)
    app.emit(report.as_json(), lambda: print_push(app, report))
    if not report.ok:
        raise SystemExit(int(ExitCode.JOB_FAILED))


def print_push(app: AppContext, report: PushReport) -> None:
    """The plan of a dry run, or what a real push wrote and what failed (also used by ``demo``)."""
    lang = app.lang
    if not report.targets:
        app.console.print(tr(MESSAGES, "no_targets", lang))
    for target in report.targets:
        if report.dry_run:
            _print_plan(app, target)
        else:
            _print_result(app, target)


def _print_plan(app: AppContext, target: TargetReport) -> None:
    lang, plan = app.lang, target.plan
    title = tr(
        MESSAGES,
        "plan_title",
        lang,
        source=plan.source,
        object=plan.object,
        count=len(plan.records),
        unchanged=plan.unchanged,
    )
    app.console.print(title, markup=False)
    if not plan.records:
        return
    table = Table()
    for key in ("col_record", "col_field", "col_old", "col_new"):
        table.add_column(tr(MESSAGES, key, lang))
    for record in plan.records[:PLAN_ROWS]:
        for index, (name, old, new) in enumerate(record.changes()):
            shown_old = tr(MESSAGES, "new_record", lang) if record.previous is None else _value(old)
            table.add_row(
                Text(record.record_key if index == 0 else ""), Text(name), Text(shown_old), Text(_value(new))
            )
    app.console.print(table)
    if len(plan.records) > PLAN_ROWS:
        app.console.print(tr(MESSAGES, "more", lang, count=len(plan.records) - PLAN_ROWS))


def _print_result(app: AppContext, target: TargetReport) -> None:
    lang, plan = app.lang, target.plan
    where = {"source": plan.source, "object": plan.object}
    if target.error:
        app.console.print(tr(MESSAGES, "target_failed", lang, **where, error=target.error), markup=False)
        return
    if not plan.records:
        app.console.print(tr(MESSAGES, "nothing", lang, **where), markup=False)
        return
    actions = [r.action for r in target.results or [] if r.ok]
    line = tr(
        MESSAGES,
        "summary",
        lang,
        **where,
        written=target.written,
        inserted=actions.count("insert"),
        updated=len(actions) - actions.count("insert"),
        failed=len(target.failures),
        unchanged=plan.unchanged,
        calls=target.api_calls,
    )
    app.console.print(line, markup=False)
    if target.failures:
        table = Table(title=tr(MESSAGES, "failures_title", lang))
        for key in ("col_record", "col_code", "col_reason"):
            table.add_column(tr(MESSAGES, key, lang))
        for record, result in target.failures:
            table.add_row(Text(record.record_key), Text(result.code or "-"), Text(result.message or "-"))
        app.console.print(table)


def _value(value: Any) -> str:
    if isinstance(value, dict) and set(value) == {"id"}:
        return str(value["id"])
    return "—" if value is None else str(value)


COMMANDS = [push]
