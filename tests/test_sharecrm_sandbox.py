"""The ShareCRM sandbox answers as sharecrm.md documents: errorCode envelopes under HTTP 200, the
token's 6,600 s rule, the offset cap, the page-size limit, the per-endpoint limit, the daily quota,
operator visibility, path routing, invalidated vs deleted records, and typed writes."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from connector.sandbox import RunningSandbox, create_app, generate_clinic, start_sandbox
from connector.sandbox.sharecrm import object_id, open_user_id

NOW = datetime(2026, 10, 31, 4, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def token_clock() -> Clock:
    return Clock()


@pytest.fixture
def sandbox(token_clock: Clock) -> Iterator[RunningSandbox]:
    clinic = generate_clinic(3, "small", now=NOW)
    with start_sandbox(create_app("sharecrm", clinic, token_clock=token_clock)) as running:
        yield running


def post(sandbox: RunningSandbox, path: str, body: dict[str, Any]) -> dict[str, Any]:
    reply = requests.post(f"{sandbox.base_url}{path}", json=body, timeout=10)
    assert reply.status_code == 200
    return reply.json()


def token(sandbox: RunningSandbox) -> dict[str, Any]:
    c = sandbox.app.credentials()
    return post(
        sandbox,
        "/cgi/corpAccessToken/get/V2",
        {"appId": c["app_id"], "appSecret": c["app_secret"], "permanentCode": c["permanent_code"]},
    )


def auth(sandbox: RunningSandbox, **extra: Any) -> dict[str, Any]:
    got = token(sandbox)
    operator = sandbox.app.credentials()["operator_open_user_id"]
    return {
        "corpAccessToken": got["corpAccessToken"],
        "corpId": got["corpId"],
        "currentOpenUserId": operator,
        **extra,
    }


def query(
    sandbox: RunningSandbox, api: str = "CasesObj", custom: bool = False, **info: Any
) -> dict[str, Any]:
    search = {
        "limit": 100,
        "offset": 0,
        "filters": [],
        "orders": [{"fieldName": "_id", "isAsc": True}],
        **info,
    }
    body = auth(
        sandbox,
        data={"dataObjectApiName": api, "find_explicit_total_num": False, "search_query_info": search},
    )
    return post(sandbox, f"/cgi/crm{'/custom' if custom else ''}/v2/data/query", body)


def test_token_rules(sandbox: RunningSandbox, token_clock: Clock) -> None:
    first = token(sandbox)
    assert first["errorCode"] == 0 and first["expiresIn"] == 7200 and first["corpId"].startswith("FSCID_")
    token_clock.now += 6000
    same = token(sandbox)
    assert same["corpAccessToken"] == first["corpAccessToken"] and same["expiresIn"] == 1200
    token_clock.now += 700  # 6,700 s: a new token, and the old one still works until 7,200 s
    renewed = token(sandbox)
    assert renewed["corpAccessToken"] != first["corpAccessToken"] and renewed["expiresIn"] == 7200
    old = {"corpAccessToken": first["corpAccessToken"], "corpId": first["corpId"]}
    assert (
        post(sandbox, "/cgi/user/list", {**old, "departmentId": 999999, "fetchChild": True})["errorCode"] == 0
    )
    token_clock.now += 600
    assert post(sandbox, "/cgi/user/list", {**old, "departmentId": 999999})["errorCode"] == 20016
    c = sandbox.app.credentials()
    wrong = {"appId": c["app_id"], "appSecret": "x", "permanentCode": c["permanent_code"]}
    assert post(sandbox, "/cgi/corpAccessToken/get/V2", wrong)["errorCode"] == 10006
    wrong = {"appId": c["app_id"], "appSecret": c["app_secret"], "permanentCode": "x"}
    assert post(sandbox, "/cgi/corpAccessToken/get/V2", wrong)["errorCode"] == 20015


def test_expire_tokens_fault_revokes_every_token(sandbox: RunningSandbox) -> None:
    body = auth(sandbox, departmentId=999999, fetchChild=True)
    sandbox.faults.configure({"expire_tokens": 0})
    assert post(sandbox, "/cgi/user/list", body)["errorCode"] == 20016


def test_query_limits_and_the_offset_cap(sandbox: RunningSandbox) -> None:
    assert query(sandbox, limit=101)["errorCode"] == 15002
    assert query(sandbox, limit=100, offset=50)["errorCode"] == 15002
    assert query(sandbox, limit=100, offset=10_100)["errorCode"] == 10013
    page = query(sandbox, limit=100, offset=200)
    assert page["errorCode"] == 0 and len(page["data"]["dataList"]) == 100 and page["data"]["total"] == 0
    assert sandbox.state()["max_offset"] == 10_100


def test_id_cursor_paging_and_projection(sandbox: RunningSandbox) -> None:
    ids = sorted(sandbox.truth("tickets"))
    page = query(
        sandbox,
        fieldProjection=["_id", "status"],
        filters=[{"field_name": "_id", "operator": "GT", "field_values": [ids[9]]}],
    )
    rows = page["data"]["dataList"]
    assert [r["_id"] for r in rows] == ids[10:110]
    assert all(set(r) <= {"_id", "status"} and "status" in r for r in rows)


def test_operator_checks_and_silent_visibility(sandbox: RunningSandbox) -> None:
    body = auth(
        sandbox, data={"dataObjectApiName": "CasesObj", "search_query_info": {"limit": 100, "offset": 0}}
    )
    assert post(sandbox, "/cgi/crm/v2/data/query", {**body, "currentOpenUserId": None})["errorCode"] == 11008
    assert (
        post(sandbox, "/cgi/crm/v2/data/query", {**body, "currentOpenUserId": "FSUID_" + "0" * 32})[
            "errorCode"
        ]
        == 20012
    )
    staff = next(a for a in sandbox.clinic.agents if not a.admin and a.active)
    mine = post(sandbox, "/cgi/crm/v2/data/query", {**body, "currentOpenUserId": open_user_id(staff.key)})
    owners = {r["owner"][0] for r in mine["data"]["dataList"]}
    assert mine["errorCode"] == 0 and owners <= {open_user_id(staff.key)}  # no error, just less data


def test_custom_objects_only_on_the_custom_path(sandbox: RunningSandbox) -> None:
    assert query(sandbox, api="object_survey__c", custom=True)["errorCode"] == 0
    assert query(sandbox, api="object_survey__c", custom=False)["errorCode"] == 15002
    assert query(sandbox, api="CasesObj", custom=True)["errorCode"] == 15002


def test_invalidated_records_stay_visible_and_hard_deleted_ones_vanish(sandbox: RunningSandbox) -> None:
    ticket = sandbox.clinic.tickets[5]
    gone = sandbox.clinic.tickets[6]
    sandbox.clinic.delete("tickets", ticket.key, hard=False, at=NOW + timedelta(minutes=5))
    sandbox.clinic.delete("tickets", gone.key, hard=True)
    rows = {r["_id"]: r for r in query(sandbox, limit=100)["data"]["dataList"]}
    rows.update({r["_id"]: r for r in query(sandbox, limit=100, offset=100)["data"]["dataList"]})
    rows.update({r["_id"]: r for r in query(sandbox, limit=100, offset=200)["data"]["dataList"]})
    invalid = rows[object_id("tickets", ticket.key, ticket.created)]
    assert invalid["life_status"] == "invalid"
    assert invalid["last_modified_time"] == int((NOW + timedelta(minutes=5)).timestamp() * 1000)
    assert object_id("tickets", gone.key, gone.created) not in rows
    sandbox.app.invalid_visible = False
    assert object_id("tickets", ticket.key, ticket.created) not in {
        r["_id"] for offset in (0, 100, 200) for r in query(sandbox, offset=offset)["data"]["dataList"]
    }


def test_rate_limit_and_daily_quota(token_clock: Clock) -> None:
    clinic = generate_clinic(3, "small", now=NOW)
    app = create_app("sharecrm", clinic, token_clock=token_clock, rate_limit_calls=3, daily_quota=5)
    with start_sandbox(app) as sandbox:
        codes = [query(sandbox, limit=1)["errorCode"] for _ in range(4)]
        assert codes == [0, 0, 0, 30004]
        assert sandbox.counters.max_in_window(20)["POST /cgi/crm/v2/data/query"] == 4
        app.rate_limit_calls = 100
        assert [query(sandbox, limit=1)["errorCode"] for _ in range(3)] == [0, 0, 30002]
        sandbox.advance(hours=24)  # a new clinic day: the quota is back
        assert query(sandbox, limit=1)["errorCode"] == 0
        assert sandbox.state()["rejected"] == {"30002": 1, "30004": 1}


def test_writes_are_typed_and_counted(sandbox: RunningSandbox) -> None:
    operator = sandbox.app.credentials()["operator_open_user_id"]
    data = {
        "dataObjectApiName": "object_perf__c",
        "field_employee__c": [operator],
        "field_score__c": "87.5",
        "field_period__c": "2026-10",
    }
    created = post(
        sandbox,
        "/cgi/crm/custom/v2/data/create",
        auth(sandbox, triggerWorkFlow=False, data={"object_data": data}),
    )
    assert created["errorCode"] == 0 and created["dataId"]
    bad = {**data, "field_score__c": 87.5}
    assert (
        post(sandbox, "/cgi/crm/custom/v2/data/create", auth(sandbox, data={"object_data": bad}))["errorCode"]
        == 15002
    )
    bad = {**data, "field_employee__c": operator}
    assert (
        post(sandbox, "/cgi/crm/custom/v2/data/create", auth(sandbox, data={"object_data": bad}))["errorCode"]
        == 15002
    )
    update = {"dataObjectApiName": "object_perf__c", "_id": created["dataId"], "field_score__c": "90"}
    assert (
        post(sandbox, "/cgi/crm/custom/v2/data/update", auth(sandbox, data={"object_data": update}))[
            "errorCode"
        ]
        == 0
    )
    stored = sandbox.app.written["object_perf__c"][created["dataId"]]
    assert stored["field_score__c"] == "90" and stored["field_period__c"] == "2026-10"
    assert sandbox.counters.events() == {"workflow_triggered": 1}  # the update left triggerWorkFlow out
    found = query(
        sandbox,
        api="object_perf__c",
        custom=True,
        filters=[{"field_name": "field_employee__c", "operator": "IN", "field_values": [operator]}],
    )
    assert [r["_id"] for r in found["data"]["dataList"]] == [created["dataId"]]


def test_faults_answer_like_sharecrm(sandbox: RunningSandbox) -> None:
    sandbox.faults.configure({"rate_limit_burst": 1, "server_error": 2})
    assert query(sandbox)["errorCode"] == 30004
    assert query(sandbox)["errorCode"] == -1
    reply = requests.post(f"{sandbox.base_url}/cgi/crm/v2/data/query", json={}, timeout=10)
    assert reply.status_code == 502
    assert requests.post(f"{sandbox.base_url}/cgi/nothing", json={}, timeout=10).status_code == 404


def test_malformed_rows_are_broken_on_the_way_out_not_in_the_filters(sandbox: RunningSandbox) -> None:
    ids = sorted(sandbox.truth("tickets"))
    after = [{"field_name": "_id", "operator": "GT", "field_values": [ids[0]]}]
    sandbox.faults.configure({"malformed": {"ids": [ids[1]], "kind": "missing_id"}})
    rows = query(sandbox, limit=2, filters=after)["data"]["dataList"]
    assert "_id" not in rows[0] and rows[1]["_id"] == ids[2]  # still found by its real _id
    sandbox.faults.configure({"malformed": {"ids": [ids[1]], "kind": "bad_date"}})
    since = [{"field_name": "last_modified_time", "operator": "GTE", "field_values": [0]}]
    rows = query(sandbox, limit=2, filters=after + since)["data"]["dataList"]
    assert rows[0]["_id"] == ids[1] and rows[0]["last_modified_time"] == "2026-13-45 25:61"
