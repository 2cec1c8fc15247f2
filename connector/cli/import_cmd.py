"""``crm-connector import assessments FILE``: exam, audit and rating scores from CSV/XLSX into the store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich.table import Table

from connector.assessments import ImportFileError, ImportResult, RowError, import_assessments
from connector.cli.context import AppContext, ExitCode
from connector.i18n import tr

MESSAGES = {
    "unknown_source": {
        "en": "unknown source {name!r}; configured: {known}",
        "zh": "未知数据源 {name!r}；已配置：{known}",
    },
    "summary": {
        "en": "{file}: {rows} row(s) read; {inserted} new, {updated} updated, {unchanged} unchanged.",
        "zh": "{file}：读取 {rows} 行；新增 {inserted}，更新 {updated}，未变 {unchanged}。",
    },
    "rejected": {
        "en": "{count} invalid row(s); nothing was imported. Fix them, or use --skip-invalid "
        "to import only the valid rows.",
        "zh": "{count} 行有误，未导入任何数据。请修正后重新导入，或使用 --skip-invalid 只导入正确的行。",
    },
    "skipped": {"en": "{count} invalid row(s) skipped.", "zh": "已跳过 {count} 行有误数据。"},
    "errors_title": {"en": "Invalid rows", "zh": "有误的行"},
    "row": {"en": "Row", "zh": "行"},
    "column": {"en": "Column", "zh": "列"},
    "reason": {"en": "Reason", "zh": "原因"},
}


@click.group("import")
def import_group() -> None:
    """Import data that does not live in the CRM."""


@import_group.command("assessments")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--skip-invalid", is_flag=True, help="Import the valid rows and list the invalid ones.")
@click.option("--source", help="Match agents only in this source (a name under [sources]).")
@click.pass_obj
def assessments(app: AppContext, file: Path, skip_invalid: bool, source: str | None) -> None:
    """Exam, audit and rating scores from a .csv or .xlsx file (all rows valid, or nothing is written)."""
    lang = app.lang
    if source is not None and source not in app.config.sources:
        known = ", ".join(app.config.sources)
        app.fail(tr(MESSAGES, "unknown_source", lang, name=source, known=known), ExitCode.USAGE)
    try:
        result = import_assessments(
            app.store,
            file,
            tz=app.config.clinic.tz,
            now=app.clock(),
            skip_invalid=skip_invalid,
            source=source,
        )
    except ImportFileError as exc:
        app.fail(exc.message(lang))
    app.emit(_as_json(result, lang), lambda: _print(app, result))
    if not result.written:
        raise SystemExit(ExitCode.JOB_FAILED)


def _as_json(result: ImportResult, lang: str) -> dict[str, Any]:
    return {
        "file": result.file,
        "rows": result.rows,
        "valid": result.valid,
        "inserted": result.inserted,
        "updated": result.updated,
        "unchanged": result.unchanged,
        "written": result.written,
        "run_id": result.run_id,
        "errors": [error.as_json(lang) for error in result.errors],
    }


def _print(app: AppContext, result: ImportResult) -> None:
    lang = app.lang
    if result.errors:
        _print_errors(app, result.errors)
    if not result.written:
        app.console.print(tr(MESSAGES, "rejected", lang, count=result.invalid_rows))
        return
    if result.errors:
        app.console.print(tr(MESSAGES, "skipped", lang, count=result.invalid_rows))
    app.console.print(
        tr(
            MESSAGES,
            "summary",
            lang,
            file=Path(result.file).name,
            rows=result.rows,
            inserted=result.inserted,
            updated=result.updated,
            unchanged=result.unchanged,
        )
    )


def _print_errors(app: AppContext, errors: list[RowError]) -> None:
    lang = app.lang
    table = Table(title=tr(MESSAGES, "errors_title", lang))
    table.add_column(tr(MESSAGES, "row", lang), justify="right")
    table.add_column(tr(MESSAGES, "column", lang))
    table.add_column(tr(MESSAGES, "reason", lang))
    for error in errors:
        table.add_row(str(error.row), error.column, error.message(lang))
    app.console.print(table)


COMMANDS = [import_group]
