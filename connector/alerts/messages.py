"""Alert texts in zh and en, and the labels the ``alerts`` table shows.

Alerts store their message values in ``details`` (times already in clinic-local form), so any reader —
the CLI, a CRM task, a webhook — renders the text in its own language from the same row.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from connector.i18n import tr

CATALOG = {
    "first_response.warning": {
        "en": "Complaint {label} has no first response yet; the {limit_h:g} h limit runs out at {deadline}",
        "zh": "投诉工单 {label} 尚未首次响应，{limit_h:g}小时时限将于 {deadline} 到期",
    },
    "first_response.breach": {
        "en": "Complaint {label} (created {created}) has had no first response within {limit_h:g} h",
        "zh": "投诉工单 {label}（{created} 创建）超过{limit_h:g}小时未首次响应",
    },
    "resolution.warning": {
        "en": "Complaint {label} is not resolved yet; the {limit_h:g} h limit runs out at {deadline}",
        "zh": "投诉工单 {label} 尚未解决，{limit_h:g}小时时限将于 {deadline} 到期",
    },
    "resolution.breach": {
        "en": "Complaint {label} (created {created}) is not resolved within {limit_h:g} h",
        "zh": "投诉工单 {label}（{created} 创建）超过{limit_h:g}小时未解决",
    },
    "follow_up_overdue": {
        "en": "Follow-up {label} was due {due} and is not done",
        "zh": "回访 {label} 已逾期未完成（应于 {due} 前完成）",
    },
    "low_score.tickets": {
        "en": "Low satisfaction score {score}/5 on ticket {label}",
        "zh": "工单 {label} 收到低满意度评分 {score}/5",
    },
    "low_score.surveys": {
        "en": "Low satisfaction score {score}/5 in survey {label}",
        "zh": "满意度调查 {label} 评分偏低：{score}/5",
    },
    "low_composite": {
        "en": "Month-to-date composite score {score:.1f} is below {threshold:g} ({period})",
        "zh": "{period} 月累计综合得分 {score:.1f}，低于 {threshold:g}",
    },
}

LABELS = {
    "warning": {"en": "warning", "zh": "预警"},
    "breach": {"en": "breach", "zh": "超时"},
    "info": {"en": "info", "zh": "提示"},
    "first_response": {"en": "first response", "zh": "首次响应"},
    "resolution": {"en": "resolution", "zh": "解决时限"},
    "follow_up_overdue": {"en": "follow-up overdue", "zh": "回访逾期"},
    "low_score": {"en": "low satisfaction", "zh": "低满意度"},
    "low_composite": {"en": "low composite score", "zh": "综合得分偏低"},
    "tickets": {"en": "ticket", "zh": "工单"},
    "follow_ups": {"en": "follow-up", "zh": "回访"},
    "surveys": {"en": "survey", "zh": "满意度调查"},
    "agents": {"en": "agent", "zh": "客户经理"},
}


def render(rule: str, severity: str, entity: str, details: Mapping[str, Any], lang: str) -> str:
    """An alert's message: the most specific catalog entry of rule.severity, rule.entity, rule."""
    for key in (f"{rule}.{severity}", f"{rule}.{entity}", rule):
        if key in CATALOG:
            return tr(CATALOG, key, lang, **details)
    raise KeyError(f"no message for alert rule {rule!r}")


def label(key: str, lang: str) -> str:
    """A severity, rule or entity name in ``lang`` (the key itself if it has no translation)."""
    return tr(LABELS, key, lang) if key in LABELS else key
