"""The ``low_composite`` rule: an agent's month-to-date composite score below ``threshold``.

The score is the metrics engine's own (:func:`connector.metrics.compute_scorecards` for the current
month in the clinic's zone, judged as of ``now``), so the alert and the scorecard never disagree.
Agents whose composite is null (no data yet) do not alert. The fingerprint includes the month: each
month is its own alert, and last month's closes when the month is over. Before ``from_day`` of a
month the rule finds nothing, because a score built on a few days of data is mostly noise.
"""

from __future__ import annotations

from collections.abc import Iterator

import sqlalchemy as sa

from connector.alerts.model import Finding, RuleContext
from connector.metrics import compute_scorecards, current_period


def low_composite(conn: sa.Connection, context: RuleContext) -> Iterator[Finding]:
    rule = context.settings.low_composite
    if not context.settings.is_on("low_composite") or context.now.astimezone(context.tz).day < rule.from_day:
        return
    month = current_period(context.now, "month", context.tz)
    cards = compute_scorecards(
        conn, context.scorecard, context.calendar, context.tz, month, as_of=context.now
    )
    for card in cards:
        if card.composite is None or card.composite >= rule.threshold:
            continue
        yield Finding(
            rule="low_composite",
            severity="warning",
            source=card.source,
            agent_id=card.agent_id,
            entity="agents",
            entity_id=card.agent_id,
            period=month.label,
            details={"score": round(card.composite, 1), "threshold": rule.threshold, "period": month.label},
        )
