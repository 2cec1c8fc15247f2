"""Push against the Zoho sandbox (127.0.0.1): batches of 100, diff-only, dry run, 207 retries.

The sandbox's counters count every request per endpoint, so "zero write calls" is measured where the
CRM would see it. Scorecards are written into the store directly; what matters here is what reaches
the CRM and what ``push_log`` remembers.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from test_push_support import (
    NOW,
    Clock,
    agent_ids,
    card_row,
    months,
    sandbox,
    set_composite,
    store_cards,
    write_config,
)

from connector import jobs
from connector.cli import main
from connector.jobs import JobEnv
from connector.push import run_push
from connector.sandbox import RunningSandbox
from connector.store import Store, open_store
from connector.store.schema import push_log, sync_runs

UPSERT = "POST /crm/v8/Agent_Performance/upsert"
WRITES = (UPSERT, "POST /crm/v8/Agent_Performance", "PUT /crm/v8/Agent_Performance")


@pytest.fixture
def zoho() -> Iterator[RunningSandbox]:
    with sandbox("zoho") as running:
        yield running


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    opened = open_store(db_url)
    yield opened
    opened.dispose()


def write_calls(box: RunningSandbox) -> int:
    return sum(box.counters.count(endpoint) for endpoint in WRITES)


def year_of_cards(store: Store) -> list[str]:
    """13 months × 12 agents = 156 scorecards; returns the agents' Zoho user ids."""
    ids = agent_ids("zoho")
    store_cards(store, [card_row("zo", a, m, 70 + i) for i, a in enumerate(ids) for m in months(13)])
    return ids


def written(box: RunningSandbox) -> dict[str, dict]:
    return {r["Name"]: r for r in box.app.written_records("Agent_Performance")}


def test_first_push_writes_everything_in_the_fewest_upserts_then_nothing(
    tmp_path: Path, zoho: RunningSandbox, store: Store, db_url: str
) -> None:
    config = write_config(tmp_path, db_url, {"zo": zoho})
    ids = year_of_cards(store)

    first = run_push(store, config, clock=Clock())

    assert first.ok and first.counts()["written"] == 156
    assert zoho.counters.count(UPSERT) == math.ceil(156 / 100) == 2
    records = written(zoho)
    assert len(records) == 156
    record = records[f"{ids[2]}_2026-10"]
    assert record["Agent"]["id"] == ids[2] and record["Owner"]["id"] == ids[2]
    assert record["Period"] == "2026-10" and record["Composite_Score"] == 72.0
    assert record["Bonus_Tier"] == "0%" and record["Satisfaction_Rate"] == 80.0 and record["Rank"] == 1
    with store.connect() as conn:
        results = conn.execute(
            sa.select(push_log.c.result, sa.func.count()).group_by(push_log.c.result)
        ).all()
    assert results == [("success", 156)]

    calls_before = sum(zoho.counters.calls().values())
    second = run_push(store, config, clock=Clock())

    assert second.ok and second.counts() == {
        "planned": 0,
        "unchanged": 156,
        "written": 0,
        "failed": 0,
        "failed_targets": 0,
        "api_calls": 0,
    }
    assert sum(zoho.counters.calls().values()) == calls_before  # not a single call, not even a token


def test_one_changed_agent_writes_exactly_one_record(
    tmp_path: Path, zoho: RunningSandbox, store: Store, db_url: str
) -> None:
    config = write_config(tmp_path, db_url, {"zo": zoho})
    ids = year_of_cards(store)
    run_push(store, config, clock=Clock())
    set_composite(store, "zo", ids[5], "2026-10", 91.25)

    report = run_push(store, config, clock=Clock())

    assert zoho.counters.count(UPSERT) == 3  # two for the first push, one now
    (target,) = report.targets
    assert [r.record_key for r in target.plan.records] == [f"{ids[5]}_2026-10"]
    # rounded to the field map's one digit (91.25 → 91.2, round half to even); nothing else changed
    assert target.plan.records[0].changes() == [("Composite_Score", 75.0, 91.2)]
    assert target.plan.unchanged == 155
    record = written(zoho)[f"{ids[5]}_2026-10"]
    assert record["Composite_Score"] == 91.2 and record["Period"] == "2026-10"
    assert len(written(zoho)) == 156  # updated in place: the upsert matched Name


def test_dry_run_prints_the_plan_and_makes_no_call(
    tmp_path: Path, zoho: RunningSandbox, store: Store, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_config(tmp_path, db_url, {"zo": zoho})
    ids = year_of_cards(store)
    run_push(store, config, clock=Clock())
    set_composite(store, "zo", ids[0], "2026-09", 88.0)
    calls_before = sum(zoho.counters.calls().values())
    monkeypatch.setenv("CRM_CONNECTOR_NOW", NOW.isoformat())

    runner = CliRunner()
    human = runner.invoke(main, ["--config", str(config.path), "--lang", "en", "push", "--dry-run"])
    as_json = runner.invoke(main, ["--config", str(config.path), "--json", "push", "--dry-run"])

    assert human.exit_code == 0, human.output
    assert "Dry run (nothing written): zo → Agent_Performance: 1 to write, 155 unchanged" in human.output
    assert f"{ids[0]}_2026-09" in human.output and "Composite_Score" in human.output
    assert "70.0" in human.output and "88.0" in human.output
    plan = json.loads(as_json.output)
    assert plan["dry_run"] is True
    assert plan["targets"][0]["planned"] == [
        {
            "record_key": f"{ids[0]}_2026-09",
            "agent_id": ids[0],
            "period": "2026-09",
            "new": False,
            "changes": [{"field": "Composite_Score", "old": 70.0, "new": 88.0}],
        }
    ]
    assert sum(zoho.counters.calls().values()) == calls_before  # no write, no token, no read
    assert write_calls(zoho) == 2


def test_a_207_reports_the_invalid_records_and_retries_only_them(
    tmp_path: Path, zoho: RunningSandbox, store: Store, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_config(tmp_path, db_url, {"zo": zoho})
    ids = agent_ids("zoho")
    good = [card_row("zo", a, "2026-10", 80) for a in ids]
    bad = [card_row("zo", "4040404", "2026-10", 60), card_row("zo", "4040405", "2026-10", 61)]
    store_cards(store, good + bad)
    monkeypatch.setenv("CRM_CONNECTOR_NOW", NOW.isoformat())

    first = CliRunner().invoke(main, ["--config", str(config.path), "--lang", "en", "push"])

    assert first.exit_code == 1, first.output
    assert zoho.counters.statuses()[UPSERT] == {207: 1}
    assert "zo → Agent_Performance: 12 written (12 new, 0 updated), 2 failed" in first.output
    assert "4040404_2026-10" in first.output and "INVALID_DATA" in first.output
    assert "the id given seems to be invalid" in first.output  # the CRM's own reason
    with store.connect() as conn:
        failed = conn.execute(
            sa.select(push_log.c.record_key, push_log.c.result).where(push_log.c.result != "success")
        ).all()
    assert sorted(failed) == [("4040404_2026-10", "INVALID_DATA"), ("4040405_2026-10", "INVALID_DATA")]

    second = run_push(store, config, clock=Clock())

    (target,) = second.targets
    assert [r.record_key for r in target.plan.records] == ["4040404_2026-10", "4040405_2026-10"]
    assert target.plan.unchanged == 12
    assert zoho.counters.statuses()[UPSERT] == {207: 1, 400: 1}  # one call, only the two: both refused
    assert [result.code for _, result in target.failures] == ["INVALID_DATA", "INVALID_DATA"]
    assert len(written(zoho)) == 12


def test_records_of_a_fixed_failure_are_written_once_it_is_fixed(
    tmp_path: Path, zoho: RunningSandbox, store: Store, db_url: str
) -> None:
    """A record stays planned until a write of its current values succeeds, then never again."""
    config = write_config(tmp_path, db_url, {"zo": zoho})
    ids = agent_ids("zoho")
    store_cards(store, [card_row("zo", ids[0], "2026-10", 80), card_row("zo", "4040404", "2026-10", 60)])
    assert run_push(store, config, clock=Clock()).counts()["failed"] == 1
    with store.begin() as conn:  # the admin fixes the agent (here: the scorecard now names a real user)
        conn.execute(sa.text("update scorecards set agent_id = :a where agent_id = '4040404'"), {"a": ids[1]})

    fixed = run_push(store, config, clock=Clock())
    again = run_push(store, config, clock=Clock())

    assert fixed.ok and [r.record_key for r in fixed.targets[0].plan.records] == [f"{ids[1]}_2026-10"]
    assert again.counts()["planned"] == 0
    assert zoho.counters.count(UPSERT) == 2


def test_a_stop_during_a_retry_wait_ends_the_push_stopped_with_everything_still_planned(
    tmp_path: Path, zoho: RunningSandbox, store: Store, db_url: str
) -> None:
    config = write_config(tmp_path, db_url, {"zo": zoho})
    year_of_cards(store)
    zoho.faults.configure({"rate_limit_burst": 1})  # the first upsert is answered 429
    env = JobEnv(config=config, store=store, clock=Clock())

    def sigterm_while_waiting(seconds: float) -> None:
        env.stop.request()
        env.stop.sleep(seconds)  # what a job's stop-aware sleep does when the stop comes in

    env.sleep = sigterm_while_waiting
    outcome = jobs.push(env)

    assert outcome.status == "stopped" and outcome.error is None
    assert zoho.counters.statuses()[UPSERT] == {429: 1}  # not retried, no further batch
    with store.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(push_log)).scalar() == 0
        status = conn.execute(sa.select(sync_runs.c.status).where(sync_runs.c.job == "push")).scalar()
    assert status == "stopped"
    after = run_push(store, config, clock=Clock())
    assert after.ok and after.counts()["written"] == 156
