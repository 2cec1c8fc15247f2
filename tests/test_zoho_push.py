"""Zoho write-back: batches of at most 100, trigger and duplicate_check_fields, one result per record
from 200/201/207/400/412 bodies, and request-level failures turned into retryable results."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests
import responses
from fake_time import FakeTime
from zoho_support import CRM, SECRETS, add_token, make_adapter

from connector.http import AuthError
from connector.store.tokens import MemoryTokenCache

UPSERT = f"{CRM}/Agent_Performance/upsert"


@pytest.fixture
def time() -> FakeTime:
    return FakeTime()


def rows(count: int, start: int = 0) -> list[dict[str, Any]]:
    return [{"Name": f"agent{n}_2026-10", "Avg_Handle_Secs": n} for n in range(start, start + count)]


def success(n: int, action: str = "insert") -> dict[str, Any]:
    return {
        "code": "SUCCESS",
        "duplicate_field": "Name" if action == "update" else None,
        "action": action,
        "status": "success",
        "message": f"record {action}d" if action == "update" else "record added",
        "details": {"id": f"9000{n}", "Modified_Time": "2026-10-08T10:00:00+08:00"},
    }


def failure(code: str, **details: Any) -> dict[str, Any]:
    return {"code": code, "status": "error", "message": code.lower().replace("_", " "), "details": details}


def echo_success(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
    data = json.loads(request.body)["data"]  # type: ignore[arg-type]
    return 200, {}, json.dumps({"data": [success(int(r["Avg_Handle_Secs"])) for r in data]})


def bodies() -> list[dict[str, Any]]:
    return [
        json.loads(c.request.body)
        for c in responses.calls
        if c.request.method in ("POST", "PUT") and "/crm/" in c.request.url
    ]


@responses.activate
def test_upsert_sends_duplicate_check_fields_and_an_empty_trigger(time: FakeTime) -> None:
    add_token()
    responses.add_callback(responses.POST, UPSERT, callback=echo_success)
    results = make_adapter(time).push("Agent_Performance", rows(2))
    assert bodies() == [{"data": rows(2), "duplicate_check_fields": ["Name"], "trigger": []}]
    assert [(r.key, r.ok, r.remote_id, r.action, r.code) for r in results] == [
        ("agent0_2026-10", True, "90000", "insert", "SUCCESS"),
        ("agent1_2026-10", True, "90001", "insert", "SUCCESS"),
    ]


@responses.activate
def test_configured_triggers_and_check_fields_are_sent(time: FakeTime) -> None:
    add_token()
    responses.add_callback(responses.POST, f"{CRM}/Scores/upsert", callback=echo_success)
    write = {"module": "Scores", "duplicate_check_fields": ["Key__c"], "trigger": ["workflow"]}
    make_adapter(time, write=write).push("Scores", rows(1))
    assert bodies()[0]["trigger"] == ["workflow"] and bodies()[0]["duplicate_check_fields"] == ["Key__c"]


@responses.activate
def test_other_modules_use_zohos_own_duplicate_check(time: FakeTime) -> None:
    add_token()
    responses.add_callback(responses.POST, f"{CRM}/Contacts/upsert", callback=echo_success)
    make_adapter(time).push("Contacts", rows(1))
    assert "duplicate_check_fields" not in bodies()[0] and bodies()[0]["trigger"] == []


@responses.activate
def test_batches_of_at_most_100_keep_input_order(time: FakeTime) -> None:
    add_token()
    responses.add_callback(responses.POST, UPSERT, callback=echo_success)
    results = make_adapter(time).push("Agent_Performance", rows(250))
    assert [len(b["data"]) for b in bodies()] == [100, 100, 50]
    assert [r.remote_id for r in results] == [f"9000{n}" for n in range(250)]


@responses.activate
def test_concurrent_batches_still_return_results_in_input_order(time: FakeTime) -> None:
    add_token()
    responses.add_callback(responses.POST, UPSERT, callback=echo_success)
    results = make_adapter(time, concurrency=3).push("Agent_Performance", rows(450))
    assert sorted(len(b["data"]) for b in bodies()) == [50, 100, 100, 100, 100]
    assert [r.remote_id for r in results] == [f"9000{n}" for n in range(450)]


@responses.activate
def test_207_mixed_results_are_reported_per_record(time: FakeTime) -> None:
    add_token()
    invalid = failure(
        "INVALID_DATA",
        expected_data_type="double",
        api_name="Avg_Handle_Secs",
        json_path="$.data[1].Avg_Handle_Secs",
    )
    responses.post(UPSERT, status=207, json={"data": [success(0, "update"), invalid]})
    first, second = make_adapter(time).push("Agent_Performance", rows(2))
    assert first.ok and first.action == "update" and first.remote_id == "90000"
    assert not second.ok and second.code == "INVALID_DATA" and not second.retryable
    assert "invalid data" in second.message and '"api_name": "Avg_Handle_Secs"' in second.message  # type: ignore[operator]
    assert "expected_data_type" in second.message  # type: ignore[operator]


@responses.activate
def test_400_with_every_record_failed_is_per_record_not_an_exception(time: FakeTime) -> None:
    add_token()
    duplicate = failure(
        "DUPLICATE_DATA", api_name="Name", json_path="$.data[0].Name", duplicate_record={"id": "77"}
    )
    mandatory = failure("MANDATORY_NOT_FOUND", api_name="Name", json_path="$.data[1].Name")
    responses.post(UPSERT, status=400, json={"data": [duplicate, mandatory]})
    results = make_adapter(time).push("Agent_Performance", rows(2))
    assert [(r.ok, r.code, r.retryable) for r in results] == [
        (False, "DUPLICATE_DATA", False),
        (False, "MANDATORY_NOT_FOUND", False),
    ]
    assert '"duplicate_record": {"id": "77"}' in results[0].message  # type: ignore[operator]
    assert time.sleeps == []


@pytest.mark.parametrize(
    ("item", "ok", "retryable"),
    [
        (success(1, "insert"), True, False),
        (success(1, "update"), True, False),
        (failure("DUPLICATE_DATA", api_name="Name"), False, False),
        (failure("INVALID_DATA", api_name="Avg_Handle_Secs"), False, False),
        (failure("MANDATORY_NOT_FOUND", api_name="Name"), False, False),
        (failure("DEPENDENT_FIELD_MISSING", api_name="Sub"), False, False),
        (failure("MULTIPLE_OR_MULTI_ERRORS", errors=[]), False, False),
        (failure("NOT_APPROVED"), False, False),
        (failure("RECORD_LOCKED"), False, True),
        (failure("ALREADY_MODIFIED"), False, True),
    ],
)
@responses.activate
def test_each_write_result_code(time: FakeTime, item: dict[str, Any], ok: bool, retryable: bool) -> None:
    add_token()
    responses.post(UPSERT, status=200 if ok else 400, json={"data": [item]})
    (result,) = make_adapter(time).push("Agent_Performance", rows(1))
    assert (result.ok, result.code, result.retryable) == (ok, item["code"], retryable)
    assert result.action == (item.get("action") if ok else None)


@responses.activate
def test_412_already_modified_is_reported_per_record_and_retryable(time: FakeTime) -> None:
    add_token()
    modified = failure("ALREADY_MODIFIED", id="1")
    modified["message"] = "record updated time has already passed if-unmodified-since time"
    responses.put(f"{CRM}/Agent_Performance", status=412, json={"data": [modified, success(2, "update")]})
    first, second = make_adapter(time).update_records(
        "Agent_Performance", [{"id": "1", "Name": "a"}, {"id": "2", "Name": "b"}]
    )
    assert (first.key, first.ok, first.code, first.retryable) == ("1", False, "ALREADY_MODIFIED", True)
    assert "if-unmodified-since" in first.message  # type: ignore[operator]
    assert second.ok and second.action == "update"


@responses.activate
def test_rate_limit_exhausted_gives_retryable_failures_for_that_batch_only(time: FakeTime) -> None:
    add_token()
    responses.add_callback(responses.POST, UPSERT, callback=echo_success)
    results_ok = make_adapter(time).push("Agent_Performance", rows(100))
    responses.replace(responses.POST, UPSERT, status=429, json={"code": "TOO_MANY_REQUESTS"})
    results = make_adapter(time, max_retry_wait_s=60).push("Agent_Performance", rows(150))
    assert all(r.ok for r in results_ok)
    assert len(results) == 150 and {(r.ok, r.code, r.retryable) for r in results} == {
        (False, "RATE_LIMITED", True)
    }
    assert "gave up after" in results[0].message  # type: ignore[operator]


@responses.activate
def test_server_errors_exhausted_give_retryable_failures(time: FakeTime) -> None:
    add_token()
    responses.post(UPSERT, status=500, json={"code": "INTERNAL_ERROR"})
    results = make_adapter(time, max_retry_wait_s=30).push("Agent_Performance", rows(3))
    assert {(r.ok, r.code, r.retryable) for r in results} == {(False, "REQUEST_FAILED", True)}
    assert sum(time.sleeps) == pytest.approx(30, abs=1e-3)


@responses.activate
def test_upsert_survives_a_dropped_connection(time: FakeTime) -> None:
    add_token()
    responses.post(UPSERT, body=requests.ConnectionError("reset"))
    responses.add_callback(responses.POST, UPSERT, callback=echo_success)
    assert all(r.ok for r in make_adapter(time).push("Agent_Performance", rows(2)))


@responses.activate
def test_request_level_client_error_fails_every_record_without_retry_flag(time: FakeTime) -> None:
    add_token()
    responses.post(
        UPSERT,
        status=400,
        json={"code": "INVALID_MODULE", "details": {"resource_path_index": 0}, "message": "invalid module"},
    )
    results = make_adapter(time).push("Agent_Performance", rows(2))
    assert {(r.ok, r.code, r.retryable) for r in results} == {(False, "INVALID_MODULE", False)}


@responses.activate
def test_scope_mismatch_on_write_raises(time: FakeTime) -> None:
    add_token()
    responses.post(UPSERT, status=401, json={"code": "OAUTH_SCOPE_MISMATCH", "message": "Unauthorized"})
    with pytest.raises(AuthError) as caught:
        make_adapter(time).push("Agent_Performance", rows(1))
    assert "ZohoCRM.modules.custom.ALL" in str(caught.value)


@responses.activate
def test_missing_results_are_reported_retryable(time: FakeTime) -> None:
    add_token()
    responses.post(UPSERT, json={"data": [success(0)]})
    results = make_adapter(time).push("Agent_Performance", rows(2))
    assert results[0].ok and (results[1].ok, results[1].code, results[1].retryable) == (
        False,
        "MISSING_RESULT",
        True,
    )


@responses.activate
def test_create_records_inserts_tasks_and_never_retries_an_unknown_outcome(time: FakeTime) -> None:
    add_token()
    task = {"Subject": "回访超时", "Owner": {"id": "411001"}, "Due_Date": "2026-10-09"}
    responses.post(f"{CRM}/Tasks", status=201, json={"data": [success(5)]})
    tokens = MemoryTokenCache()
    (created,) = make_adapter(time, tokens=tokens).create_records("Tasks", [task])
    assert created.ok and created.action == "insert" and created.key == "0" and created.remote_id == "90005"
    assert bodies()[-1] == {"data": [task], "trigger": []}
    responses.replace(responses.POST, f"{CRM}/Tasks", status=500)
    adapter = make_adapter(time, tokens=tokens)
    (unknown,) = adapter.create_records("Tasks", [task])
    assert (unknown.ok, unknown.code, unknown.retryable) == (False, "OUTCOME_UNKNOWN", False)
    assert adapter.api_calls == 1 and time.sleeps == []  # the cached token, one attempt, no retry


@responses.activate
def test_create_records_is_retried_when_rate_limited(time: FakeTime) -> None:
    add_token()
    responses.post(f"{CRM}/Tasks", status=429, json={"code": "TOO_MANY_REQUESTS"})
    responses.post(f"{CRM}/Tasks", status=201, json={"data": [success(1)]})
    (created,) = make_adapter(time).create_records("Tasks", [{"Subject": "x"}])
    assert created.ok and len(time.sleeps) == 1


@responses.activate
def test_results_never_carry_secrets(time: FakeTime) -> None:
    add_token()
    responses.post(UPSERT, status=503)
    results = make_adapter(time, max_retry_wait_s=5).push("Agent_Performance", rows(1))
    for secret in SECRETS:
        assert secret not in repr(results)
