"""Alert delivery: open alerts to CRM tasks and webhooks, recorded so each is delivered once.

* :mod:`connector.delivery.settings` — the ``[delivery]`` config section.
* :mod:`connector.delivery.ledger` — ``alert_deliveries``: intent, outcome, back-off, failing list.
* :mod:`connector.delivery.content` — task fields and webhook bodies (generic, WeCom, DingTalk).
* :mod:`connector.delivery.webhook` — one POST with the idempotency key.
* :mod:`connector.delivery.crm_tasks` — alert tasks in Zoho and ShareCRM (create, update, find).
* :mod:`connector.delivery.run` — :func:`deliver_alerts`, and the guarantee it gives.
"""

from connector.delivery.ledger import FailingDelivery, failing_deliveries
from connector.delivery.run import DeliveryOutcome, DeliveryReport, deliver_alerts
from connector.delivery.settings import DeliverySettings

__all__ = [
    "DeliveryOutcome",
    "DeliveryReport",
    "DeliverySettings",
    "FailingDelivery",
    "deliver_alerts",
    "failing_deliveries",
]
