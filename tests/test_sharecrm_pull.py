"""ShareCRM pull: ``_id`` paging past the 10,000 offset cap, crash-safe cursors, the watermark,
custom-object routing, employees, and deletions (invalidated rows, id scans)."""

from __future__ import annotations

import json
import math
from datetime import timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
import responses
from fake_time import FakeTime
from sharecrm_support import (
    BASE,
    CUSTOM_QUERY_URL,
    MAPPINGS,
    QUERY_URL,
    TZ,
    FakeObject,
    add_token,
    envelope,
    failure,
    make_adapter,
    ms,
    rows,
    serve,
)

from connector.http import FatalApiError
from connector.mapping import load_mapping

USERS_URL = f"{BASE}/cgi/user/list"
DEPARTMENTS_URL = f"{BASE}/cgi/department/list"


@pytest.fixture
def time() -> FakeTime:
    return FakeTime()


def query_info(body: dict[str, Any]) -> dict[str, Any]:
    return body["data"]["search_query_info"]


def filters_of(body: dict[str, Any]) -> dict[str, tuple[str, list[Any]]]:
    return {f["field_name"]: (f["operator"], f["field_values"]) for f in query_info(body)["filters"]}


@responses.activate
def test_more_than_10000_rows_are_read_without_any_offset(time: FakeTime) -> None:
    add_token()
    fake = serve(FakeObject(rows(12_345)))
    pages = list(make_adapter(time).pull("tickets", None))
    ids = [r["_id"] for page in pages for r in page.records]
    assert ids == [r["_id"] for r in rows(12_345)]  # all, once, in _id order
    assert len(fake.bodies) == math.ceil(12_345 / 100)
    for body in fake.bodies:
        info = query_info(body)
        assert info["offset"] == 0 and info["limit"] == 100
        assert info["orders"] == [{"fieldName": "_id", "isAsc": True}]
        assert body["data"]["find_explicit_total_num"] is False
    assert "_id" not in filters_of(fake.bodies[0])
    assert filters_of(fake.bodies[1])["_id"] == ("GT", [ids[99]])
    assert filters_of(fake.bodies[-1])["_id"] == ("GT", [ids[12_299]])
    assert sum(page.api_calls for page in pages) == len(fake.bodies) + 1  # + the token call


@responses.activate
def test_projection_is_the_mapping_fields_plus_the_cursor_fields(time: FakeTime) -> None:
    add_token()
    fake = serve(FakeObject(rows(1)))
    list(make_adapter(time).pull("tickets", None))
    projection = query_info(fake.bodies[0])["fieldProjection"]
    assert projection == sorted({"_id", "last_modified_time", *MAPPINGS["tickets"].fetch_fields})
    assert {"status", "life_status", "is_deleted", "owner", "created_by"} <= set(projection)


@responses.activate
def test_cursor_of_each_page_and_of_the_finished_run(time: FakeTime) -> None:
    add_token()
    serve(FakeObject(rows(250)))
    pages = list(make_adapter(time).pull("tickets", None))
    run_start = ms(time.now)
    assert [p.cursor for p in pages] == [
        {"since_ms": None, "last_id": rows(250)[99]["_id"], "next_since_ms": run_start},
        {"since_ms": None, "last_id": rows(250)[199]["_id"], "next_since_ms": run_start},
        {"since_ms": run_start},
    ]


@responses.activate
def test_a_run_resumed_after_a_crash_continues_after_the_last_committed_page(time: FakeTime) -> None:
    add_token()
    records = rows(450)
    fake = serve(FakeObject(records))
    pages = make_adapter(time).pull("tickets", {"since_ms": ms(time.now) - 3_600_000})
    committed = [next(pages), next(pages)][-1].cursor  # the process dies here
    time.advance(7200)
    resumed = list(make_adapter(time).pull("tickets", committed))
    assert [r["_id"] for p in resumed for r in p.records] == [r["_id"] for r in records[200:]]
    since_filter = filters_of(fake.bodies[-1])["last_modified_time"]
    assert since_filter == ("GTE", [committed["since_ms"] - 600_000])  # the interrupted run's watermark
    assert resumed[-1].cursor == {"since_ms": committed["next_since_ms"]}  # its start, not the resume time


@responses.activate
def test_incremental_run_reads_from_the_watermark_minus_overlap(time: FakeTime) -> None:
    add_token()
    watermark = ms(time.now) - 86_400_000
    fake = serve(FakeObject(rows(10, modified=time.now - timedelta(days=3), step_s=43_200)))
    pages = list(make_adapter(time, overlap_s=300).pull("tickets", {"since_ms": watermark}))
    assert filters_of(fake.bodies[0]) == {"last_modified_time": ("GTE", [watermark - 300_000])}
    stamps = [r["last_modified_time"] for p in pages for r in p.records]
    assert stamps and min(stamps) >= watermark - 300_000
    assert pages[-1].cursor == {"since_ms": ms(time.now)}


@responses.activate
def test_rows_changed_behind_the_cursor_mid_run_are_read_by_the_next_run(time: FakeTime) -> None:
    add_token()
    records = rows(300, modified=time.now - timedelta(days=2))
    fake = serve(FakeObject(records))

    def edit_an_early_row(n: int) -> None:
        if n == 2:  # while page 2 is being read, someone edits row 5 (already behind the cursor)
            time.advance(30)
            records[5]["last_modified_time"] = ms(time.now)

    fake.before = lambda n: edit_an_early_row(n)  # type: ignore[func-returns-value]
    adapter = make_adapter(time)
    first = list(adapter.pull("tickets", None))
    assert records[5]["_id"] in {r["_id"] for p in first for r in p.records}
    second = list(adapter.pull("tickets", first[-1].cursor))
    assert [r["_id"] for p in second for r in p.records] == [records[5]["_id"]]


@responses.activate
def test_watermark_uses_the_server_clock_when_it_is_earlier(time: FakeTime) -> None:
    add_token()
    server_now = time.now - timedelta(minutes=7)
    fake = FakeObject(rows(3))

    def with_date(request: Any) -> tuple[int, dict[str, str], str]:
        status, headers, body = fake(request)
        return status, {**headers, "Date": format_datetime(server_now, usegmt=True)}, body

    responses.add_callback(responses.POST, QUERY_URL, callback=with_date)
    pages = list(make_adapter(time).pull("tickets", None))
    assert pages[-1].cursor == {"since_ms": ms(server_now)}


@responses.activate
def test_a_gateway_that_caps_the_page_size_is_read_to_the_end(time: FakeTime) -> None:
    add_token()
    fake = serve(FakeObject(rows(130), cap=50))
    ids = [r["_id"] for p in make_adapter(time).pull("tickets", None) for r in p.records]
    assert len(ids) == 130 and len(fake.bodies) == 3


@responses.activate
def test_a_server_ignoring_the_id_filter_is_caught(time: FakeTime) -> None:
    add_token()
    fake = FakeObject(rows(100))
    fake.before = lambda n: envelope(data={"dataList": rows(100), "limit": 100, "offset": 0})
    serve(fake)
    with pytest.raises(FatalApiError, match="_id filter was ignored"):
        list(make_adapter(time).pull("tickets", None))


@responses.activate
def test_an_empty_object_finishes_the_run(time: FakeTime) -> None:
    add_token()
    serve(FakeObject([]))
    pages = list(make_adapter(time).pull("tickets", {"since_ms": 1}))
    assert len(pages) == 1 and pages[0].records == [] and pages[0].cursor == {"since_ms": ms(time.now)}


def surveys_mapping(tmp_path: Path) -> dict[str, Any]:
    path = tmp_path / "fx.toml"
    path.write_text(
        """
extends = "sharecrm"
[entities.surveys]
object = "object_survey__c"
[entities.surveys.columns]
external_id = "_id"
updated_at = { path = "last_modified_time", transform = "epoch_ms" }
score = { path = "field_score__c", transform = "int", required = true }
submitted_at = { path = "create_time", transform = "epoch_ms", required = true }
""",
        encoding="utf-8",
    )
    return load_mapping(path, TZ).entities


@responses.activate
def test_custom_objects_go_through_the_custom_paths(time: FakeTime, tmp_path: Path) -> None:
    add_token()
    custom = serve(FakeObject(rows(3), api_name="object_survey__c"), CUSTOM_QUERY_URL)
    preset = serve(FakeObject(rows(2), api_name="CasesObj"))
    adapter = make_adapter(time, mappings=surveys_mapping(tmp_path))
    assert adapter.entities()[-1] == "surveys"
    assert sum(len(p.records) for p in adapter.pull("surveys", None)) == 3
    assert sum(len(p.records) for p in adapter.pull("tickets", None)) == 2
    assert len(custom.bodies) == 1 and len(preset.bodies) == 1
    assert custom.bodies[0]["data"]["dataObjectApiName"] == "object_survey__c"
    assert {"field_score__c", "create_time"} <= set(query_info(custom.bodies[0])["fieldProjection"])


def user(n: int, **fields: Any) -> dict[str, Any]:
    return {
        "openUserId": f"FSUID_{n:032X}",
        "name": f"员工{n}",
        "mobile": f"1380000{n:04d}",
        "email": f"e{n}@clinic.cn",
        "position": "客户经理",
        "mainDepartmentId": 1001,
        "departmentIds": [1001],
        "isStop": False,
        **fields,
    }


@responses.activate
def test_employees_become_agents_with_stable_version_times(time: FakeTime) -> None:
    add_token()
    users = responses.post(USERS_URL, json=envelope(userList=[user(1), user(2, isStop=True)]))
    responses.post(
        DEPARTMENTS_URL, json=envelope(departments=[{"id": 1001, "name": "客服部", "parentId": 999999}])
    )
    adapter = make_adapter(time)
    (page,) = list(adapter.pull("agents", None))
    mapped = [MAPPINGS["agents"].apply(r) for r in page.records]
    assert [(m["external_id"], m["active"], m["department"], m["role"]) for m in mapped] == [
        (f"FSUID_{1:032X}", True, "客服部", "客户经理"),
        (f"FSUID_{2:032X}", False, "客服部", "客户经理"),
    ]
    assert {m["updated_at"] for m in mapped} == {time.now}
    first_seen = time.now
    time.advance(3600)
    responses.replace(responses.POST, USERS_URL, json=envelope(userList=[user(1), user(2, isStop=False)]))
    (again,) = list(adapter.pull("agents", page.cursor))
    updated = {
        m["external_id"]: m["updated_at"] for m in (MAPPINGS["agents"].apply(r) for r in again.records)
    }
    assert updated == {
        f"FSUID_{1:032X}": first_seen,
        f"FSUID_{2:032X}": time.now,
    }  # only the changed one moves
    assert users.call_count == 1


@responses.activate
def test_agents_keep_department_ids_when_departments_are_not_readable(time: FakeTime) -> None:
    add_token()
    responses.post(USERS_URL, json=envelope(userList=[user(1)]))
    responses.post(DEPARTMENTS_URL, json=failure(20021, "没有权限"))
    (page,) = list(make_adapter(time).pull("agents", None))
    assert MAPPINGS["agents"].apply(page.records[0])["department"] == "1001"


@responses.activate
def test_a_full_pull_stands_in_for_the_id_scan(time: FakeTime) -> None:
    add_token()
    fake = serve(FakeObject(rows(230)))
    adapter = make_adapter(time)
    list(adapter.pull("tickets", None))
    calls = len(fake.bodies)
    (page,) = list(adapter.deleted("tickets", None))
    assert page.complete_ids == frozenset(r["_id"] for r in rows(230))
    assert page.api_calls == 0 and len(fake.bodies) == calls
    assert page.cursor == {"scanned_at": time.now.isoformat()}


@responses.activate
def test_id_scan_runs_when_due_and_lists_every_existing_id(time: FakeTime) -> None:
    add_token()
    records = rows(250)
    fake = serve(FakeObject(records))
    adapter = make_adapter(time)
    recent = {"scanned_at": (time.now - timedelta(hours=23)).isoformat()}
    assert list(adapter.deleted("tickets", recent)) == []
    assert fake.bodies == []
    del records[7]  # hard-deleted: it simply vanishes
    old = {"scanned_at": (time.now - timedelta(hours=25)).isoformat()}
    (page,) = list(adapter.deleted("tickets", old))
    assert page.complete_ids == frozenset(r["_id"] for r in records) and page.deleted == []
    assert len(fake.bodies) == 3 and page.api_calls == 4  # three pages and the token
    assert page.cursor == {"scanned_at": time.now.isoformat()}
    for body in fake.bodies:
        assert query_info(body)["fieldProjection"] == ["_id"] and query_info(body)["offset"] == 0
        assert "last_modified_time" not in filters_of(body)


@responses.activate
def test_id_scan_after_an_incremental_pull_without_a_scan_cursor(time: FakeTime) -> None:
    add_token()
    fake = serve(FakeObject(rows(5)))
    adapter = make_adapter(time, id_scan_interval_hours=0)
    list(adapter.pull("tickets", {"since_ms": ms(time.now)}))
    (page,) = list(adapter.deleted("tickets", None))
    assert page.complete_ids is not None and len(page.complete_ids) == 5
    assert query_info(fake.bodies[-1])["fieldProjection"] == ["_id"]
    (again,) = list(adapter.deleted("tickets", page.cursor))  # interval 0: every sync
    assert again.complete_ids == page.complete_ids


@responses.activate
def test_an_interrupted_full_pull_does_not_pose_as_a_complete_scan(time: FakeTime) -> None:
    add_token()
    serve(FakeObject(rows(300)))
    adapter = make_adapter(time)
    pages = adapter.pull("tickets", None)
    next(pages)
    pages.close()
    (page,) = list(adapter.deleted("tickets", None))
    assert page.complete_ids is not None and len(page.complete_ids) == 300  # it scanned instead
    assert page.api_calls == 4  # three full pages and the empty one that ends them


def test_employees_have_no_deletion_stream(time: FakeTime) -> None:
    assert list(make_adapter(time).deleted("agents", None)) == []


@responses.activate
def test_a_row_without_id_at_the_end_of_a_page_does_not_stop_or_skip(time: FakeTime) -> None:
    add_token()
    records = rows(250)
    fake = FakeObject(records)

    def hide_last_id(request: Any) -> tuple[int, dict[str, str], str]:
        status, headers, text = fake(request)
        body = json.loads(text)
        page = body["data"]["dataList"]
        if len(fake.bodies) == 1:
            del page[-1]["_id"]  # a malformed record: the mapping will quarantine it
        return status, headers, json.dumps(body)

    responses.add_callback(responses.POST, QUERY_URL, callback=hide_last_id)
    pages = list(make_adapter(time).pull("tickets", None))
    assert filters_of(fake.bodies[1])["_id"] == ("GT", [records[98]["_id"]])  # the last id it had
    read = [r.get("_id") for p in pages for r in p.records]
    assert read.count(records[99]["_id"]) == 1 and read.count(None) == 1  # read again whole, nothing lost
    assert {r["_id"] for r in records} <= set(read)
