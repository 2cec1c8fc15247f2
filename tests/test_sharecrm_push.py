"""ShareCRM write-back: update by _id, upsert = find then update or create, timed-out creates
re-queried before any retry, value formats, routing, and one result per record."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

import pytest
import requests
import responses
from fake_time import FakeTime
from sharecrm_support import (
    BASE,
    CUSTOM_QUERY_URL,
    TOKEN,
    add_token,
    body_of,
    calls_to,
    envelope,
    failure,
    make_adapter,
)

from adapters.sharecrm.push import crm_value
from connector.http import AuthError

CUSTOM = f"{BASE}/cgi/crm/custom/v2/data"
PRESET = f"{BASE}/cgi/crm/v2/data"
EMPLOYEE = "FSUID_0123456789ABCDEF0123456789ABCDEF"


@pytest.fixture
def time() -> FakeTime:
    return FakeTime()


def scorecard(**fields: Any) -> dict[str, Any]:
    return {"field_employee__c": EMPLOYEE, "field_period__c": "2026-10", "field_score__c": 87.5, **fields}


def query_reply(*ids: str, status: str = "normal") -> dict[str, Any]:
    return envelope(
        data={
            "dataList": [{"_id": i, "life_status": status} for i in ids],
            "limit": 10,
            "offset": 0,
            "total": 0,
        }
    )


def test_values_are_written_in_sharecrm_formats() -> None:
    assert crm_value(87.5) == "87.5" and crm_value(3) == "3" and crm_value(1e-7) == "0.0000001"
    assert crm_value(True) is True and crm_value("2026-10") == "2026-10" and crm_value(None) is None
    assert crm_value(EMPLOYEE, employee=True) == [EMPLOYEE]
    assert crm_value([EMPLOYEE, 1000], employee=True) == [EMPLOYEE, "1000"]
    assert crm_value(date(2020, 4, 4)) == 1585929600000  # midnight Asia/Shanghai
    assert crm_value(datetime(2026, 10, 8, 1, 0, tzinfo=UTC)) == 1791421200000
    with pytest.raises(ValueError):
        crm_value(datetime(2026, 10, 8, 1, 0))
    with pytest.raises(ValueError):
        crm_value(float("nan"))


@responses.activate
def test_update_by_id_through_the_custom_path(time: FakeTime) -> None:
    add_token()
    responses.post(f"{CUSTOM}/update", json=envelope())
    (result,) = make_adapter(time).push("object_perf__c", [scorecard(_id="66aa00bb11cc22dd33ee44ff")])
    assert result.ok and result.action == "update" and result.remote_id == "66aa00bb11cc22dd33ee44ff"
    assert result.key == "66aa00bb11cc22dd33ee44ff"
    body = body_of(calls_to(f"{CUSTOM}/update")[0])
    assert body["triggerWorkFlow"] is False and body["corpAccessToken"] == TOKEN
    assert body["data"]["object_data"] == {
        "dataObjectApiName": "object_perf__c",
        "_id": "66aa00bb11cc22dd33ee44ff",
        "field_employee__c": [EMPLOYEE],
        "field_period__c": "2026-10",
        "field_score__c": "87.5",
    }


@responses.activate
def test_preset_objects_use_the_preset_path_and_workflows_can_be_enabled(time: FakeTime) -> None:
    add_token()
    responses.post(f"{PRESET}/update", json=envelope())
    adapter = make_adapter(time, write={"trigger_workflow": True})
    (result,) = adapter.update_records("PersonnelObj", [{"_id": "p1", "field_score__c": 90}])
    assert result.ok
    body = body_of(calls_to(f"{PRESET}/update")[0])
    assert body["triggerWorkFlow"] is True and body["data"]["object_data"]["field_score__c"] == "90"


@responses.activate
def test_upsert_updates_the_one_match(time: FakeTime) -> None:
    add_token()
    responses.post(f"{CUSTOM}/query", json=query_reply("rec1"))
    responses.post(f"{CUSTOM}/update", json=envelope())
    (result,) = make_adapter(time).push("object_perf__c", [scorecard()])
    assert result.ok and result.action == "update" and result.remote_id == "rec1"
    assert result.key == f"{EMPLOYEE}|2026-10"
    query = body_of(calls_to(f"{CUSTOM}/query")[0])["data"]["search_query_info"]
    assert query["filters"] == [
        {"field_name": "field_employee__c", "operator": "IN", "field_values": [EMPLOYEE]},
        {"field_name": "field_period__c", "operator": "EQ", "field_values": ["2026-10"]},
    ]
    assert query["offset"] == 0
    assert body_of(calls_to(f"{CUSTOM}/update")[0])["data"]["object_data"]["_id"] == "rec1"
    assert calls_to(f"{CUSTOM}/create") == []


@responses.activate
def test_upsert_creates_when_nothing_matches_and_ignores_invalidated_matches(time: FakeTime) -> None:
    add_token()
    responses.post(f"{CUSTOM}/query", json=query_reply("old", status="invalid"))
    responses.post(f"{CUSTOM}/create", json=envelope(dataId="new1"))
    (result,) = make_adapter(time).push("object_perf__c", [scorecard()])
    assert result.ok and result.action == "insert" and result.remote_id == "new1"
    body = body_of(calls_to(f"{CUSTOM}/create")[0])
    assert body["triggerWorkFlow"] is False and body["triggerApprovalFlow"] is False
    assert body["data"]["object_data"]["dataObjectApiName"] == "object_perf__c"


@responses.activate
def test_upsert_refuses_to_guess_between_two_matches(time: FakeTime) -> None:
    add_token()
    responses.post(f"{CUSTOM}/query", json=query_reply("a", "b"))
    (result,) = make_adapter(time).push("object_perf__c", [scorecard()])
    assert not result.ok and result.code == "DUPLICATE_KEY" and "a, b" in (result.message or "")
    assert calls_to(f"{CUSTOM}/update") == [] and calls_to(f"{CUSTOM}/create") == []


@responses.activate
def test_a_timed_out_create_that_happened_is_found_not_repeated(time: FakeTime) -> None:
    add_token()
    responses.post(f"{CUSTOM}/query", json=query_reply())  # the upsert's lookup: nothing yet
    responses.post(f"{CUSTOM}/create", body=requests.ReadTimeout("read timed out"))
    responses.post(f"{CUSTOM}/query", json=query_reply("made-by-the-lost-create"))  # re-query finds it
    (result,) = make_adapter(time).push("object_perf__c", [scorecard()])
    assert result.ok and result.action == "insert" and result.remote_id == "made-by-the-lost-create"
    assert len(calls_to(f"{CUSTOM}/create")) == 1 and len(calls_to(f"{CUSTOM}/query")) == 2


@responses.activate
def test_a_timed_out_create_that_did_not_happen_is_created_again_once(time: FakeTime) -> None:
    add_token()
    responses.post(f"{CUSTOM}/query", json=query_reply())
    responses.post(f"{CUSTOM}/create", json=failure(50009, "服务超时"))  # may or may not have applied
    responses.post(f"{CUSTOM}/create", json=envelope(dataId="second-try"))
    (result,) = make_adapter(time).push("object_perf__c", [scorecard()])
    assert result.ok and result.remote_id == "second-try"
    assert len(calls_to(f"{CUSTOM}/create")) == 2 and len(calls_to(f"{CUSTOM}/query")) == 2


@responses.activate
def test_creates_of_unknown_outcome_twice_stay_retryable_for_the_next_run(time: FakeTime) -> None:
    add_token()
    responses.post(f"{CUSTOM}/query", json=query_reply())
    responses.post(f"{CUSTOM}/create", body=requests.ConnectionError("reset by peer"))
    (result,) = make_adapter(time).push("object_perf__c", [scorecard()])
    assert not result.ok and result.code == "OUTCOME_UNKNOWN" and result.retryable
    assert len(calls_to(f"{CUSTOM}/create")) == 2 and len(calls_to(f"{CUSTOM}/query")) == 3


@responses.activate
def test_a_plain_create_of_unknown_outcome_is_not_retried(time: FakeTime) -> None:
    add_token()
    responses.post(f"{CUSTOM}/create", body=requests.ReadTimeout("read timed out"))
    (result,) = make_adapter(time).create_records("object_alert__c", [{"name": "预警"}])
    assert not result.ok and result.code == "OUTCOME_UNKNOWN" and not result.retryable
    assert len(calls_to(f"{CUSTOM}/create")) == 1 and calls_to(f"{CUSTOM}/query") == []


@responses.activate
def test_alert_tasks_with_a_fingerprint_field_are_checked_before_a_repeat(time: FakeTime) -> None:
    add_token()
    responses.post(f"{CUSTOM}/create", body=requests.ReadTimeout("read timed out"))
    responses.post(f"{CUSTOM}/query", json=query_reply("task9"))
    task = {
        "name": "投诉超时预警",
        "field_fingerprint__c": "fp-1",
        "owner": EMPLOYEE,
        "field_due__c": date(2026, 10, 9),
    }
    (result,) = make_adapter(time).create_records(
        "object_alert__c", [task], key_fields=["field_fingerprint__c"]
    )
    assert result.ok and result.remote_id == "task9" and result.key == "fp-1"
    created = body_of(calls_to(f"{CUSTOM}/create")[0])["data"]["object_data"]
    assert created["owner"] == [EMPLOYEE] and created["field_due__c"] == 1791475200000


@responses.activate
def test_create_without_data_id_looks_the_new_record_up(time: FakeTime) -> None:
    add_token()
    responses.post(f"{CUSTOM}/query", json=query_reply())
    responses.post(f"{CUSTOM}/create", json=envelope())  # the custom-create doc sample has no dataId
    responses.post(f"{CUSTOM}/query", json=query_reply("found-after"))
    (result,) = make_adapter(time).push("object_perf__c", [scorecard()])
    assert result.ok and result.remote_id == "found-after"


@responses.activate
def test_one_result_per_record_in_order_with_failures_in_place(time: FakeTime) -> None:
    add_token()
    responses.post(f"{CUSTOM}/update", json=envelope())
    responses.post(f"{CUSTOM}/update", json=failure(30027, "员工不存在"))
    responses.post(f"{CUSTOM}/update", json=envelope())
    records = [scorecard(_id="a"), scorecard(_id="b"), scorecard(_id="c")]
    results = make_adapter(time).push("object_perf__c", records)
    assert [(r.key, r.ok, r.code) for r in results] == [
        ("a", True, "0"),
        ("b", False, "30027"),
        ("c", True, "0"),
    ]
    assert "30027" in (results[1].message or "") and not results[1].retryable


@responses.activate
def test_quota_and_exhausted_retries_are_retryable_failures(time: FakeTime) -> None:
    add_token()
    responses.post(f"{CUSTOM}/update", json=failure(30002, "额度用完"))
    results = make_adapter(time).push("object_perf__c", [scorecard(_id="a"), scorecard(_id="b")])
    assert [(r.code, r.retryable) for r in results] == [("30002", True), ("30002", True)]
    assert len(calls_to(f"{CUSTOM}/update")) == 1  # the second record spends no call


@responses.activate
def test_rate_limited_writes_give_up_as_retryable(time: FakeTime) -> None:
    add_token()
    responses.post(f"{CUSTOM}/update", json=failure(30004))
    (result,) = make_adapter(time, max_retry_wait_s=30).push("object_perf__c", [scorecard(_id="a")])
    assert not result.ok and result.code == "RATE_LIMITED" and result.retryable


@responses.activate
def test_a_credentials_problem_stops_the_whole_push(time: FakeTime) -> None:
    add_token()
    responses.post(f"{CUSTOM}/update", json=failure(20016))
    responses.post(f"{BASE}/cgi/corpAccessToken/get/V2", json=failure(20015, "permanentCode wrong"))
    with pytest.raises(AuthError):
        make_adapter(time).push("object_perf__c", [scorecard(_id="a")])


@responses.activate
def test_an_update_without_id_is_refused_per_record(time: FakeTime) -> None:
    (result,) = make_adapter(time).update_records("object_perf__c", [{"field_score__c": 1}])
    assert not result.ok and result.code == "MISSING_ID" and len(responses.calls) == 0


@responses.activate
def test_writes_to_other_objects_without_id_are_plain_creates(time: FakeTime) -> None:
    add_token()
    responses.post(f"{PRESET}/create", json=envelope(dataId="s1"))
    (result,) = make_adapter(time).push("ScheduleObj", [{"name": "回访提醒", "owner": EMPLOYEE}])
    assert result.ok and result.remote_id == "s1" and result.key == "0"
    assert json.loads(calls_to(f"{PRESET}/create")[0].request.body)["data"]["object_data"]["owner"] == [
        EMPLOYEE
    ]
    assert calls_to(CUSTOM_QUERY_URL) == []
