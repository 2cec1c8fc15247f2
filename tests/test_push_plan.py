"""The push plan without a CRM: field maps (bundled, extended, invalid), ``[push]`` settings, which
scorecards are planned, and the scheduled push step's ``sync_runs`` row."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from pydantic import ValidationError
from test_push_support import NOW, Clock, agent_ids, card_row, sandbox, store_cards

from connector.config import Config, ConfigError, load_config
from connector.jobs import JobEnv, run_step
from connector.push import PushSettings, run_push
from connector.push.fieldmap import PushMapError, load_write_map
from connector.store import Store, open_store
from connector.store.schema import sync_runs

ZOHO_SOURCE = """
[sources.zo]
kind = "zoho"
client_id = "1000.X"
client_secret = "s"
refresh_token = "r"
accounts_url = "http://127.0.0.1:9"
api_domain = "http://127.0.0.1:9"
"""
JSONL_SOURCE = '[sources.files]\nkind = "jsonl"\npath = "data"\n'


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    opened = open_store(db_url)
    yield opened
    opened.dispose()


def config_with(tmp_path: Path, store_url: str, text: str) -> Config:
    (tmp_path / "data").mkdir(exist_ok=True)
    path = tmp_path / "connector.toml"
    path.write_text(f'[store]\nurl = "{store_url}"\n{text}', encoding="utf-8")
    return load_config(path)


# ---- field maps --------------------------------------------------------------------------------


def test_field_map_renders_numbers_as_the_map_says() -> None:
    fields = load_write_map("zoho").scorecards
    canonical = {
        "record_key": "7_2026-10",
        "agent_id": "7",
        "period": "2026-10",
        "composite": 84.449,
        "bonus_pct": 10.0,
        "rank": 3,
        "satisfaction_rate": 0.83333,
        "follow_ups_done": 4.0,
        "trend": None,
    }
    record = fields.render(canonical)
    assert record["Name"] == "7_2026-10" and record["Agent"] == {"id": "7"} and record["Period"] == "2026-10"
    assert record["Composite_Score"] == 84.4  # digits = 1
    assert record["Satisfaction_Rate"] == 83.3  # as = "percent"
    assert record["Bonus_Tier"] == "10%"  # as = "text", format "{:g}%"
    assert record["Rank"] == 3 and record["Follow_Ups_Done"] == 4  # as = "integer"
    assert record["Trend"] is None and record["Knowledge_Exam_Score"] is None  # no data: null


def test_an_override_extends_the_bundled_map_and_can_drop_fields(tmp_path: Path) -> None:
    override = tmp_path / "zoho-push.toml"
    override.write_text(
        'extends = "zoho"\n[scorecards.fields]\nTrend = ""\nComposite_Score = "composite"\n'
        'Avg_Stars = { value = "avg_satisfaction", digits = 2 }\n[tasks]\nobject = "Activities_X"\n',
        encoding="utf-8",
    )
    write_map = load_write_map("zoho", override)
    fields = write_map.scorecards.fields
    assert "Trend" not in fields and fields["Avg_Stars"].value == "avg_satisfaction"
    assert fields["Composite_Score"].digits == 2 and "Bonus_Tier" in fields  # the rest is kept
    assert write_map.tasks is not None and write_map.tasks.object == "Activities_X"
    assert write_map.tasks.subject == "Subject"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[scorecards.fields]\nScore = "composit"\n', "unknown scorecard value 'composit'"),
        ('[scorecards.fields]\nX = { value = "rank", as = "text", digits = 1, format = 3 }\n', "format"),
        ('[scorecards.fields]\nX = { value = "rank", as = "lookup" }\n', "applies to agent_id only"),
        ('extends = "nope"\n[scorecards.fields]\nX = "rank"\n', "no bundled push field map named 'nope'"),
        ("[scorecards.fields]\n", "scorecards.fields"),
    ],
)
def test_a_broken_field_map_names_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(PushMapError) as caught:
        load_write_map("zoho", path)
    assert str(path) in str(caught.value) and message in str(caught.value)


# ---- settings ----------------------------------------------------------------------------------


def test_push_settings_validate() -> None:
    with pytest.raises(ValidationError, match="exactly one of periods"):
        PushSettings(per="agent", periods=["month", "week"])
    assert PushSettings(per="agent", periods=["week"]).periods == ["week"]


def test_config_errors_name_the_key(tmp_path: Path, sqlite_url: str) -> None:
    with pytest.raises(ConfigError, match=r"push\.field_maps.*file not found"):
        config_with(tmp_path, sqlite_url, ZOHO_SOURCE + '[push.field_maps]\nzo = "missing.toml"\n')
    (tmp_path / "zoho_main.toml").write_text('extends = "zoho"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"push\.field_maps\.zoho_main: there is no \[sources\.zoho_main\]"):
        config_with(tmp_path, sqlite_url, ZOHO_SOURCE + '[push.field_maps]\nzoho_main = "zoho_main.toml"\n')
    with pytest.raises(ConfigError, match=r"push\.sources\[0\]: there is no \[sources\.zoho_main\]"):
        config_with(tmp_path, sqlite_url, ZOHO_SOURCE + '[push]\nsources = ["zoho_main"]\n')


# ---- what is planned ---------------------------------------------------------------------------


def test_default_targets_are_the_sources_that_can_take_scorecards(
    tmp_path: Path, store: Store, db_url: str
) -> None:
    config = config_with(tmp_path, db_url, ZOHO_SOURCE + JSONL_SOURCE)
    store_cards(store, [card_row("zo", "1", "2026-10", 80), card_row("files", "f1", "2026-10", 80)])

    report = run_push(store, config, clock=Clock(), dry_run=True)

    assert [t.plan.source for t in report.targets] == ["zo"]  # jsonl ships no push field map
    assert [r.record_key for r in report.targets[0].plan.records] == ["1_2026-10"]


def test_only_the_configured_granularities_are_planned_unless_a_period_is_named(
    tmp_path: Path, store: Store, db_url: str
) -> None:
    config = config_with(tmp_path, db_url, ZOHO_SOURCE)
    store_cards(
        store,
        [
            card_row("zo", "1", "2026-10", 80),
            card_row("zo", "1", "2026-W43", 80),
            card_row("zo", "1", "2026-10-05", 80),
        ],
    )

    default = run_push(store, config, clock=Clock(), dry_run=True)
    weekly = run_push(store, config, clock=Clock(), dry_run=True, period="2026-W43")

    assert [r.record_key for r in default.targets[0].plan.records] == ["1_2026-10"]
    assert [r.record_key for r in weekly.targets[0].plan.records] == ["1_2026-W43"]


def test_one_record_per_agent_holds_the_latest_period(tmp_path: Path, store: Store, db_url: str) -> None:
    config = config_with(tmp_path, db_url, ZOHO_SOURCE + '[push]\nper = "agent"\n')
    store_cards(
        store,
        [
            card_row("zo", "1", "2026-09", 71),
            card_row("zo", "1", "2026-10", 88),
            card_row("zo", "2", "2026-08", 60),
        ],
    )

    (target,) = run_push(store, config, clock=Clock(), dry_run=True).targets

    planned = {
        r.record_key: (r.period, r.values["Composite_Score"], r.values["Name"]) for r in target.plan.records
    }
    assert planned == {"1": ("2026-10", 88.0, "1"), "2": ("2026-08", 60.0, "2")}


def test_a_dry_run_records_nothing(tmp_path: Path, store: Store, db_url: str) -> None:
    config = config_with(tmp_path, db_url, ZOHO_SOURCE)
    store_cards(store, [card_row("zo", "1", "2026-10", 80)])
    run_push(store, config, clock=Clock(), dry_run=True)
    with store.connect() as conn:
        assert conn.execute(sa.text("select count(*) from push_log")).scalar() == 0
        assert conn.execute(sa.select(sa.func.count()).select_from(sync_runs)).scalar() == 0


# ---- the scheduled step ------------------------------------------------------------------------


def test_the_push_step_writes_and_records_its_run(tmp_path: Path, store: Store, db_url: str) -> None:
    with sandbox("zoho") as zoho:
        path = tmp_path / "connector.toml"
        path.write_text(
            f'[store]\nurl = "{db_url}"\n' + zoho.app.config_snippet(zoho.base_url, "zo"), "utf-8"
        )
        config = load_config(path)
        ids = agent_ids("zoho", 3)
        store_cards(
            store, [card_row("zo", a, "2026-10", 85) for a in ids] + [card_row("zo", "404", "2026-10", 1)]
        )
        env = JobEnv(config=config, store=store, clock=lambda: NOW)

        first = run_step(env, "push")
        store_cards(store, [card_row("zo", "404", "2026-09", 1)])  # one more record that will fail
        second = run_step(env, "push")

    assert first.status == "failed" and first.counts["written"] == 3 and first.counts["failed"] == 1
    assert "404_2026-10: INVALID_DATA" in (first.error or "")
    assert second.counts["planned"] == 2 and second.counts["unchanged"] == 3
    with store.connect() as conn:
        rows = conn.execute(
            sa.select(sync_runs.c.job, sync_runs.c.status, sync_runs.c.inserted, sync_runs.c.unchanged)
            .where(sync_runs.c.job == "push")
            .order_by(sync_runs.c.id)
        ).all()
    assert rows == [("push", "failed", 3, 0), ("push", "failed", 0, 3)]
