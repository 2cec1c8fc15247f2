"""``crm-connector alerts``: evaluate the alert rules now and list the open alerts."""

from __future__ import annotations

import click
from rich.table import Table
from rich.text import Text

from connector.alerts import Alert, EvaluationResult, label, run_alerts
from connector.cli.context import AppContext
from connector.i18n import tr

MESSAGES = {
    "title": {"en": "Open alerts", "zh": "未处理预警"},
    "severity": {"en": "Level", "zh": "级别"},
    "rule": {"en": "Rule", "zh": "规则"},
    "agent": {"en": "Agent", "zh": "客户经理"},
    "subject": {"en": "Record", "zh": "对象"},
    "opened": {"en": "Since", "zh": "开始时间"},
    "message": {"en": "Details", "zh": "说明"},
    "none": {"en": "No open alerts.", "zh": "当前没有未处理的预警。"},
    "summary": {
        "en": "{opened} opened, {escalated} escalated, {resolved} resolved; {open} open.",
        "zh": "新增 {opened}，升级 {escalated}，解除 {resolved}；当前未处理 {open} 条。",
    },
}
_STYLES = {"breach": "bold red", "warning": "yellow"}


@click.command()
@click.option(
    "--json", "as_json", is_flag=True, help="Machine-readable JSON output (same as the global --json)."
)
@click.pass_obj
def alerts(app: AppContext, as_json: bool) -> None:
    """Evaluate the alert rules against the store and list the open alerts."""
    app.as_json = app.as_json or as_json
    result = run_alerts(app.store, app.config, now=app.clock())
    lang = app.lang
    app.emit([alert.as_json(lang) for alert in result.open_alerts], lambda: print_alerts(app, result))


def print_alerts(app: AppContext, result: EvaluationResult) -> None:
    """The open alerts as a table and what this evaluation changed (also used by ``demo``)."""
    lang, tz = app.lang, app.config.clinic.tz
    if result.open_alerts:
        table = Table(title=tr(MESSAGES, "title", lang))
        for column in ("severity", "rule", "agent", "subject", "opened", "message"):
            table.add_column(tr(MESSAGES, column, lang))
        for alert in result.open_alerts:
            # Text cells: CRM data (subjects, names) must not be read as rich markup.
            table.add_row(
                Text(label(alert.severity, lang), style=_STYLES.get(alert.severity, "")),
                Text(label(alert.rule, lang)),
                Text(_agent(alert)),
                Text(f"{label(alert.entity, lang)} {alert.entity_id}"),
                Text(f"{alert.opened_at.astimezone(tz):%Y-%m-%d %H:%M}"),
                Text(alert.message(lang)),
            )
        app.console.print(table)
    else:
        app.console.print(tr(MESSAGES, "none", lang))
    counts = {
        "opened": len(result.opened),
        "escalated": len(result.escalated),
        "resolved": len(result.resolved),
        "open": len(result.open_alerts),
    }
    app.console.print(tr(MESSAGES, "summary", lang, **counts))


def _agent(alert: Alert) -> str:
    if alert.agent_id is None:
        return "-"
    return f"{alert.agent_name} ({alert.agent_id})" if alert.agent_name else alert.agent_id


COMMANDS = [alerts]
