"""What a ShareCRM query filter and a write's values mean (sharecrm.md §3.2, §3.4), as pure functions."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

OPERATORS = frozenset({"EQ", "N", "GT", "GTE", "LT", "LTE", "IN", "NIN", "BETWEEN", "IS", "ISN", "LIKE"})
ID_ORDER = [{"fieldName": "_id", "isAsc": True}]

#: Objects the sandbox lets clients write: field → type ("employee" lists of ids, "number" strings,
#: "date" epoch ms). Fields not listed are stored as sent.
WRITABLE: dict[str, dict[str, str]] = {
    "object_perf__c": {
        "field_employee__c": "employee",
        "owner": "employee",
        "field_score__c": "number",
        "field_rank__c": "number",
        "field_bonus_pct__c": "number",
    },
    "object_alert__c": {"owner": "employee", "field_due__c": "date"},
    "ScheduleObj": {"owner": "employee", "begin_time": "date", "end_time": "date"},
}


def id_cursor(filters: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The ``_id GT``/``GTE`` filter a keyset page starts from, if any."""
    return next((f for f in filters if f.get("field_name") == "_id" and f["operator"] in ("GT", "GTE")), None)


def since_ms(filters: list[dict[str, Any]]) -> int | None:
    """The lower bound a ``last_modified_time GT``/``GTE`` filter sets, for a cheap pre-check."""
    for f in filters:
        if f.get("field_name") == "last_modified_time" and f["operator"] in ("GT", "GTE"):
            try:
                return int(f["field_values"][0])
            except (TypeError, ValueError, IndexError):
                return None
    return None


def sort_key(value: Any) -> tuple[int, Any]:
    return (0, "") if value is None else (1, str(value) if isinstance(value, list | dict) else value)


def _comparable(value: Any, wanted: Any) -> tuple[Any, Any]:
    """Numbers compare as numbers even when the filter sends numeric strings (epoch ms often are)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return value, float(wanted)
        except (TypeError, ValueError):
            return str(value), str(wanted)
    return str(value), str(wanted)


def holds(row: Mapping[str, Any], spec: Mapping[str, Any]) -> bool:
    """One ``search_query_info`` filter; list fields (owner …) match if any element does."""
    value = row.get(spec.get("field_name"))
    values = list(spec.get("field_values") or [])
    op = spec["operator"]
    if op == "IS":
        return value in (None, "", [])
    if op == "ISN":
        return value not in (None, "", [])
    if isinstance(value, list):
        inside = any(str(v) in map(str, values) for v in value)
        return {"EQ": inside, "IN": inside, "N": not inside, "NIN": not inside}.get(op, False)
    if op in ("N", "NIN"):
        return value is None or not any(a == b for a, b in (_comparable(value, w) for w in values))
    if value is None or not values:
        return False
    if op in ("EQ", "IN"):
        return any(a == b for a, b in (_comparable(value, w) for w in values))
    if op == "LIKE":
        return str(values[0]) in str(value)
    if op == "BETWEEN":
        low, high = _comparable(value, values[0]), _comparable(value, values[-1])
        return low[1] <= low[0] <= high[1]
    mine, theirs = _comparable(value, values[0])
    return {"GT": mine > theirs, "GTE": mine >= theirs, "LT": mine < theirs, "LTE": mine <= theirs}[op]


def type_problem(schema: Mapping[str, str], values: Mapping[str, Any]) -> str | None:
    """Why ShareCRM would refuse these values (write formats, §3.4), or None."""
    for name, value in values.items():
        kind = schema.get(name)
        if kind == "employee" and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            return f"字段 {name} 是人员字段，值必须是ID列表"
        if kind == "number" and value is not None and not (isinstance(value, str) and _is_number(value)):
            return f"字段 {name} 是数字字段，值必须是数字字符串"
        if kind == "date" and value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            return f"字段 {name} 是日期字段，值必须是毫秒时间戳"
    return None


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
