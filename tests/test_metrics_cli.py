"""``crm-connector metrics``: periods, storing, JSON and table output, --agent, --explain, errors.

Runs the real command on the golden October dataset (test_metrics_golden) in SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner, Result
from test_metrics_golden import october
from test_metrics_support import Rows

from connector.cli import main
from connector.metrics import METRICS
from connector.store import open_store
from connector.store.schema import scorecards

NOW = "2026-11-10T00:00:00+08:00"


@pytest.fixture
def config(db_url: str, tmp_path: Path) -> Path:
    store = open_store(db_url)
    rows = Rows()
    october(rows)
    rows.write(store)
    store.dispose()
    path = tmp_path / "connector.toml"
    path.write_text(
        f'[store]\nurl = "{db_url}"\n[clinic]\ntimezone = "Asia/Shanghai"\nlanguage = "zh"\n'
        '[clinic.calendar]\nstatutory = ""\n',
        encoding="utf-8",
    )
    return path


def run(config: Path, *args: str, now: str = NOW) -> Result:
    return CliRunner().invoke(main, ["--config", str(config), *args], env={"CRM_CONNECTOR_NOW": now})


def stored_periods(config: Path) -> list[tuple[str, str]]:
    url = config.read_text(encoding="utf-8").split('"')[1]
    store = open_store(url, upgrade=False)
    try:
        with store.begin() as conn:
            rows = conn.execute(sa.select(scorecards.c.period, scorecards.c.agent_id)).all()
    finally:
        store.dispose()
    return sorted((row.period, row.agent_id) for row in rows)


def test_json_has_every_metric_and_the_scores(config: Path) -> None:
    result = run(config, "metrics", "--period", "2026-10", "--json")
    assert result.exit_code == 0, result.output
    cards = {card["agent_id"]: card for card in json.loads(result.output)}
    alice = cards["a1"]
    required = {"source", "agent_id", "agent_name", "period", "quality", "efficiency", "knowledge"}
    assert required | {"composite", "bonus_pct", "rank", "missing"} | set(METRICS) <= set(alice)
    assert (alice["source"], alice["agent_name"], alice["period"]) == ("zoho", "Alice", "2026-10")
    assert alice["satisfaction_rate"] == 0.6  # a fraction, not a percentage
    assert (alice["composite"], alice["bonus_pct"], alice["rank"], alice["missing"]) == (76.44, 0.0, 1, [])
    assert cards["b1"]["satisfaction_rate"] is None and "satisfaction_rate" in cards["b1"]["missing"]
    assert stored_periods(config) == [("2026-10", "a1"), ("2026-10", "b1")]


def test_table_in_chinese_and_english(config: Path) -> None:
    zh = run(config, "metrics", "--period", "2026-10")
    assert zh.exit_code == 0, zh.output
    assert "绩效考核表 2026-10" in zh.output and "60.0%" in zh.output and "76.4" in zh.output
    assert "4/60" in zh.output  # follow-ups done / target
    assert "已保存 2 份绩效考核表（2026-10）" in zh.output
    en = run(config, "--lang", "en", "metrics", "--period", "2026-10", "--agent", "b1")
    assert en.exit_code == 0, en.output
    assert "Scorecards 2026-10" in en.output and "Bob" in en.output and "Alice" not in en.output


def test_default_period_is_the_current_month_and_ranges_split(config: Path) -> None:
    result = run(config, "metrics", "--json", now="2026-10-31T23:30:00+08:00")
    assert {card["period"] for card in json.loads(result.output)} == {"2026-10"}
    split = run(
        config, "metrics", "--from", "2026-09-15", "--to", "2026-11-02", "--granularity", "month", "--json"
    )
    assert split.exit_code == 0, split.output
    assert {card["period"] for card in json.loads(split.output)} == {"2026-10", "2026-11"}
    assert ("2026-09", "a1") not in stored_periods(config)  # September had no data: nothing stored
    ranged = run(config, "metrics", "--from", "2026-10-01", "--to", "2026-10-15", "--json")
    assert {card["period"] for card in json.loads(ranged.output)} == {"2026-10-01..2026-10-15"}


def test_explain_lists_why(config: Path) -> None:
    result = run(config, "metrics", "--period", "2026-10", "--explain", "a1", "--json")
    assert result.exit_code == 0, result.output
    [why] = json.loads(result.output)
    response = {e["record_id"]: e["outcome"] for e in why["evidence"]["first_response_within_sla"]}
    assert response == {"T1": "met", "T2": "breached", "T3": "met"}
    human = run(config, "metrics", "--period", "2026-10", "--explain", "a1")
    assert human.exit_code == 0, human.output
    assert "超时" in human.output and "24小时内首次响应" in human.output and "T2" in human.output


@pytest.mark.parametrize(
    "args",
    [
        ("--period", "2026-13"),
        ("--period", "2026-10", "--from", "2026-10-01"),
        ("--to", "2026-10-01"),
        ("--period", "2026-10", "--explain", "nobody"),
    ],
)
def test_usage_errors_exit_2(config: Path, args: tuple[str, ...]) -> None:
    result = run(config, "metrics", *args)
    assert result.exit_code == 2, result.output
