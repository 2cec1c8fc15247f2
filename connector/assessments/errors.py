"""What can be wrong with an assessments file, in words the admin reads (zh and en).

Errors keep a message key and its values rather than text, so the CLI renders them in the staff's
language and ``--json`` can also give scripts the stable key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from connector.i18n import tr

CATALOG = {
    # whole-file problems
    "unsupported_format": {
        "en": "unsupported file type {suffix}; use .csv or .xlsx",
        "zh": "不支持的文件类型 {suffix}，请使用 .csv 或 .xlsx",
    },
    "unreadable": {"en": "cannot read {path}: {error}", "zh": "无法读取 {path}：{error}"},
    "no_header": {
        "en": "the first row must be the header (agent, kind, score, assessed_at, assessor)",
        "zh": "第一行必须是表头（客户经理、类型、分数、日期、考核人）",
    },
    "missing_columns": {
        "en": "missing column(s): {columns}",
        "zh": "缺少列：{columns}",
    },
    "duplicate_column": {
        "en": "columns {first} and {second} both give {field}",
        "zh": "列 {first} 与 {second} 含义相同（{field}）",
    },
    # row problems
    "empty": {"en": "{column} is empty", "zh": "{column} 为空"},
    "agent_unknown": {"en": "no agent matches {value}", "zh": "找不到与 {value} 匹配的客户经理"},
    "agent_ambiguous": {
        "en": "{value} matches several agents: {matches}; use --source or a unique id",
        "zh": "{value} 匹配到多名客户经理：{matches}；请用 --source 或唯一工号",
    },
    "kind_unknown": {
        "en": "unknown kind {value}; expected one of {kinds}",
        "zh": "未知考核类型 {value}，可选：{kinds}",
    },
    "score_not_number": {"en": "score {value} is not a number", "zh": "分数 {value} 不是数字"},
    "score_range": {"en": "score {value} is not between 0 and 100", "zh": "分数 {value} 不在 0–100 之间"},
    "date_invalid": {
        "en": "{value} is not a date or date-time (e.g. 2026-10-05 or 2026-10-05 14:30)",
        "zh": "{value} 不是有效日期或时间（如 2026-10-05 或 2026-10-05 14:30）",
    },
    "date_future": {"en": "{value} is in the future", "zh": "{value} 晚于当前时间"},
    "duplicate_row": {
        "en": "same agent, kind, time and assessor as row {row}",
        "zh": "与第 {row} 行重复（客户经理、类型、时间、考核人相同）",
    },
}


class ImportFileError(Exception):
    """The file as a whole cannot be imported (wrong type, unreadable, missing columns)."""

    def __init__(self, key: str, **values: Any) -> None:
        super().__init__(tr(CATALOG, key, "en", **values))
        self.key, self.values = key, values

    def message(self, lang: str) -> str:
        return tr(CATALOG, self.key, lang, **self.values)


@dataclass(frozen=True)
class RowError:
    """One bad row: its spreadsheet row number, the column at fault (its header text) and why."""

    row: int
    column: str
    key: str
    values: dict[str, Any] = field(default_factory=dict)

    def message(self, lang: str) -> str:
        return tr(CATALOG, self.key, lang, column=self.column, **self.values)

    def as_json(self, lang: str) -> dict[str, Any]:
        return {"row": self.row, "column": self.column, "code": self.key, "reason": self.message(lang)}
