"""Zoho pull: fields and sorting, page tokens past 2,000 rows, 204/304, If-Modified-Since cursors,
restarts after the page-token limit, retries, users and deletions."""

from __future__ import annotations

import json
import types
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
import responses
from fake_time import FakeTime
from zoho_support import CRM, add_token, make_adapter, records, zoho_time

from adapters.zoho.errors import ZohoSetupError
from connector.http import FatalApiError, RetryExhausted

TICKET_FIELDS = (
    "Case_Origin,Case_Reason,Created_Time,First_Response_Time,Modified_Time,Owner,Priority,"
    "Related_To,Satisfaction_Score,Status,Subject,Type"
)
BASE = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def time() -> FakeTime:
    return FakeTime()


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value)


def error(status: int, code: str, details: dict[str, Any] | None = None) -> tuple[int, dict[str, str], str]:
    body = {"code": code, "details": details or {}, "message": code.lower(), "status": "error"}
    return status, {}, json.dumps(body)


class FakeModule:
    """A Zoho module behind ``GET /crm/v8/<name>``, paging as zoho.md §2.1 documents.

    Sorted by Modified_Time ascending; ``If-Modified-Since`` filters (exclusive or inclusive); page
    numbers reach 2,000 rows; page tokens are bound to the other parameters and end at
    ``token_limit`` rows; nothing to return is 304 with If-Modified-Since, else 204.
    """

    def __init__(
        self, rows: list[dict[str, Any]], *, token_limit: int = 100_000, inclusive: bool = False
    ) -> None:
        self.rows = rows
        self.token_limit = token_limit
        self.inclusive = inclusive
        self.tokens: dict[str, tuple[Any, int]] = {}
        self.seen: list[tuple[dict[str, str], str | None]] = []

    def __call__(self, request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        params = dict(request.params)  # type: ignore[attr-defined]
        since_text = request.headers.get("If-Modified-Since")
        self.seen.append((dict(params), since_text))
        if "fields" not in params:
            return error(400, "REQUIRED_PARAM_MISSING", {"param_name": "fields"})
        rows = sorted(self.rows, key=lambda r: _time(r["Modified_Time"]))
        if since_text:
            since = _time(since_text)
            rows = [
                r
                for r in rows
                if _time(r["Modified_Time"]) > since
                or (self.inclusive and _time(r["Modified_Time"]) == since)
            ]
        per_page = int(params["per_page"])
        token = params.pop("page_token", None)
        if token:
            bound, offset = self.tokens[token]
            if bound != (params, since_text):
                return error(400, "TOKEN_BOUND_DATA_MISMATCH")
            if offset >= self.token_limit:
                return error(400, "PAGINATION_LIMIT_EXCEEDED", {"param_name": "page_token"})
        else:
            offset = (int(params.get("page", 1)) - 1) * per_page
            if offset >= 2000:
                return error(400, "DISCRETE_PAGINATION_LIMIT_EXCEEDED", {"limit": 2000})
        chunk = rows[offset : offset + per_page]
        if not chunk:
            return (304 if since_text else 204), {}, ""
        more = offset + per_page < len(rows)
        next_token = f"tok{len(self.tokens)}" if more else None
        if next_token:
            self.tokens[next_token] = ((params, since_text), offset + per_page)
        info = {
            "per_page": per_page,
            "count": len(chunk),
            "page": offset // per_page + 1,
            "more_records": more,
            "next_page_token": next_token,
            "sort_by": "Modified_Time",
            "sort_order": "asc",
        }
        return 200, {}, json.dumps({"data": chunk, "info": info})


def serve(module: FakeModule, name: str = "Cases") -> FakeModule:
    responses.add_callback(responses.GET, f"{CRM}/{name}", callback=module)
    return module


@responses.activate
def test_full_pull_sends_fields_paging_and_sort_and_yields_the_latest_time_as_cursor(time: FakeTime) -> None:
    add_token()
    module = serve(FakeModule(records(0, 5)))
    pages = list(make_adapter(time).pull("tickets", None))
    assert len(pages) == 1 and [r["Subject"] for r in pages[0].records] == [f"s{n}" for n in range(5)]
    params, since = module.seen[0]
    assert params == {
        "fields": TICKET_FIELDS,
        "per_page": "200",
        "sort_by": "Modified_Time",
        "sort_order": "asc",
    }
    assert since is None
    assert pages[0].cursor == {"modified_since": (BASE + timedelta(seconds=4)).isoformat()}
    assert pages[0].cursor["modified_since"].endswith("+00:00")


@responses.activate
def test_paging_past_2000_rows_follows_page_tokens_with_unchanged_params(time: FakeTime) -> None:
    add_token()
    module = serve(FakeModule(records(0, 2450)))
    adapter = make_adapter(time)
    pages = list(adapter.pull("tickets", None))
    ids = [r["id"] for page in pages for r in page.records]
    assert len(pages) == 13 and len(ids) == len(set(ids)) == 2450
    first, *rest = module.seen
    assert "page_token" not in first[0] and "page" not in first[0]
    for params, since in rest:
        assert params.pop("page_token").startswith("tok")
        assert (params, since) == first, "only page_token changes between token pages"
    stamps = [_time(p.cursor["modified_since"]) for p in pages]  # type: ignore[index]
    assert stamps == sorted(stamps) and stamps[-1] == BASE + timedelta(seconds=2449)
    assert sum(p.api_calls for p in pages) == adapter.api_calls == 14  # the token plus 13 pages


@responses.activate
def test_incremental_pull_asks_since_the_cursor_minus_the_overlap(time: FakeTime) -> None:
    add_token()
    module = serve(FakeModule(records(0, 300)))
    cursor = {"modified_since": (BASE + timedelta(seconds=250)).isoformat()}
    pages = list(make_adapter(time, overlap_s=30).pull("tickets", cursor))
    assert module.seen[0][1] == (BASE + timedelta(seconds=220)).isoformat()
    assert pages[0].records[0]["Subject"] == "s221"
    assert pages[-1].cursor == {"modified_since": (BASE + timedelta(seconds=299)).isoformat()}


@pytest.mark.parametrize("status", [204, 304])
@responses.activate
def test_no_content_and_not_modified_mean_no_records(time: FakeTime, status: int) -> None:
    add_token()
    responses.get(f"{CRM}/Cases", status=status)
    cursor = {"modified_since": BASE.isoformat()}
    assert list(make_adapter(time).pull("tickets", cursor)) == []


@responses.activate
def test_nothing_modified_gives_304_from_the_fake_and_no_pages(time: FakeTime) -> None:
    add_token()
    serve(FakeModule(records(0, 3)))
    assert (
        list(make_adapter(time).pull("tickets", {"modified_since": (BASE + timedelta(hours=1)).isoformat()}))
        == []
    )


@pytest.mark.parametrize("inclusive", [False, True])
@responses.activate
def test_page_token_limit_restarts_from_the_last_modified_time_without_skipping(
    time: FakeTime, inclusive: bool
) -> None:
    add_token()
    module = serve(FakeModule(records(0, 1000), token_limit=600, inclusive=inclusive))
    pages = list(make_adapter(time).pull("tickets", None))
    ids = {r["id"] for page in pages for r in page.records}
    assert ids == {r["id"] for r in records(0, 1000)}, "no record skipped"
    restart_params, restart_since = module.seen[4]  # tokens ran out on the 4th request
    assert "page_token" not in restart_params
    assert restart_since == (BASE + timedelta(seconds=598)).isoformat()  # last seen 599, minus 1 s
    assert pages[-1].cursor == {"modified_since": (BASE + timedelta(seconds=999)).isoformat()}


@responses.activate
def test_expired_page_token_restarts_too(time: FakeTime) -> None:
    add_token()
    first = records(0, 200)
    responses.get(
        f"{CRM}/Cases", json={"data": first, "info": {"more_records": True, "next_page_token": "t1"}}
    )
    responses.get(
        f"{CRM}/Cases", status=400, json={"code": "EXPIRED_VALUE", "details": {"api_name": "page_token"}}
    )
    responses.get(f"{CRM}/Cases", json={"data": records(199, 50), "info": {"more_records": False}})
    pages = list(make_adapter(time).pull("tickets", None))
    assert [len(p.records) for p in pages] == [200, 50]
    assert (
        responses.calls[-1].request.headers["If-Modified-Since"]
        == (BASE + timedelta(seconds=198)).isoformat()
    )
    assert "page_token" not in responses.calls[-1].request.params


@responses.activate
def test_restart_that_cannot_progress_fails_with_advice(time: FakeTime) -> None:
    add_token()
    same_second = [{**r, "Modified_Time": zoho_time(BASE)} for r in records(0, 1000)]
    serve(FakeModule(same_second, token_limit=400))
    with pytest.raises(FatalApiError) as caught:
        list(make_adapter(time).pull("tickets", None))
    assert caught.value.code == "PAGINATION_LIMIT_EXCEEDED" and "Bulk Read" in str(caught.value)


@responses.activate
def test_page_numbers_are_used_when_zoho_offers_no_token(time: FakeTime) -> None:
    add_token()
    responses.get(
        f"{CRM}/Cases",
        json={"data": records(0, 200), "info": {"more_records": True, "page": 1, "next_page_token": None}},
    )
    responses.get(f"{CRM}/Cases", json={"data": records(200, 10), "info": {"more_records": False, "page": 2}})
    pages = list(make_adapter(time).pull("tickets", None))
    assert [len(p.records) for p in pages] == [200, 10]
    assert responses.calls[-1].request.params["page"] == "2"


@responses.activate
def test_a_repeated_page_token_is_a_loop_not_an_endless_sync(time: FakeTime) -> None:
    add_token()
    responses.get(
        f"{CRM}/Cases",
        json={"data": records(0, 1), "info": {"more_records": True, "next_page_token": "same"}},
    )
    with pytest.raises(FatalApiError) as caught:
        list(make_adapter(time).pull("tickets", None))
    assert caught.value.code == "PAGINATION_LOOP"


@responses.activate
def test_other_client_errors_are_fatal_with_zohos_code_message_and_details(time: FakeTime) -> None:
    add_token()
    body = {
        "code": "INVALID_MODULE",
        "details": {"resource_path_index": 0},
        "message": "the module name given seems to be invalid",
        "status": "error",
    }
    responses.get(f"{CRM}/Cases", status=400, json=body)
    adapter = make_adapter(time)
    with pytest.raises(FatalApiError) as caught:
        list(adapter.pull("tickets", None))
    error = caught.value
    assert (error.code, error.status, error.details) == ("INVALID_MODULE", 400, {"resource_path_index": 0})
    assert "the module name given seems to be invalid" in str(error) and "resource_path_index" in str(error)
    assert adapter.api_calls == 2 and time.sleeps == []


@responses.activate
def test_no_permission_is_fatal_with_advice(time: FakeTime) -> None:
    add_token()
    responses.get(
        f"{CRM}/Cases",
        status=403,
        json={
            "code": "NO_PERMISSION",
            "details": {"permissions": ["Crm_Implied_View_Cases"]},
            "message": "permission denied",
        },
    )
    with pytest.raises(FatalApiError) as caught:
        list(make_adapter(time).pull("tickets", None))
    assert "Crm_Implied_View_Cases" in str(caught.value) and "profile" in str(caught.value)


@responses.activate
def test_rate_limit_exhausted_mid_pull_fails_after_the_committed_page(time: FakeTime) -> None:
    add_token()
    responses.get(
        f"{CRM}/Cases",
        json={"data": records(0, 200), "info": {"more_records": True, "next_page_token": "t1"}},
    )
    responses.get(
        f"{CRM}/Cases", status=429, json={"code": "TOO_MANY_REQUESTS", "details": {}, "message": "limit"}
    )
    got = []
    with pytest.raises(RetryExhausted) as caught:
        for page in make_adapter(time, max_retry_wait_s=120).pull("tickets", None):
            got.append(page)
    assert len(got) == 1 and got[0].cursor == {"modified_since": (BASE + timedelta(seconds=199)).isoformat()}
    assert caught.value.rate_limited
    assert sum(time.sleeps) == pytest.approx(120, abs=1e-3)


@pytest.mark.parametrize("code", ["TOO_MANY_REQUESTS", "RATE_LIMIT_EXCEEDED"])
@responses.activate
def test_rate_limit_codes_back_off_then_succeed(time: FakeTime, code: str) -> None:
    add_token()
    responses.get(f"{CRM}/Cases", status=429, json={"code": code})
    responses.get(f"{CRM}/Cases", status=429, json={"code": code})
    responses.get(f"{CRM}/Cases", json={"data": records(0, 3), "info": {"more_records": False}})
    pages = list(make_adapter(time).pull("tickets", None))
    assert len(pages[0].records) == 3 and pages[0].api_calls == 4  # token + 3 attempts
    assert len(time.sleeps) == 2 and time.sleeps[1] >= time.sleeps[0] and time.sleeps[0] >= 2.5


@responses.activate
def test_server_error_then_success(time: FakeTime) -> None:
    add_token()
    responses.get(f"{CRM}/Cases", status=500, json={"code": "INTERNAL_ERROR"})
    responses.get(f"{CRM}/Cases", json={"data": records(0, 2), "info": {"more_records": False}})
    pages = list(make_adapter(time).pull("tickets", None))
    assert len(pages) == 1 and len(time.sleeps) == 1


@pytest.mark.parametrize(
    "failure", [requests.ReadTimeout("timed out"), requests.ConnectionError("reset by peer")]
)
@responses.activate
def test_timeouts_and_dropped_connections_are_retried(time: FakeTime, failure: Exception) -> None:
    add_token()
    responses.get(f"{CRM}/Cases", body=failure)
    responses.get(f"{CRM}/Cases", json={"data": records(0, 2), "info": {"more_records": False}})
    (page,) = make_adapter(time).pull("tickets", None)
    assert len(page.records) == 2


@responses.activate
def test_truncated_reply_is_retried(time: FakeTime) -> None:
    add_token()
    responses.get(f"{CRM}/Cases", body='{"data": [{"id": "1"')
    responses.get(f"{CRM}/Cases", json={"data": records(0, 1), "info": {"more_records": False}})
    assert len(list(make_adapter(time).pull("tickets", None))) == 1


def _mapping(obj: str, fields: list[str]) -> Any:
    return types.SimpleNamespace(entity="tickets", object=obj, fetch_fields=fields, options={})


def test_more_than_50_fields_is_refused_when_the_adapter_is_built(time: FakeTime) -> None:
    fields = ["id", "$se_module", "Modified_Time"] + [f"Field_{n}" for n in range(50)]
    with pytest.raises(ZohoSetupError) as caught:
        make_adapter(time, mappings={"tickets": _mapping("Cases", fields)})
    text = str(caught.value)
    assert "'tickets'" in text and "Cases" in text and "51 fields" in text and "at most 50" in text


def test_fifty_fields_including_modified_time_are_fine(time: FakeTime) -> None:
    fields = ["id", "$se_module"] + [f"Field_{n}" for n in range(49)]
    make_adapter(time, mappings={"tickets": _mapping("Cases", fields)})


def test_entities_in_sync_order(time: FakeTime) -> None:
    assert list(make_adapter(time).entities()) == ["agents", "contacts", "tickets", "follow_ups", "calls"]


@responses.activate
def test_users_are_read_by_page_number_and_keep_no_cursor(time: FakeTime) -> None:
    add_token()
    page1 = [{"id": str(n), "full_name": f"u{n}", "status": "active"} for n in range(200)]
    responses.get(
        f"{CRM}/users", json={"users": page1, "info": {"more_records": True, "page": 1, "per_page": 200}}
    )
    responses.get(
        f"{CRM}/users",
        json={"users": [{"id": "200", "status": "inactive"}], "info": {"more_records": False, "page": 2}},
    )
    pages = list(make_adapter(time).pull("agents", {"ignored": True}))
    assert [len(p.records) for p in pages] == [200, 1]
    assert all(p.cursor is None for p in pages)
    user_calls = [c.request for c in responses.calls if "/users" in c.request.url]
    assert user_calls[0].params == {"type": "AllUsers", "per_page": "200"}
    assert user_calls[1].params == {"type": "AllUsers", "per_page": "200", "page": "2"}
    assert "If-Modified-Since" not in user_calls[0].headers


@responses.activate
def test_no_users_is_204(time: FakeTime) -> None:
    add_token()
    responses.get(f"{CRM}/users", status=204)
    assert list(make_adapter(time).pull("agents", None)) == []


def test_users_have_no_deletions_stream(time: FakeTime) -> None:
    adapter = make_adapter(time)
    assert list(adapter.deleted("agents", None)) == [] and adapter.api_calls == 0


def _deleted(ids: range, base: datetime = BASE) -> list[dict[str, Any]]:
    return [
        {
            "id": str(n),
            "display_name": f"r{n}",
            "type": "recycle",
            "deleted_time": zoho_time(base + timedelta(minutes=n)),
            "deleted_by": {"name": "A", "id": "9"},
        }
        for n in ids
    ]


@responses.activate
def test_deletions_page_and_move_the_cursor_with_the_last_page(time: FakeTime) -> None:
    add_token()
    responses.get(
        f"{CRM}/Cases/deleted", json={"data": _deleted(range(200)), "info": {"more_records": True, "page": 1}}
    )
    responses.get(
        f"{CRM}/Cases/deleted",
        json={"data": _deleted(range(200, 230)), "info": {"more_records": False, "page": 2}},
    )
    cursor = {"deleted_since": BASE.isoformat()}
    pages = list(make_adapter(time).deleted("tickets", cursor))
    assert [len(p.deleted) for p in pages] == [200, 30]
    assert pages[0].deleted[0] == ("0", BASE) and pages[1].deleted[-1] == (
        "229",
        BASE + timedelta(minutes=229),
    )
    assert pages[0].cursor == cursor, "the old cursor until the listing is complete"
    assert pages[1].cursor == {"deleted_since": (BASE + timedelta(minutes=229)).isoformat()}
    calls = [c.request for c in responses.calls if "/deleted" in c.request.url]
    assert calls[0].params == {"type": "all", "per_page": "200"}
    assert calls[1].params == {"type": "all", "per_page": "200", "page": "2"}
    assert calls[0].headers["If-Modified-Since"] == (BASE - timedelta(seconds=60)).isoformat()


@responses.activate
def test_no_deletions_is_204(time: FakeTime) -> None:
    add_token()
    responses.get(f"{CRM}/Tasks/deleted", status=204)
    assert list(make_adapter(time).deleted("follow_ups", None)) == []


@responses.activate
def test_deletions_past_the_page_limit_restart_when_ordered(time: FakeTime) -> None:
    add_token()
    responses.get(
        f"{CRM}/Cases/deleted", json={"data": _deleted(range(200)), "info": {"more_records": True, "page": 1}}
    )
    responses.get(
        f"{CRM}/Cases/deleted",
        status=400,
        json={"code": "DISCRETE_PAGINATION_LIMIT_EXCEEDED", "details": {"limit": 2000}},
    )
    responses.get(
        f"{CRM}/Cases/deleted", json={"data": _deleted(range(199, 210)), "info": {"more_records": False}}
    )
    pages = list(make_adapter(time).deleted("tickets", None))
    assert {i for p in pages for i, _ in p.deleted} == {str(n) for n in range(210)}
    assert (
        responses.calls[-1].request.headers["If-Modified-Since"]
        == (BASE + timedelta(minutes=199, seconds=-1)).isoformat()
    )
    assert pages[-1].cursor == {"deleted_since": (BASE + timedelta(minutes=209)).isoformat()}


@responses.activate
def test_deletions_past_the_page_limit_unordered_stop_with_what_was_read(time: FakeTime) -> None:
    add_token()
    newest_first = list(reversed(_deleted(range(200))))
    responses.get(
        f"{CRM}/Cases/deleted", json={"data": newest_first, "info": {"more_records": True, "page": 1}}
    )
    responses.get(f"{CRM}/Cases/deleted", status=400, json={"code": "DISCRETE_PAGINATION_LIMIT_EXCEEDED"})
    pages = list(make_adapter(time).deleted("tickets", None))
    assert len(pages) == 1 and len(pages[0].deleted) == 200
    assert pages[0].cursor == {"deleted_since": (BASE + timedelta(minutes=199)).isoformat()}
