"""End to end: the real CLI syncs a ShareCRM sandbox (12,500 work orders: past the 10,000 offset cap)
into a store, the sandbox's clinic moves on (creates, edits, invalidations, hard deletes), an
incremental sync with an id scan follows, and the store must equal the sandbox record by record —
also with faults on and with invalidated rows hidden from queries (that run stores into PostgreSQL,
the first into SQLite). The sandbox's own counters prove that no endpoint ever got more calls in a
window than ShareCRM allows.

The first full sync runs under ShareCRM's documented limit (100 calls per 20 s, limiter and sandbox
alike); later runs keep the 100 calls but in a 2 s window, which keeps the suite fast while
exercising the same arithmetic.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from adapters.sharecrm import ShareCrmAdapter, ShareCrmOptions
from connector.adapter import AdapterContext
from connector.cli import main
from connector.config.models import SourceConfig
from connector.sandbox import RunningSandbox, create_app, generate_clinic, start_sandbox
from connector.sandbox.sharecrm import sandbox_mapping
from connector.store.tokens import MemoryTokenCache

NOW = datetime(2026, 10, 31, 4, 0, tzinfo=UTC)
SIZE = {"agents": 20, "contacts": 2500, "tickets": 12_500, "follow_ups": 1200, "calls": 1200, "surveys": 300}
OBJECT_ENTITIES = ("contacts", "tickets", "follow_ups", "calls", "surveys")
QUERY = "POST /cgi/crm/v2/data/query"

pytestmark = pytest.mark.slow


def start(window_s: float, **app_options: Any) -> RunningSandbox:
    clinic = generate_clinic(11, SIZE, now=NOW)
    app = create_app("sharecrm", clinic, rate_limit_window_s=window_s, **app_options)
    return start_sandbox(app)


def write_config(folder: Path, sandbox: RunningSandbox, window_s: float, store_url: str) -> Path:
    creds = sandbox.app.credentials()
    (folder / "fx-mapping.toml").write_text(sandbox_mapping(), encoding="utf-8")
    lines = [
        "[store]",
        f'url = "{store_url}"',
        "[clinic]",
        'timezone = "Asia/Shanghai"',
        'language = "en"',
        "[sources.fx]",
        'kind = "sharecrm"',
        'mapping = "fx-mapping.toml"',
        f'base_url = "{sandbox.base_url}"',
        f'app_id = "{creds["app_id"]}"',
        'app_secret = "${FX_APP_SECRET}"',
        f'permanent_code = "{creds["permanent_code"]}"',
        f'operator_mobile = "{creds["operator_mobile"]}"',
        f"rate_limit_window_s = {window_s}",
        "max_retry_wait_s = 120",
    ]
    path = folder / "connector.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def sync(config: Path, sandbox: RunningSandbox, monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """``crm-connector --json sync`` with the connector's clock pinned to the clinic's now."""
    monkeypatch.setenv("CRM_CONNECTOR_NOW", sandbox.clinic.now.isoformat())
    monkeypatch.setenv("FX_APP_SECRET", sandbox.app.credentials()["app_secret"])
    result = CliRunner().invoke(main, ["--config", str(config), "--json", "sync"], catch_exceptions=False)
    runs = json.loads(result.output)
    assert result.exit_code == 0, runs
    return runs


def stored(store_url: str, entity: str) -> dict[str, tuple[datetime, datetime | None]]:
    engine = sa.create_engine(store_url)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text(f"select external_id, updated_at, deleted_at from {entity} where source = 'fx'")
        )
        out = {r[0]: (_utc(r[1]), _utc(r[2]) if r[2] else None) for r in rows}
    engine.dispose()
    return out


def quarantined(store_url: str) -> set[str]:
    engine = sa.create_engine(store_url)
    with engine.connect() as conn:
        ids = {r[0] for r in conn.execute(sa.text("select external_id from quarantine where source = 'fx'"))}
    engine.dispose()
    return ids


def _utc(value: Any) -> datetime:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def assert_store_equals_sandbox(
    store_url: str, sandbox: RunningSandbox, *, invalid_visible: bool, skip: set[str] = frozenset()
) -> None:
    """Live records: same ids and updated_at, not deleted. Invalidated: marked deleted (and, when
    queries show them, with the invalidation as updated_at). Hard-deleted: absent or marked."""
    for entity in OBJECT_ENTITIES:
        truth, store = sandbox.truth(entity), stored(store_url, entity)
        assert set(store) <= set(truth), f"{entity}: ids the sandbox never had"
        for record_id, row in truth.items():
            if record_id in skip:
                continue
            have = store.get(record_id)
            if row.deleted is None:
                assert have == (row.modified, None), f"{entity} {record_id}: {have} != {row.modified}"
            elif row.deleted == "soft" and invalid_visible:
                assert have == (row.modified, row.modified), f"{entity} {record_id} invalidated: {have}"
            else:
                assert have is None or have[1] is not None, f"{entity} {record_id} deleted but live in store"
    agents = sandbox.truth("agents")
    assert set(stored(store_url, "agents")) == set(agents)


def advance(sandbox: RunningSandbox, seed: int) -> dict[str, dict[str, int]]:
    summary = sandbox.advance(timedelta(hours=25), rng_seed=seed, change_share=0.02)
    counts = summary.counts()
    assert all(
        c["soft_deleted"] and c["hard_deleted"] and c["created"] and c["modified"] for c in counts.values()
    )
    return counts


def by_entity(runs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {run["entity"]: run for run in runs}


def test_full_then_incremental_sync_with_id_scan_equals_the_sandbox(
    tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with start(20.0) as sandbox:
        # The first, full sync runs under ShareCRM's documented limit: 100 calls per 20 s.
        config = write_config(tmp_path, sandbox, 20.0, sqlite_url)
        first = by_entity(sync(config, sandbox, monkeypatch))
        assert first["tickets"]["fetched"] == 12_500 and first["tickets"]["inserted"] == 12_500
        assert first["tickets"]["api_calls"] == 12_500 // 100 + 1  # the pages and the empty last one
        assert sandbox.counters.count(QUERY) > 100
        assert sandbox.counters.max_in_window(20.0)[QUERY] == 100  # the limiter used the window, no more
        assert_store_equals_sandbox(sqlite_url, sandbox, invalid_visible=True)

        # The rest under the same 100 calls in a 2 s window, to keep the suite fast.
        sandbox.app.rate_limit_window_s = 2.0
        sandbox.counters.reset()
        config = write_config(tmp_path, sandbox, 2.0, sqlite_url)
        changes = advance(sandbox, seed=5)
        second = by_entity(sync(config, sandbox, monkeypatch))
        assert_store_equals_sandbox(sqlite_url, sandbox, invalid_visible=True)
        tickets = second["tickets"]
        # incremental: the changes (and what the overlap re-reads), then one id scan of every id
        assert tickets["fetched"] < sum(changes["tickets"].values()) + 50
        assert tickets["deleted"] >= changes["tickets"]["hard_deleted"]
        scan_pages = (12_500 + changes["tickets"]["created"]) // 100 + 1
        assert tickets["api_calls"] <= scan_pages + tickets["fetched"] // 100 + 1
        assert max(sandbox.counters.max_in_window(2.0).values()) <= 100

        third = by_entity(sync(config, sandbox, monkeypatch))  # nothing changed and no scan due
        assert third["tickets"]["fetched"] <= 50 and third["tickets"]["api_calls"] == 1
        state = sandbox.state()
        assert state["max_offset"] == 0  # never paged by offset
        assert state["rejected"] == {}  # never refused: no 30004, no 20016, no bad request


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)  # SQLite has the test above
def test_with_faults_and_invalidated_rows_hidden_the_store_still_equals_the_sandbox(
    tmp_path: Path, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with start(2.0, invalid_visible=False) as sandbox:
        malformed = {"share": 0.002, "kind": "bad_picklist"}
        sandbox.faults.configure({"rate_limit_burst": 1, "expire_tokens": 40, "malformed": malformed})
        config = write_config(tmp_path, sandbox, 2.0, db_url)
        sync(config, sandbox, monkeypatch)
        advance(sandbox, seed=9)
        sandbox.faults.configure({"drop_connection": 1, "server_error": 1, "expire_tokens": 60})
        sync(config, sandbox, monkeypatch)

        broken = {
            record_id
            for entity in OBJECT_ENTITIES
            for record_id, row in sandbox.truth(entity).items()
            if row.deleted is None and sandbox.faults.malformation(record_id)
        }
        assert broken and broken <= quarantined(db_url)
        assert_store_equals_sandbox(db_url, sandbox, invalid_visible=False, skip=broken)
        fired = sandbox.faults.snapshot()["fired"]
        assert fired == {
            "drop_connection": 1,
            "rate_limit_burst": 1,
            "server_error": 1,
            "expire_tokens": 2,
        }
        state = sandbox.state()
        assert state["tokens_issued"] == 3 and state["rejected"] == {"20016": 2}
        assert max(sandbox.counters.max_in_window(2.0).values()) <= 100
        assert state["max_offset"] == 0


def test_write_back_upserts_scorecards_and_creates_alert_tasks_once(tmp_path: Path) -> None:
    clinic = generate_clinic(4, "small", now=NOW)
    waits: list[float] = []
    with start_sandbox(create_app("sharecrm", clinic)) as sandbox:
        creds = sandbox.app.credentials()
        options = ShareCrmOptions(
            base_url=sandbox.base_url,
            app_id=creds["app_id"],
            app_secret=creds["app_secret"],
            permanent_code=creds["permanent_code"],
            operator_open_user_id=creds["operator_open_user_id"],
        )
        context = AdapterContext(
            name="fx",
            config=SourceConfig(name="fx", kind="sharecrm", options=options),
            base_dir=tmp_path,
            mappings={},
            tokens=MemoryTokenCache(),
            clock=lambda: clinic.now,
            sleep=waits.append,  # retry waits are recorded, not slept
        )
        adapter = ShareCrmAdapter(context)
        agents = list(sandbox.truth("agents"))[:3]
        cards = [
            {"field_employee__c": a, "field_period__c": "2026-10", "field_score__c": 80 + i}
            for i, a in enumerate(agents)
        ]
        first = adapter.push("object_perf__c", cards)
        assert [r.action for r in first] == ["insert"] * 3 and all(r.ok and r.remote_id for r in first)
        sandbox.faults.configure({"drop_connection": 1})  # the first lookup of the second push is lost
        second = adapter.push("object_perf__c", [{**card, "field_score__c": 95.5} for card in cards])
        assert [r.action for r in second] == ["update"] * 3
        assert [r.remote_id for r in second] == [r.remote_id for r in first]
        written = sandbox.app.written["object_perf__c"]
        assert len(written) == 3 and {w["field_score__c"] for w in written.values()} == {"95.5"}
        assert sandbox.counters.events() == {}  # triggerWorkFlow false: no workflow ran

        sandbox.faults.configure({"drop_connection": 1})  # the create itself is lost on the way
        task = {"name": "投诉超时预警", "owner": agents[0], "field_fingerprint__c": "fp-42"}
        (result,) = adapter.create_records("object_alert__c", [task], key_fields=["field_fingerprint__c"])
        assert result.ok and len(sandbox.app.written["object_alert__c"]) == 1


def test_a_spent_daily_quota_stops_the_source_until_the_reset_then_resumes(
    tmp_path: Path, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ShareCRM's errorCode 30002 mid-sync: the entity in flight is recorded stopped with the reset
    time (00:00 Beijing), the source's other entities are not begun, the command still exits 0 and
    nothing counts as a failure; the next day's sync completes and the store equals the sandbox."""
    size = {"agents": 5, "contacts": 250, "tickets": 450, "follow_ups": 40, "calls": 40, "surveys": 10}
    clinic = generate_clinic(7, size, now=NOW)
    with start_sandbox(create_app("sharecrm", clinic, rate_limit_window_s=2.0, daily_quota=8)) as sandbox:
        config = write_config(tmp_path, sandbox, 2.0, sqlite_url)
        first = by_entity(sync(config, sandbox, monkeypatch))
        assert [(e, run["status"]) for e, run in first.items()] == [
            ("agents", "success"),
            ("contacts", "success"),
            ("tickets", "stopped"),  # follow_ups, calls and surveys were not begun
        ]
        tickets = first["tickets"]
        assert "30002" in tickets["error"] and tickets["resumes_at"] == "2026-10-31T16:00:00+00:00"
        assert 0 < len(stored(sqlite_url, "tickets")) == tickets["fetched"] < 450  # kept what it got

        monkeypatch.setenv("CRM_CONNECTOR_NOW", sandbox.clinic.now.isoformat())
        status = CliRunner().invoke(main, ["--config", str(config), "--json", "status"])
        assert status.exit_code == 0, status.output
        assert json.loads(status.output)["failing"] == []  # a spent quota is no failure

        sandbox.app.daily_quota = 100  # past midnight, with quota to spare
        sandbox.advance(timedelta(hours=24), rng_seed=3, change_share=0.0)
        second = by_entity(sync(config, sandbox, monkeypatch))
        assert {run["status"] for run in second.values()} == {"success"}
        assert second["tickets"]["fetched"] == 450 - tickets["fetched"]  # resumed, not restarted
        assert_store_equals_sandbox(sqlite_url, sandbox, invalid_visible=False)
