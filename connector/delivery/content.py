"""What a delivered alert says: the CRM task's fields and the webhook bodies, in zh, en or both.

Every text is rendered from the ``alerts`` row (its rule, severity and message values), so the CRM
task, the group robot and the CLI say the same thing. Keys are derived, never stored: the task key
from the fingerprint alone (one task per alert subject, updated when it escalates), the idempotency
key from fingerprint, channel, severity and the occurrence (``opened_at``), so a crash-resend
carries the same key and a re-opened alert a new one.
"""

from __future__ import annotations

import hashlib
from typing import Any

from connector.alerts import Alert, label
from connector.i18n import tr
from connector.push.fieldmap import TaskLayout

CATALOG = {
    "title": {"en": "[{severity}] {rule}", "zh": "【{severity}】{rule}"},
    "agent": {"en": "Agent: {agent}", "zh": "客户经理：{agent}"},
    "record": {"en": "Record: {entity} {entity_id}", "zh": "对象：{entity} {entity_id}"},
    "opened": {"en": "Since: {opened}", "zh": "开始时间：{opened}"},
    "footer": {
        "en": "Sent by crm-connector; alert {fingerprint}",
        "zh": "由 crm-connector 发送；预警编号 {fingerprint}",
    },
}
SUBJECT_MAX = 200  # before the task key; Zoho's Subject holds 255 characters


def task_key(fingerprint: str) -> str:
    """The CRM task's unique key: the same for every severity and occurrence of one alert."""
    return "alert-" + hashlib.sha256(fingerprint.encode()).hexdigest()[:16]


def idempotency_key(alert: Alert, channel: str) -> str:
    """A delivery's key for receivers to dedupe on: stable across resends of one occurrence."""
    parts = (alert.fingerprint, channel, alert.severity, alert.opened_at.isoformat())
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:40]


def languages(language: str) -> tuple[str, ...]:
    return ("zh", "en") if language == "both" else (language,)


def title(alert: Alert, lang: str) -> str:
    return tr(CATALOG, "title", lang, severity=label(alert.severity, lang), rule=label(alert.rule, lang))


def _facts(alert: Alert, lang: str, tz: Any) -> list[str]:
    agent = alert.agent_name or alert.agent_id or "-"
    if alert.agent_name and alert.agent_id:
        agent = f"{alert.agent_name} ({alert.agent_id})"
    return [
        tr(CATALOG, "agent", lang, agent=agent),
        tr(CATALOG, "record", lang, entity=label(alert.entity, lang), entity_id=alert.entity_id),
        tr(CATALOG, "opened", lang, opened=f"{alert.opened_at.astimezone(tz):%Y-%m-%d %H:%M}"),
    ]


def plain_text(alert: Alert, language: str, tz: Any) -> str:
    """Title, message and facts, one block per language."""
    blocks = [
        "\n".join([title(alert, lang), alert.message(lang), *_facts(alert, lang, tz)])
        for lang in languages(language)
    ]
    return "\n\n".join(blocks)


def markdown(alert: Alert, language: str, tz: Any) -> str:
    """The group-robot text: a bold title, the message, the facts quoted."""
    blocks = [
        "\n".join(
            [f"**{title(alert, lang)}**", alert.message(lang), *(f"> {f}" for f in _facts(alert, lang, tz))]
        )
        for lang in languages(language)
    ]
    return "\n\n".join(blocks)


def webhook_payload(alert: Alert, fmt: str, language: str, tz: Any, key: str) -> dict[str, Any]:
    """The JSON body for a webhook of format ``generic``, ``wecom`` or ``dingtalk``.

    Robot formats follow the robots' documented markdown message; ``idempotency_key`` rides along
    in every body (robots ignore it; receivers of the generic format dedupe on it).
    """
    if fmt == "wecom":
        return {
            "msgtype": "markdown",
            "markdown": {"content": markdown(alert, language, tz)},
            "idempotency_key": key,
        }
    if fmt == "dingtalk":
        heading = title(alert, languages(language)[0])
        return {
            "msgtype": "markdown",
            "markdown": {"title": heading, "text": markdown(alert, language, tz)},
            "idempotency_key": key,
        }
    return {
        "idempotency_key": key,
        "fingerprint": alert.fingerprint,
        "rule": alert.rule,
        "severity": alert.severity,
        "source": alert.source,
        "agent_id": alert.agent_id,
        "agent_name": alert.agent_name,
        "entity": alert.entity,
        "entity_id": alert.entity_id,
        "opened_at": alert.opened_at.isoformat(),
        "details": alert.details,
        "text": plain_text(alert, language, tz),
        "messages": {lang: alert.message(lang) for lang in ("zh", "en")},
    }


def task_fields(
    layout: TaskLayout, alert: Alert, language: str, tz: Any, *, due: Any, owner: Any
) -> dict[str, Any]:
    """The task record (open), by the layout's field names; ``due``/``owner`` already in CRM form."""
    lang = languages(language)[0]
    subject = f"{title(alert, lang)} {alert.message(lang)}"
    if len(subject) > SUBJECT_MAX:
        subject = subject[: SUBJECT_MAX - 1] + "…"
    key = task_key(alert.fingerprint)
    record: dict[str, Any] = dict(layout.constants)
    if layout.key_field:
        record[layout.key_field] = key
    else:
        subject += f" [{key}]"
    record[layout.subject] = subject
    footer = "\n".join(
        tr(CATALOG, "footer", each, fingerprint=alert.fingerprint) for each in languages(language)
    )
    optional = {
        layout.owner: owner,
        layout.due: due,
        layout.description: f"{plain_text(alert, language, tz)}\n\n{footer}",
        layout.status: layout.open_status,
        layout.priority: layout.priorities.get(alert.severity),
    }
    record.update({name: value for name, value in optional.items() if name and value is not None})
    return record


def closing_fields(layout: TaskLayout) -> dict[str, Any] | None:
    """The update that closes a task, or None when the layout has no status field."""
    return {layout.status: layout.closed_status} if layout.status else None
