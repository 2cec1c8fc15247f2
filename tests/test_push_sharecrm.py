"""Push against the ShareCRM sandbox (127.0.0.1): upsert by key fields, diff-only, dry run, and an
agent merged across both CRMs getting the same scorecard in each.

ShareCRM writes one record per call (sharecrm.md §3.4), so "the fewest calls" is one key query plus
one create or update per changed record, and nothing at all for unchanged ones.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from test_push_support import (
    Clock,
    agent_ids,
    card_row,
    months,
    sandbox,
    set_composite,
    store_agent,
    store_cards,
    write_config,
)

from connector.push import run_push
from connector.sandbox import RunningSandbox
from connector.store import Store, open_store

QUERY = "POST /cgi/crm/custom/v2/data/query"
CREATE = "POST /cgi/crm/custom/v2/data/create"
UPDATE = "POST /cgi/crm/custom/v2/data/update"


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    opened = open_store(db_url)
    yield opened
    opened.dispose()


def perf_records(box: RunningSandbox) -> dict[str, dict]:
    return {r["name"]: r for r in box.app.written["object_perf__c"].values()}


def test_sharecrm_push_upserts_by_key_fields_then_writes_only_changes(
    tmp_path: Path, store: Store, db_url: str
) -> None:
    with sandbox("sharecrm") as fx:
        config = write_config(tmp_path, db_url, {"fx": fx})
        ids = agent_ids("sharecrm")
        store_cards(store, [card_row("fx", a, m, 80 + i) for i, a in enumerate(ids) for m in months(2)])

        first = run_push(store, config, clock=Clock())

        assert first.ok and first.counts()["written"] == 24
        assert fx.counters.count(CREATE) == 24 and fx.counters.count(QUERY) == 24
        record = perf_records(fx)[f"{ids[1]}_2026-10"]
        assert record["field_employee__c"] == [ids[1]] and record["owner"] == [ids[1]]  # employee lists
        assert record["field_period__c"] == "2026-10"
        assert record["field_score__c"] == "81.0" and record["field_rank__c"] == "1"  # numbers as strings
        assert record["field_satisfaction_rate__c"] == "80.0"

        calls = sum(fx.counters.calls().values())
        assert run_push(store, config, clock=Clock()).counts()["planned"] == 0
        assert sum(fx.counters.calls().values()) == calls  # nothing changed: zero calls

        set_composite(store, "fx", ids[4], "2026-09", 55.5)
        dry = run_push(store, config, clock=Clock(), dry_run=True)
        assert sum(fx.counters.calls().values()) == calls  # a dry run calls nothing either
        assert [r.record_key for r in dry.targets[0].plan.records] == [f"{ids[4]}_2026-09"]

        one = run_push(store, config, clock=Clock())

        assert one.ok and one.targets[0].results[0].action == "update"
        assert fx.counters.count(UPDATE) == 1 and fx.counters.count(CREATE) == 24
        assert fx.counters.count(QUERY) == 25  # the key query that found the record to update
        assert perf_records(fx)[f"{ids[4]}_2026-09"]["field_score__c"] == "55.5"
        assert len(perf_records(fx)) == 24


def test_a_merged_agent_gets_the_same_scorecard_in_each_crm(
    tmp_path: Path, store: Store, db_url: str
) -> None:
    """One person, a user in both CRMs (same email): the scorecard keyed by one member reaches both,
    each CRM under its own user id; an agent of one CRM only is written there only."""
    with sandbox("zoho") as zo, sandbox("sharecrm") as fx:
        config = write_config(tmp_path, db_url, {"zo": zo, "fx": fx})
        zoho_id, fx_id, fx_only = agent_ids("zoho")[3], agent_ids("sharecrm")[3], agent_ids("sharecrm")[4]
        store_agent(store, "zo", zoho_id, "wang.fang@clinic.example.cn", "王芳")
        store_agent(store, "fx", fx_id, "Wang.Fang@clinic.example.cn ", "王芳")
        store_agent(store, "fx", fx_only, "li.na@clinic.example.cn", "李娜")
        # the metrics engine keys a merged agent by its first member: ("fx", …) sorts before ("zo", …)
        store_cards(store, [card_row("fx", fx_id, "2026-10", 92.0), card_row("fx", fx_only, "2026-10", 70.0)])

        report = run_push(store, config, clock=Clock())

        assert report.ok
        by_source = {t.plan.source: [r.record_key for r in t.plan.records] for t in report.targets}
        assert by_source == {
            "zo": [f"{zoho_id}_2026-10"],
            "fx": sorted([f"{fx_id}_2026-10", f"{fx_only}_2026-10"]),
        }
        zoho_record = zo.app.written_records("Agent_Performance")[0]
        assert zoho_record["Agent"]["id"] == zoho_id and zoho_record["Composite_Score"] == 92.0
        assert perf_records(fx)[f"{fx_id}_2026-10"]["field_score__c"] == "92.0"
