"""Alert rules and their evaluation, with an injected clock, on SQLite and PostgreSQL.

The clinic is in Asia/Shanghai (UTC+8). Working hours Mon–Fri 08:00–12:00 and 14:00–17:30 (7.5 h a
day), no statutory holidays. 2026-10-12 is a Monday; 2026-10-16 a Friday.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from pydantic import ValidationError

from connector.alerts import (
    RULE_NAMES,
    AlertSettings,
    EvaluationResult,
    evaluate_alerts,
    fingerprint,
    open_alerts,
)
from connector.alerts.settings import DeadlineRule
from connector.calendar import BusinessCalendar
from connector.cli import main
from connector.metrics import ScorecardSettings
from connector.store import Store, open_store, upsert
from connector.store.schema import ENTITY_TABLES, alerts, calls, follow_ups, surveys, sync_runs, tickets

TZ = ZoneInfo("Asia/Shanghai")
DAY = [(time(8), time(12)), (time(14), time(17, 30))]
CALENDAR = BusinessCalendar.build(TZ, {day: DAY for day in ("mon", "tue", "wed", "thu", "fri")})
MON = datetime(2026, 10, 12, 9, 0, tzinfo=TZ)
FRI = datetime(2026, 10, 16, 16, 0, tzinfo=TZ)
H = timedelta(hours=1)


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    store = open_store(db_url)
    yield store
    store.dispose()


def put(store: Store, entity: str, external_id: str, **values: Any) -> None:
    """Insert one canonical row (source zoho, owner a-1 unless given)."""
    row = dict.fromkeys(column.name for column in ENTITY_TABLES[entity].columns)
    stamp = values.get("created_at") or values.get("due_at") or values.get("submitted_at") or MON
    row.update(source="zoho", external_id=external_id, updated_at=stamp, synced_at=stamp, raw="{}")
    if "owner_id" in row:
        row["owner_id"] = "a-1"
    row.update(values)
    with store.begin() as conn:
        upsert(conn, entity, [row])


def change(store: Store, table: sa.Table, external_id: str, **values: Any) -> None:
    with store.begin() as conn:
        conn.execute(sa.update(table).where(table.c.external_id == external_id).values(**values))


def complaint(store: Store, external_id: str, created_at: datetime, **values: Any) -> None:
    values = {"category": "complaint", "status": "open", "subject": "Waited too long", **values}
    put(store, "tickets", external_id, created_at=created_at, **values)


def only(*names: str, **sections: dict[str, Any]) -> AlertSettings:
    """Settings with just ``names`` switched on (and extra keys per rule)."""
    data: dict[str, Any] = {name: {"enabled": name in names} for name in RULE_NAMES}
    for name, extra in sections.items():
        data[name].update(extra)
    return AlertSettings.model_validate(data)


def evaluate(
    store: Store,
    settings: AlertSettings,
    now: datetime,
    scorecard: ScorecardSettings | None = None,
) -> EvaluationResult:
    return evaluate_alerts(store, settings, scorecard or ScorecardSettings(), CALENDAR, TZ, now=now)


def stored(store: Store) -> list[dict[str, Any]]:
    with store.begin() as conn:
        return [dict(r) for r in conn.execute(sa.select(alerts).order_by(alerts.c.fingerprint)).mappings()]


def summary(result: EvaluationResult) -> tuple[list[tuple[str, str, str]], ...]:
    def keys(items: list) -> list[tuple[str, str, str]]:
        return sorted((a.rule, a.entity_id, a.severity) for a in items)

    return keys(result.opened), keys(result.escalated), keys(result.resolved), keys(result.open_alerts)


NOTHING: tuple[list, ...] = ([], [], [])


# ---- lifecycle ---------------------------------------------------------------------------------


def test_first_response_warning_then_breach_then_resolved_then_reopened(store: Store) -> None:
    settings = only("first_response")  # warn_before "2h" by default; 24 h calendar limit
    complaint(store, "T1", MON)
    fp = fingerprint("first_response", "zoho", "tickets", "T1")

    assert summary(evaluate(store, settings, MON + 22 * H - timedelta(seconds=1))) == ([], [], [], [])

    warned = evaluate(store, settings, MON + 22 * H)
    assert summary(warned)[0] == [("first_response", "T1", "warning")]
    [alert] = warned.opened
    assert (alert.fingerprint, alert.agent_id, alert.entity, alert.source) == (fp, "a-1", "tickets", "zoho")
    assert alert.message("en") == (
        "Complaint T1 “Waited too long” has no first response yet; "
        "the 24 h limit runs out at 2026-10-13 09:00"
    )
    assert (
        alert.message("zh")
        == "投诉工单 T1 “Waited too long” 尚未首次响应，24小时时限将于 2026-10-13 09:00 到期"
    )

    # Re-evaluating changes nothing, up to and including the limit itself (limits are inclusive).
    for later in (MON + 23 * H, MON + 24 * H):
        assert summary(evaluate(store, settings, later))[:3] == NOTHING
    assert len(stored(store)) == 1

    breach_at = MON + 24 * H + timedelta(seconds=1)
    breached = evaluate(store, settings, breach_at)
    assert summary(breached) == (
        [],
        [("first_response", "T1", "breach")],
        [],
        [("first_response", "T1", "breach")],
    )
    [row] = stored(store)
    assert (row["fingerprint"], row["severity"]) == (fp, "breach")
    assert row["opened_at"] == (MON + 22 * H).astimezone(UTC)  # same row: escalated, not re-opened
    assert row["updated_at"] == breach_at.astimezone(UTC)
    assert (
        row["message"]
        == "Complaint T1 “Waited too long” (created 2026-10-12 09:00) has had no first response within 24 h"
    )

    # The owner calls the patient about the ticket: the response arrived (late), the alert resolves.
    put(store, "calls", "C1", ticket_id="T1", direction="outbound", started_at=MON + 25 * H, duration_s=120)
    resolved_at = MON + 25 * H + timedelta(minutes=5)
    resolved = evaluate(store, settings, resolved_at)
    assert summary(resolved) == ([], [], [("first_response", "T1", "breach")], [])
    [row] = stored(store)
    assert row["resolved_at"] == resolved_at.astimezone(UTC)
    assert summary(evaluate(store, settings, resolved_at + H))[:3] == NOTHING

    # The call turns out to be deleted in the CRM: the condition is back, the same row re-opens.
    change(store, calls, "C1", deleted_at=MON + 26 * H, updated_at=MON + 26 * H)
    reopened = evaluate(store, settings, MON + 26 * H)
    assert summary(reopened)[0] == [("first_response", "T1", "breach")]
    [row] = stored(store)
    assert (row["fingerprint"], row["resolved_at"]) == (fp, None)
    assert row["opened_at"] == (MON + 26 * H).astimezone(UTC)
    assert json.loads(row["details"])["reopened"] == 1
    assert summary(evaluate(store, settings, MON + 27 * H))[:3] == NOTHING
    assert stored(store) == [row]  # the re-open count survives re-evaluation


def test_warning_lead_as_a_share_of_the_limit(store: Store) -> None:
    settings = only("first_response", first_response={"warn_before": "25%"})  # 6 h before 24 h
    complaint(store, "T1", MON)

    assert evaluate(store, settings, MON + 18 * H - timedelta(seconds=1)).opened == []
    assert summary(evaluate(store, settings, MON + 18 * H))[0] == [("first_response", "T1", "warning")]


def test_business_hours_lead_time_skips_nights_and_weekends(store: Store) -> None:
    # 4 working hours to respond, warning 1 working hour before. Created Friday 16:00: 1.5 h left on
    # Friday (to 17:30), so 3 h have run at Monday 09:30 (warning) and 4 h at Monday 10:30 (the limit).
    scorecard = ScorecardSettings(sla_clock="business", response_limit_hours=4)
    settings = only("first_response", first_response={"warn_before": "1h"})
    complaint(store, "T1", FRI)
    monday = datetime(2026, 10, 19, tzinfo=TZ)

    for quiet in (FRI + 20 * H, monday.replace(hour=9, minute=29)):  # Saturday noon: 20 calendar hours
        assert summary(evaluate(store, settings, quiet, scorecard)) == ([], [], [], [])

    warned = evaluate(store, settings, monday.replace(hour=9, minute=30), scorecard)
    [alert] = warned.opened
    assert alert.severity == "warning"
    assert alert.details["deadline"] == "2026-10-19 10:30"
    assert summary(evaluate(store, settings, monday.replace(hour=10, minute=30), scorecard))[:3] == NOTHING

    breached = evaluate(store, settings, monday.replace(hour=10, minute=31), scorecard)
    assert [a.severity for a in breached.escalated] == ["breach"]


def test_business_hours_share_lead(store: Store) -> None:
    # 50% of 4 working hours = 2 h lead: warning once 2 h have run, at Monday 08:30.
    scorecard = ScorecardSettings(sla_clock="business", response_limit_hours=4)
    settings = only("first_response", first_response={"warn_before": "50%"})
    complaint(store, "T1", FRI)
    monday = datetime(2026, 10, 19, tzinfo=TZ)

    assert evaluate(store, settings, monday.replace(hour=8, minute=29), scorecard).opened == []
    [alert] = evaluate(store, settings, monday.replace(hour=8, minute=30), scorecard).opened
    assert (alert.severity, alert.details["deadline"]) == ("warning", "2026-10-19 10:30")


def test_repeated_evaluation_never_duplicates(store: Store) -> None:
    complaint(store, "T1", MON - 3 * 24 * H)
    put(store, "follow_ups", "F1", due_at=MON - H, status="planned")
    put(store, "surveys", "S1", score=1, submitted_at=MON - H)
    settings = AlertSettings(low_composite={"enabled": False})

    first = evaluate(store, settings, MON)
    assert summary(first)[0] == [
        ("first_response", "T1", "breach"),
        ("follow_up_overdue", "F1", "breach"),
        ("low_score", "S1", "warning"),
        ("resolution", "T1", "breach"),
    ]
    before = stored(store)
    for _ in range(3):
        again = evaluate(store, settings, MON)
        assert summary(again)[:3] == NOTHING
        assert len(again.open_alerts) == 4
    assert stored(store) == before


# ---- each rule fires and clears ----------------------------------------------------------------


def test_resolution_rule_warns_breaches_and_clears_when_resolved(store: Store) -> None:
    settings = only("resolution", resolution={"warn_before": "4h"})
    # T1 was answered (mapped field) at once: the resolution clock still runs.
    complaint(store, "T1", MON, first_response_at=MON + H)
    complaint(store, "T2", MON, category="consultation")  # not a complaint: never alerts

    assert evaluate(store, settings, MON + 44 * H - timedelta(seconds=1)).opened == []
    assert summary(evaluate(store, settings, MON + 44 * H))[0] == [("resolution", "T1", "warning")]
    assert summary(evaluate(store, settings, MON + 48 * H))[:3] == NOTHING
    escalated = evaluate(store, settings, MON + 48 * H + timedelta(seconds=1))
    assert [(a.entity_id, a.severity) for a in escalated.escalated] == [("T1", "breach")]
    assert (
        escalated.escalated[0].message("zh")
        == "投诉工单 T1 “Waited too long”（2026-10-12 09:00 创建）超过48小时未解决"
    )

    change(store, tickets, "T1", status="resolved", resolved_at=MON + 50 * H, updated_at=MON + 50 * H)
    assert summary(evaluate(store, settings, MON + 51 * H)) == ([], [], [("resolution", "T1", "breach")], [])


def test_follow_up_overdue_fires_and_clears(store: Store) -> None:
    settings = only("follow_up_overdue")
    due = MON.replace(hour=18)
    put(store, "follow_ups", "F1", due_at=due, status="planned")
    put(store, "follow_ups", "F2", due_at=due, status="cancelled")
    put(store, "follow_ups", "F3", due_at=due, status="done")  # done, completion time not mapped
    put(store, "follow_ups", "F4", due_at=due, status=None, completed_at=due - H)

    assert evaluate(store, settings, due).opened == []  # due 18:00 is not yet overdue at 18:00
    result = evaluate(store, settings, due + timedelta(minutes=1))
    assert summary(result)[0] == [("follow_up_overdue", "F1", "breach")]
    assert result.opened[0].message("zh") == "回访 F1 已逾期未完成（应于 2026-10-12 18:00 前完成）"

    change(store, follow_ups, "F1", completed_at=due + H, status="done", updated_at=due + H)
    assert summary(evaluate(store, settings, due + 2 * H))[2] == [("follow_up_overdue", "F1", "breach")]


def test_low_score_fires_for_recent_low_ratings_and_clears(store: Store) -> None:
    settings = only("low_score")  # max_score 2, lookback 7 days
    put(store, "surveys", "S1", score=2, submitted_at=MON - 24 * H)
    put(store, "surveys", "S2", score=3, submitted_at=MON - H)  # not low
    put(store, "surveys", "S3", score=1, submitted_at=MON - 8 * 24 * H)  # too old
    put(store, "tickets", "T9", category="consultation", satisfaction=1, created_at=MON - 3 * 24 * H)
    change(store, tickets, "T9", updated_at=MON - 2 * H)  # the rating arrived with this version

    result = evaluate(store, settings, MON)
    assert summary(result)[0] == [("low_score", "S1", "warning"), ("low_score", "T9", "warning")]
    by_id = {a.entity_id: a for a in result.opened}
    assert (by_id["S1"].entity, by_id["T9"].entity) == ("surveys", "tickets")
    assert by_id["S1"].message("en") == "Low satisfaction score 2/5 in survey S1"
    assert by_id["T9"].message("zh") == "工单 T9 收到低满意度评分 1/5"

    change(store, surveys, "S1", score=4, updated_at=MON + H)  # the patient revised the rating
    assert summary(evaluate(store, settings, MON + H))[2] == [("low_score", "S1", "warning")]

    week_later = MON - 2 * H + 7 * 24 * H + timedelta(seconds=1)  # T9's rating left the window
    assert summary(evaluate(store, settings, week_later)) == ([], [], [("low_score", "T9", "warning")], [])


def _ratings_only() -> ScorecardSettings:
    # Composite = the satisfaction score alone, so the expected numbers are obvious:
    # rated 1 → satisfaction_rate 0 → score 0; rated 5 → rate 1.0 ≥ target 0.8 → score 100.
    return ScorecardSettings(categories={"quality": ["satisfaction_rate"], "efficiency": [], "knowledge": []})


def test_low_composite_uses_the_month_to_date_scorecard(store: Store) -> None:
    settings = only("low_composite")  # threshold 80
    put(store, "tickets", "T1", category="consultation", satisfaction=1, created_at=MON, owner_id="a-1")
    put(store, "tickets", "T2", category="consultation", satisfaction=5, created_at=MON, owner_id="a-2")
    now = MON + 24 * H

    result = evaluate(store, settings, now, _ratings_only())
    [alert] = result.opened
    assert (alert.rule, alert.agent_id, alert.entity, alert.entity_id) == (
        "low_composite",
        "a-1",
        "agents",
        "a-1",
    )
    assert alert.fingerprint == fingerprint("low_composite", "zoho", "agents", "a-1", "2026-10")
    assert alert.message("en") == "Month-to-date composite score 0.0 is below 80 (2026-10)"

    # Not before from_day of the month.
    late_start = only("low_composite", low_composite={"from_day": 14})
    assert summary(evaluate(store, late_start, now, _ratings_only()))[2] == [
        ("low_composite", "a-1", "warning")
    ]
    assert evaluate(store, settings, now, _ratings_only()).opened[0].agent_id == "a-1"  # re-opened

    # The rating is corrected: the composite is 100 and the alert clears.
    change(store, tickets, "T1", satisfaction=5, updated_at=now)
    assert summary(evaluate(store, settings, now + H, _ratings_only()))[2] == [
        ("low_composite", "a-1", "warning")
    ]


def test_low_composite_alert_of_last_month_closes_in_the_new_month(store: Store) -> None:
    settings = only("low_composite")
    put(store, "tickets", "T1", category="consultation", satisfaction=1, created_at=MON)
    assert len(evaluate(store, settings, MON + H, _ratings_only()).opened) == 1

    november = datetime(2026, 11, 2, 9, 0, tzinfo=TZ)
    result = evaluate(store, settings, november, _ratings_only())
    assert summary(result) == ([], [], [("low_composite", "a-1", "warning")], [])


# ---- deleted records, switches -----------------------------------------------------------------


def test_deleted_records_never_alert_and_deletion_closes_alerts(store: Store) -> None:
    settings = AlertSettings(low_composite={"enabled": False})
    gone = MON - H
    complaint(store, "T1", MON - 3 * 24 * H, deleted_at=gone)
    put(store, "follow_ups", "F0", due_at=MON - 2 * H, status="planned", deleted_at=gone)
    put(store, "surveys", "S1", score=1, submitted_at=MON - 2 * H, deleted_at=gone)
    put(store, "follow_ups", "F1", due_at=MON - 2 * H, status="planned")

    assert summary(evaluate(store, settings, MON))[0] == [("follow_up_overdue", "F1", "breach")]

    change(store, follow_ups, "F1", deleted_at=MON + H, updated_at=MON + H)
    assert summary(evaluate(store, settings, MON + H)) == (
        [],
        [],
        [("follow_up_overdue", "F1", "breach")],
        [],
    )


def test_switching_a_rule_off_closes_its_alerts(store: Store) -> None:
    put(store, "follow_ups", "F1", due_at=MON - H, status="planned")
    put(store, "surveys", "S1", score=1, submitted_at=MON - H)
    both = only("follow_up_overdue", "low_score")
    assert len(evaluate(store, both, MON).opened) == 2

    result = evaluate(store, only("low_score"), MON + H)
    assert summary(result)[2:] == ([("follow_up_overdue", "F1", "breach")], [("low_score", "S1", "warning")])

    everything_off = AlertSettings(enabled=False)
    assert summary(evaluate(store, everything_off, MON + 2 * H))[2:] == ([("low_score", "S1", "warning")], [])


def test_open_alerts_lists_breaches_first(store: Store) -> None:
    put(store, "agents", "a-1", name="李娜", email="li.na@clinic.cn", updated_at=MON)
    put(store, "surveys", "S1", score=1, submitted_at=MON - 3 * H)
    put(store, "follow_ups", "F1", due_at=MON - H, status="planned")
    evaluate(store, only("follow_up_overdue", "low_score"), MON)

    with store.begin() as conn:
        listed = open_alerts(conn)
    assert [(a.severity, a.entity_id, a.agent_name) for a in listed] == [
        ("breach", "F1", "李娜"),
        ("warning", "S1", "李娜"),
    ]


def test_evaluation_joins_the_callers_transaction(store: Store) -> None:
    put(store, "follow_ups", "F1", due_at=MON - H, status="planned")
    with store.engine.connect() as conn, conn.begin() as transaction:
        result = evaluate_alerts(conn, only("follow_up_overdue"), ScorecardSettings(), CALENDAR, TZ, now=MON)
        assert len(result.opened) == 1
        transaction.rollback()
    assert stored(store) == []  # the caller rolled back, so nothing was kept


# ---- settings ----------------------------------------------------------------------------------


def test_settings_defaults_and_leads() -> None:
    settings = AlertSettings()
    assert all(settings.is_on(name) for name in RULE_NAMES)
    assert settings.first_response.lead(timedelta(hours=24)) == timedelta(hours=2)
    assert settings.resolution.lead(timedelta(hours=48)) == timedelta(0)
    assert (settings.low_score.max_score, settings.low_score.lookback_delta) == (2, timedelta(days=7))
    assert (settings.low_composite.threshold, settings.low_composite.from_day) == (80.0, 1)
    assert DeadlineRule(warn_before="25%").lead(timedelta(hours=24)) == timedelta(hours=6)
    assert DeadlineRule(warn_before="90m").lead(timedelta(hours=24)) == timedelta(minutes=90)
    assert DeadlineRule(warn_before="30h").lead(timedelta(hours=24)) == timedelta(hours=24)  # capped
    assert not AlertSettings(enabled=False).is_on("low_score")
    # A section given without warn_before keeps that rule's own default lead.
    partial = AlertSettings.model_validate({"first_response": {"enabled": True}, "resolution": {}})
    assert (partial.first_response.warn_before, partial.resolution.warn_before) == ("2h", "0h")


@pytest.mark.parametrize(
    "data",
    [
        {"first_response": {"warn_before": "2 hours"}},
        {"first_response": {"warn_before": "150%"}},
        {"low_score": {"max_score": 5}},
        {"low_score": {"lookback": "0d"}},
        {"low_composite": {"threshold": 120}},
        {"follow_up_overdue": {"enabled": True, "grace": "1h"}},
        {"unknown_rule": {}},
    ],
)
def test_settings_reject_bad_values_and_unknown_keys(data: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        AlertSettings.model_validate(data)


# ---- CLI ---------------------------------------------------------------------------------------


def _config(tmp_path: Path, store: Store, language: str) -> Path:
    path = tmp_path / "connector.toml"
    path.write_text(
        f'[store]\nurl = "{store.engine.url.render_as_string(hide_password=False)}"\n'
        f'[clinic]\ntimezone = "Asia/Shanghai"\nlanguage = "{language}"\n'
        '[clinic.calendar]\nstatutory = ""\n'
        '[alerts.low_composite]\nenabled = false\n[alerts.first_response]\nwarn_before = "3h"\n',
        encoding="utf-8",
    )
    return path


def test_cli_evaluates_and_lists_open_alerts(store: Store, tmp_path: Path) -> None:
    complaint(store, "T1", MON)
    put(store, "follow_ups", "F1", due_at=MON + H, status="planned")
    # 3 h before T1's limit, F1 overdue; a wide terminal so table cells are not wrapped.
    env = {"CRM_CONNECTOR_NOW": (MON + 21 * H).isoformat(), "COLUMNS": "250"}

    as_json = CliRunner().invoke(
        main, ["--config", str(_config(tmp_path, store, "en")), "alerts", "--json"], env=env
    )
    assert as_json.exit_code == 0, as_json.output
    listed = json.loads(as_json.output)
    assert [(a["rule"], a["severity"], a["entity"], a["entity_id"], a["agent_id"]) for a in listed] == [
        ("follow_up_overdue", "breach", "follow_ups", "F1", "a-1"),
        ("first_response", "warning", "tickets", "T1", "a-1"),
    ]
    assert set(listed[0]) >= {
        "fingerprint",
        "rule",
        "severity",
        "source",
        "agent_id",
        "entity",
        "entity_id",
        "opened_at",
        "message",
    }
    assert listed[1]["message"].endswith("the 24 h limit runs out at 2026-10-13 09:00")
    assert listed[1]["opened_at"] == (MON + 21 * H).astimezone(UTC).isoformat()

    human = CliRunner().invoke(main, ["--config", str(_config(tmp_path, store, "zh")), "alerts"], env=env)
    assert human.exit_code == 0, human.output
    assert "未处理预警" in human.output and "超时" in human.output and "预警" in human.output
    assert "回访 F1" in human.output and "工单 T1" in human.output
    assert "新增 0，升级 0，解除 0；当前未处理 2 条。" in human.output
    with store.begin() as conn:
        runs = conn.execute(sa.select(sync_runs.c.job, sync_runs.c.inserted).order_by(sync_runs.c.id)).all()
    assert [tuple(r) for r in runs] == [("alerts", 2), ("alerts", 0)]
