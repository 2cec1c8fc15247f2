"""Alerts: instant feedback when a complaint nears or passes its SLA, a follow-up is overdue, a patient
gives a low score, or an agent's month-to-date composite drops below a threshold.

Rules (:mod:`connector.alerts.rules`) say what is in alert now; evaluation
(:mod:`connector.alerts.evaluate`) keeps one ``alerts`` row per subject, identified by a stable
fingerprint, opening, escalating, resolving and re-opening it as the data changes. Delivery to the
CRM or a webhook reads those rows and is not done here.
"""

from connector.alerts.evaluate import evaluate_alerts, open_alerts
from connector.alerts.job import run_alerts
from connector.alerts.messages import label
from connector.alerts.model import Alert, EvaluationResult, Finding, RuleContext, fingerprint
from connector.alerts.rules import RULE_NAMES
from connector.alerts.settings import AlertSettings

__all__ = [
    "RULE_NAMES",
    "Alert",
    "AlertSettings",
    "EvaluationResult",
    "Finding",
    "RuleContext",
    "evaluate_alerts",
    "fingerprint",
    "label",
    "open_alerts",
    "run_alerts",
]
