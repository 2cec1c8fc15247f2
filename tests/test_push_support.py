"""Builders shared by the push and delivery tests: sandbox CRMs on 127.0.0.1, a config pointing at
them, and scorecard / alert rows written straight into the store (the tests are about what reaches
the CRM, not about how the numbers were computed)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from connector.alerts import fingerprint
from connector.config import Config, load_config
from connector.metrics import parse_period
from connector.sandbox import RunningSandbox, create_app, generate_clinic, start_sandbox
from connector.sandbox.sharecrm import open_user_id
from connector.sandbox.zoho import zoho_id
from connector.store import Store
from connector.store.schema import agents, alerts, scorecards

NOW = datetime(2026, 10, 31, 4, 0, tzinfo=UTC)  # 12:00 in Shanghai
SIZE = {"agents": 12, "contacts": 20, "tickets": 10, "follow_ups": 10, "calls": 10, "surveys": 5}
SEEDS = {"zoho": 7, "sharecrm": 11}
_TZ = ZoneInfo("Asia/Shanghai")


@contextmanager
def sandbox(crm: str, now: datetime = NOW) -> Iterator[RunningSandbox]:
    """A small clinic served by the ``crm`` emulation; its clock is the connector's ``now``."""
    with start_sandbox(create_app(crm, generate_clinic(SEEDS[crm], SIZE, now=now))) as running:
        yield running


def agent_ids(crm: str, count: int = SIZE["agents"]) -> list[str]:
    """The CRM's own user ids of the clinic's first ``count`` agents (what owner_id holds)."""
    if crm == "zoho":
        return [zoho_id("users", key) for key in range(count)]
    return [open_user_id(key) for key in range(count)]


def write_config(
    folder: Path, store_url: str, sandboxes: Mapping[str, RunningSandbox], extra: str = ""
) -> Config:
    """A config with one source per sandbox (named after it) and ``extra`` TOML appended."""
    parts = [f'[store]\nurl = "{store_url}"\n[clinic]\ntimezone = "Asia/Shanghai"\nlanguage = "en"\n']
    parts += [box.app.config_snippet(box.base_url, name) for name, box in sandboxes.items()]
    path = folder / "connector.toml"
    path.write_text("\n".join(parts) + "\n" + extra, encoding="utf-8")
    return load_config(path)


def card_row(source: str, agent_id: str, period: str, composite: float, **metrics: Any) -> dict[str, Any]:
    """A ``scorecards`` row with a few metrics; unlisted ones are null (no data)."""
    parsed = parse_period(period, _TZ)
    values = {"satisfaction_rate": 0.8, "tickets_handled": 12, "follow_ups_done": 3, **metrics}
    return {
        "source": source,
        "agent_id": agent_id,
        "period": period,
        "period_start": parsed.start_utc,
        "period_end": parsed.end_utc,
        "agent_name": f"agent {agent_id[-4:]}",
        "metrics": json.dumps(values, sort_keys=True),
        "quality": composite - 1,
        "efficiency": composite + 1,
        "knowledge": composite,
        "composite": composite,
        "bonus_pct": 20.0 if composite >= 90 else 10.0 if composite >= 80 else 0.0,
        "rank": 1,
        "trend": None,
        "missing": "[]",
        "computed_at": NOW,
    }


def store_cards(store: Store, rows: Iterable[dict[str, Any]]) -> int:
    rows = list(rows)
    with store.begin() as conn:
        conn.execute(sa.insert(scorecards), rows)
    return len(rows)


def set_composite(store: Store, source: str, agent_id: str, period: str, composite: float) -> None:
    with store.begin() as conn:
        conn.execute(
            sa.update(scorecards)
            .where(
                scorecards.c.source == source,
                scorecards.c.agent_id == agent_id,
                scorecards.c.period == period,
            )
            .values(composite=composite)
        )


def months(count: int, last: str = "2026-10") -> list[str]:
    """``count`` month labels ending with ``last``."""
    year, month = map(int, last.split("-"))
    labels = []
    for back in range(count):
        index = year * 12 + month - 1 - back
        labels.append(f"{index // 12}-{index % 12 + 1:02d}")
    return sorted(labels)


def store_agent(store: Store, source: str, external_id: str, email: str, name: str) -> None:
    with store.begin() as conn:
        conn.execute(
            sa.insert(agents).values(
                source=source,
                external_id=external_id,
                name=name,
                email=email,
                active=True,
                updated_at=NOW,
                synced_at=NOW,
                raw="{}",
            )
        )


def open_alert(
    store: Store,
    source: str,
    agent_id: str | None,
    entity_id: str,
    *,
    severity: str = "breach",
    opened_at: datetime = NOW,
) -> str:
    """An open follow_up_overdue alert row (as evaluation writes it); returns its fingerprint."""
    fp = fingerprint("follow_up_overdue", source, "follow_ups", entity_id)
    details = {"label": entity_id, "due": "2026-10-30 17:00"}
    with store.begin() as conn:
        conn.execute(
            sa.insert(alerts).values(
                fingerprint=fp,
                rule="follow_up_overdue",
                severity=severity,
                source=source,
                agent_id=agent_id,
                entity="follow_ups",
                entity_id=entity_id,
                message=f"Follow-up {entity_id} was due 2026-10-30 17:00 and is not done",
                details=json.dumps(details),
                opened_at=opened_at,
                updated_at=opened_at,
                resolved_at=None,
            )
        )
    return fp


def set_alert(store: Store, fp: str, **values: Any) -> None:
    with store.begin() as conn:
        conn.execute(sa.update(alerts).where(alerts.c.fingerprint == fp).values(**values))


class Clock:
    """A settable clock for runs at different moments (no sleeping)."""

    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)
