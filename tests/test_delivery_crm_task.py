"""Alert delivery as CRM tasks, against the Zoho and ShareCRM sandboxes on 127.0.0.1.

A task is assigned to the agent with a due date, updated in place when its alert escalates, closed
when the alert resolves — and created exactly once even when the connector dies between creating
it and recording that it did (the retry looks the task up by its key first).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from test_push_support import Clock, agent_ids, open_alert, sandbox, set_alert, write_config

from connector.config import load_config
from connector.delivery import deliver_alerts
from connector.delivery.content import task_key
from connector.delivery.ledger import Ledger
from connector.sandbox import RunningSandbox
from connector.store import Store, open_store
from connector.store.schema import alert_deliveries

ZOHO_CREATE = "POST /crm/v8/Tasks"
ZOHO_UPDATE = "PUT /crm/v8/Tasks"
FX_CREATE = "POST /cgi/crm/custom/v2/data/create"


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    opened = open_store(db_url)
    yield opened
    opened.dispose()


def zoho_tasks(box: RunningSandbox) -> list[dict[str, Any]]:
    return box.app.written_records("Tasks")


def states(store: Store) -> list[tuple[str, str, int, str | None]]:
    with store.connect() as conn:
        rows = conn.execute(
            sa.select(
                alert_deliveries.c.severity,
                alert_deliveries.c.state,
                alert_deliveries.c.attempts,
                alert_deliveries.c.remote_id,
            ).order_by(alert_deliveries.c.updated_at, alert_deliveries.c.severity)
        )
        return [tuple(row) for row in rows]


def crash_once_after_sending(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Make the first "sent" record raise, as if the process were killed right after the CRM call."""
    real_sent, crashes = Ledger.sent, []

    def sent(self: Ledger, key: Any, remote_id: str | None = None) -> None:
        if not crashes:
            crashes.append(remote_id)
            raise KeyboardInterrupt("killed")
        real_sent(self, key, remote_id)

    monkeypatch.setattr(Ledger, "sent", sent)
    return crashes


def test_zoho_task_assigned_escalated_in_place_and_closed(tmp_path: Path, db_url: str, store: Store) -> None:
    with sandbox("zoho") as zoho:
        config = write_config(tmp_path, db_url, {"zo": zoho}, "[delivery.crm_task]\ndue_in_days = 1\n")
        agent = agent_ids("zoho")[2]
        fp = open_alert(store, "zo", agent, "5725767000300000001", severity="warning")
        clock = Clock()

        deliver_alerts(store, config, clock=clock)

        (task,) = zoho_tasks(zoho)
        assert task["Owner"]["id"] == agent and task["Status"] == "Not Started"
        assert task["Due_Date"] == "2026-11-01"  # created 31 Oct (Shanghai), due a day later
        assert task["Priority"] == "Normal" and task["Alert_Source"] == "crm-connector"
        assert task["Subject"].startswith("[warning] follow-up overdue Follow-up 5725767000300000001")
        assert task["Subject"].endswith(f"[{task_key(fp)}]")
        assert "Follow-up 5725767000300000001 was due 2026-10-30 17:00" in task["Description"]
        assert states(store) == [("warning", "sent", 1, task["id"])]

        set_alert(store, fp, severity="breach")
        clock.advance(hours=1)
        deliver_alerts(store, config, clock=clock)

        (task,) = zoho_tasks(zoho)  # the same task, updated: one task per alert
        assert task["Priority"] == "High" and task["Subject"].startswith("[breach]")
        assert zoho.counters.count(ZOHO_CREATE) == 1 and zoho.counters.count(ZOHO_UPDATE) == 1

        set_alert(store, fp, resolved_at=clock.now)
        clock.advance(hours=1)
        report = deliver_alerts(store, config, clock=clock)

        (task,) = zoho_tasks(zoho)
        assert task["Status"] == "Completed"
        assert report.counts()["closed"] == 1
        assert {state for _, state, _, _ in states(store)} == {"closed"}
        assert deliver_alerts(store, config, clock=clock).outcomes == []  # closed once, left alone
        assert zoho.counters.count(ZOHO_UPDATE) == 2


def test_zoho_task_created_once_when_killed_between_create_and_record(
    tmp_path: Path, db_url: str, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    with sandbox("zoho") as zoho:
        config = write_config(tmp_path, db_url, {"zo": zoho})
        fp = open_alert(store, "zo", agent_ids("zoho")[1], "5725767000300000002")
        crashes = crash_once_after_sending(monkeypatch)
        clock = Clock()

        with pytest.raises(KeyboardInterrupt):
            deliver_alerts(store, config, clock=clock)
        assert len(zoho_tasks(zoho)) == 1 and states(store) == [("breach", "pending", 1, None)]

        clock.advance(minutes=15)
        (outcome,) = deliver_alerts(store, config, clock=clock).outcomes

        (task,) = zoho_tasks(zoho)  # found by its key and updated, not created again
        assert outcome.action == "sent" and outcome.remote_id == task["id"] == crashes[0]
        assert zoho.counters.count(ZOHO_CREATE) == 1 and zoho.counters.count(ZOHO_UPDATE) == 1
        assert states(store) == [("breach", "sent", 2, task["id"])]
        assert task["Subject"].endswith(f"[{task_key(fp)}]")


def test_zoho_task_killed_before_the_create_is_created_on_the_retry(
    tmp_path: Path, db_url: str, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The other side of the window: intent recorded, CRM never reached. The lookup finds nothing."""
    with sandbox("zoho") as zoho:
        config = write_config(tmp_path, db_url, {"zo": zoho})
        open_alert(store, "zo", agent_ids("zoho")[1], "5725767000300000003")
        Ledger(store, Clock()).begin((_fp(store), "crm_task", "breach"), fresh=True)  # then "died"

        (outcome,) = deliver_alerts(store, config, clock=Clock()).outcomes

        assert outcome.action == "sent" and len(zoho_tasks(zoho)) == 1
        assert zoho.counters.count(ZOHO_CREATE) == 1 and zoho.counters.count("GET /crm/v8/Tasks") >= 1


def test_sharecrm_task_created_once_and_closed(
    tmp_path: Path, db_url: str, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    with sandbox("sharecrm") as fx:
        config = write_config(tmp_path, db_url, {"fx": fx})
        agent = agent_ids("sharecrm")[5]
        fp = open_alert(store, "fx", agent, "66aa00bb11cc22dd33ee44ff")
        crash_once_after_sending(monkeypatch)
        clock = Clock()

        with pytest.raises(KeyboardInterrupt):
            deliver_alerts(store, config, clock=clock)
        clock.advance(minutes=15)
        deliver_alerts(store, config, clock=clock)

        (task,) = fx.app.written["object_alert__c"].values()
        assert fx.counters.count(FX_CREATE) == 1
        assert task["field_alert_key__c"] == task_key(fp) and task["owner"] == [agent]
        assert task["field_status__c"] == "open" and task["field_severity__c"] == "breach"
        assert task["field_due__c"] == _shanghai_midnight_ms(date(2026, 10, 31))
        assert task["name"].startswith("[breach] follow-up overdue")

        set_alert(store, fp, resolved_at=clock.now)
        deliver_alerts(store, config, clock=clock)

        assert task["field_status__c"] == "closed"
        assert {state for _, state, _, _ in states(store)} == {"closed"}


def test_tasks_go_only_to_crms_that_keep_them(tmp_path: Path, db_url: str, store: Store) -> None:
    """A jsonl source has no CRM to hold tasks: its alerts get no crm_task row at all."""
    (tmp_path / "data").mkdir()
    path = tmp_path / "connector.toml"
    path.write_text(f'[store]\nurl = "{db_url}"\n[sources.files]\nkind = "jsonl"\npath = "data"\n', "utf-8")
    open_alert(store, "files", "a1", "fu-1")
    report = deliver_alerts(store, load_config(path), clock=Clock())
    assert report.outcomes == [] and states(store) == []


def _fp(store: Store) -> str:
    with store.connect() as conn:
        return conn.execute(sa.text("select fingerprint from alerts")).scalar_one()


def _shanghai_midnight_ms(day: date) -> int:
    return int(
        datetime.combine(day, datetime.min.time(), tzinfo=ZoneInfo("Asia/Shanghai")).timestamp() * 1000
    )
