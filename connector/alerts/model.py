"""What an alert is: a rule's finding about one subject, and the stored row that tracks it over time.

A :class:`Finding` is what a rule says is true *now* ("complaint T-7 has had no first response for
25 h: breach"). An :class:`Alert` is the ``alerts`` row that follows one finding's subject from the
moment it first appears until it clears.

The fingerprint names the subject, not the severity: ``rule + source + entity + entity_id`` (plus the
period for per-period rules). So a warning that becomes a breach escalates the *same* row, and the
delivery layer, whose ``alert_deliveries`` key includes severity, still sends the breach on its own.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from connector.alerts.messages import render
from connector.alerts.settings import AlertSettings

if TYPE_CHECKING:
    from connector.calendar import BusinessCalendar
    from connector.metrics.settings import ScorecardSettings

#: Severity order for escalation: a stored alert never moves down this list while it stays open.
SEVERITY_RANK = {"info": 0, "warning": 1, "breach": 2}


def fingerprint(rule: str, source: str, entity: str, entity_id: str, period: str | None = None) -> str:
    """Stable id of an alert's subject: the rule name for readability, then a hash of the rest."""
    parts = [rule, source, entity, entity_id] + ([period] if period is not None else [])
    digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:40]
    return f"{rule}:{digest}"


@dataclass(frozen=True)
class Finding:
    """One subject a rule finds in alert now, with the values its message needs."""

    rule: str
    severity: str
    source: str
    agent_id: str | None
    entity: str
    entity_id: str
    details: dict[str, Any] = field(default_factory=dict)
    period: str | None = None

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.rule, self.source, self.entity, self.entity_id, self.period)

    def message(self, lang: str = "en", severity: str | None = None) -> str:
        return render(self.rule, severity or self.severity, self.entity, self.details, lang)


@dataclass(frozen=True)
class Alert:
    """A row of the ``alerts`` table (``agent_name`` joined from ``agents`` for display)."""

    fingerprint: str
    rule: str
    severity: str
    source: str
    agent_id: str | None
    entity: str
    entity_id: str
    details: dict[str, Any]
    opened_at: datetime
    updated_at: datetime
    resolved_at: datetime | None
    agent_name: str | None = None

    def message(self, lang: str) -> str:
        """The alert's text in ``lang``; the stored ``message`` column is the English one."""
        return render(self.rule, self.severity, self.entity, self.details, lang)

    def as_json(self, lang: str) -> dict[str, Any]:
        return {
            "fingerprint": self.fingerprint,
            "rule": self.rule,
            "severity": self.severity,
            "source": self.source,
            "agent_id": self.agent_id,
            "agent_name": self.agent_name,
            "entity": self.entity,
            "entity_id": self.entity_id,
            "opened_at": self.opened_at.isoformat(),
            "message": self.message(lang),
        }


@dataclass(frozen=True)
class EvaluationResult:
    """What one evaluation changed. Re-opened alerts count as ``opened``: they are new occurrences."""

    opened: list[Alert]
    escalated: list[Alert]
    resolved: list[Alert]
    open_alerts: list[Alert]


@dataclass(frozen=True)
class RuleContext:
    """Everything a rule may consult besides the store; ``now`` is injected, never read from a clock."""

    settings: AlertSettings
    scorecard: ScorecardSettings
    calendar: BusinessCalendar
    tz: ZoneInfo
    now: datetime

    def local(self, moment: datetime) -> str:
        """An instant as staff read it: clinic-local, to the minute."""
        return f"{moment.astimezone(self.tz):%Y-%m-%d %H:%M}"
