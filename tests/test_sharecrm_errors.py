"""ShareCRM errorCode handling: every documented code's decision, and each path end to end through
the adapter — back-off, retry, bug, quota stop, fatal configuration errors with zh and en text."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest
import requests
import responses
from fake_time import FakeTime
from sharecrm_support import QUERY_URL, SECRETS, FakeObject, add_token, failure, make_adapter, rows, serve

from adapters.sharecrm.errors import QuotaExhausted, classify, next_reset
from connector.adapter import CallBudgetSpent
from connector.http import AuthError, Decision, FatalApiError, Reply, RetryExhausted


@pytest.fixture
def time() -> FakeTime:
    return FakeTime()


def reply(body: object, status: int = 200) -> Reply:
    return Reply(status, {}, body)


@pytest.mark.parametrize(
    ("code", "decision"),
    [
        (0, Decision.OK),
        (20016, Decision.REFRESH_THEN_RETRY),
        (11014, Decision.REFRESH_THEN_RETRY),
        (10014, Decision.REFRESH_THEN_RETRY),
        (30004, Decision.RATE_LIMITED),
        (14001, Decision.RATE_LIMITED),
        (-1, Decision.RETRY),
        (-2, Decision.RETRY),
        (50009, Decision.RETRY),
        (30002, Decision.FATAL),
        (10013, Decision.FATAL),
        (10006, Decision.FATAL),
        (20006, Decision.FATAL),
        (20015, Decision.FATAL),
        (11008, Decision.FATAL),
        (20012, Decision.FATAL),
        (30003, Decision.FATAL),
        (15003, Decision.FATAL),
        (20014, Decision.FATAL),
        (20021, Decision.FATAL),
        (20019, Decision.FATAL),
        (15002, Decision.FATAL),
        (99999, Decision.FATAL),
    ],
)
def test_decision_per_error_code(code: int, decision: Decision) -> None:
    assert classify(reply({"errorCode": code, "errorMessage": "x", "traceId": "T1"})).decision is decision


@pytest.mark.parametrize(
    "message", ["OK", "系统繁忙", "the cropId,cropAccessToken or authorization is error", ""]
)
def test_decisions_never_depend_on_the_message(message: str) -> None:
    assert classify(reply({"errorCode": 0, "errorMessage": message})).decision is Decision.OK
    assert classify(reply({"errorCode": 30004, "errorMessage": message})).decision is Decision.RATE_LIMITED
    assert (
        classify(reply({"errorCode": "20016", "errorMessage": message})).decision
        is Decision.REFRESH_THEN_RETRY
    )


@pytest.mark.parametrize(
    ("code", "zh", "en"),
    [
        (11008, "CRM管理员", "CRM administrator"),
        (20012, "CRM管理员", "CRM administrator"),
        (30003, "资源包", "resource pack"),
        (15003, "IP白名单", "IP whitelist"),
        (20022, "开通所需API权限", "grant its API permissions"),
        (20017, "base_url", "base_url"),
        (10013, "程序缺陷", "this is a bug"),
    ],
)
def test_configuration_codes_carry_a_hint_in_both_languages(code: int, zh: str, en: str) -> None:
    verdict = classify(reply({"errorCode": code, "errorMessage": "x"}))
    assert verdict.hint is not None and zh in verdict.hint and en in verdict.hint


def test_http_level_failures() -> None:
    assert classify(reply("<html>", 502)).decision is Decision.RETRY
    assert classify(reply(None, 429)).decision is Decision.RATE_LIMITED
    redirect = classify(reply("", 302))
    assert redirect.decision is Decision.FATAL and "open.fxiaoke.com" in (redirect.hint or "")
    assert classify(reply("<html>truncated", 200)).decision is Decision.RETRY
    assert classify(reply({"data": {}}, 200)).decision is Decision.RETRY  # no errorCode: not an envelope


@responses.activate
@pytest.mark.parametrize("code", [30004, 14001])
def test_rate_limit_codes_back_off_at_least_a_window(time: FakeTime, code: int) -> None:
    add_token()
    fake = serve(FakeObject(rows(3), api_name="ContactObj"))
    fake.before = lambda n: failure(code, "接口调用频率超限") if n <= 2 else None
    records = [r for page in make_adapter(time).pull("contacts", None) for r in page.records]
    assert len(records) == 3 and len(fake.bodies) == 3
    assert len(time.sleeps) == 2 and all(s >= 20 for s in time.sleeps)


@responses.activate
@pytest.mark.parametrize("code", [-1, -2, 50009])
def test_system_busy_codes_are_retried(time: FakeTime, code: int) -> None:
    add_token()
    fake = serve(FakeObject(rows(3), api_name="ContactObj"))
    fake.before = lambda n: failure(code, "系统繁忙") if n == 1 else None
    records = [r for page in make_adapter(time).pull("contacts", None) for r in page.records]
    assert len(records) == 3 and len(fake.bodies) == 2 and len(time.sleeps) == 1


@responses.activate
def test_retries_stop_at_the_wait_budget(time: FakeTime) -> None:
    add_token()
    serve(FakeObject(rows(3), api_name="ContactObj")).before = lambda n: failure(-1)
    with pytest.raises(RetryExhausted):
        list(make_adapter(time, max_retry_wait_s=60).pull("contacts", None))
    assert sum(time.sleeps) <= 60


@responses.activate
def test_dropped_connections_on_reads_are_retried(time: FakeTime) -> None:
    add_token()
    fake = FakeObject(rows(2), api_name="ContactObj")
    responses.post(QUERY_URL, body=requests.ConnectionError("connection reset"))
    serve(fake)
    records = [r for page in make_adapter(time).pull("contacts", None) for r in page.records]
    assert len(records) == 2


@responses.activate
def test_offset_error_is_reported_as_a_bug(time: FakeTime) -> None:
    add_token()
    serve(FakeObject(rows(2), api_name="ContactObj")).before = lambda n: failure(
        10013, "offset out of range 10000"
    )
    with pytest.raises(FatalApiError) as caught:
        list(make_adapter(time).pull("contacts", None))
    assert caught.value.code == "10013" and "this is a bug" in str(caught.value)


@responses.activate
@pytest.mark.parametrize("code", [11008, 20012, 30003, 15003, 20021])
def test_configuration_errors_stop_the_pull_with_both_languages(time: FakeTime, code: int) -> None:
    add_token()
    fake = serve(FakeObject(rows(2), api_name="ContactObj"))
    fake.before = lambda n: failure(code, "无此操作的数据权限")
    with pytest.raises(FatalApiError) as caught:
        list(make_adapter(time).pull("contacts", None))
    text = str(caught.value)
    assert (
        str(code) in text and " / " in text and any("\u4e00" <= ch <= "\u9fff" for ch in text.split(" / ")[0])
    )
    assert len(fake.bodies) == 1
    assert not any(secret in text for secret in SECRETS)


@responses.activate
def test_trace_id_is_logged(time: FakeTime, caplog: pytest.LogCaptureFixture) -> None:
    add_token()
    serve(FakeObject(rows(1), api_name="ContactObj")).before = lambda n: (
        failure(-1, trace="E-O.clinic.1000-abc123") if n == 1 else None
    )
    with caplog.at_level(logging.WARNING):
        list(make_adapter(time).pull("contacts", None))
    assert "E-O.clinic.1000-abc123" in caplog.text


def test_quota_resets_at_midnight_shanghai() -> None:
    assert next_reset(datetime(2026, 10, 8, 15, 59, tzinfo=UTC)) == datetime(2026, 10, 8, 16, 0, tzinfo=UTC)
    assert next_reset(datetime(2026, 10, 8, 16, 0, tzinfo=UTC)) == datetime(2026, 10, 9, 16, 0, tzinfo=UTC)


@responses.activate
def test_quota_exhaustion_stops_cleanly_keeps_the_cursor_and_spends_no_more_calls(time: FakeTime) -> None:
    add_token()
    fake = serve(FakeObject(rows(250), api_name="ContactObj"))
    fake.before = lambda n: failure(30002, "今日调用次数已用完") if n == 3 else None
    adapter = make_adapter(time)
    pages = adapter.pull("contacts", None)
    committed = [next(pages), next(pages)]
    with pytest.raises(QuotaExhausted) as caught:
        next(pages)
    text = str(caught.value)
    assert "00:00" in text and "Asia/Shanghai" in text and "北京时间" in text and "2026-10-09 00:00" in text
    assert caught.value.resets_at == datetime(2026, 10, 8, 16, 0, tzinfo=UTC)
    assert isinstance(caught.value, CallBudgetSpent)  # so the sync records it stopped, not failed
    assert committed[-1].cursor is not None and committed[-1].cursor["last_id"] == rows(250)[199]["_id"]
    calls = len(responses.calls)
    with pytest.raises(QuotaExhausted):
        list(adapter.pull("tickets", None))
    with pytest.raises(QuotaExhausted):
        list(adapter.deleted("contacts", {"scanned_at": "2000-01-01T00:00:00+00:00"}))
    assert len(responses.calls) == calls  # sticky: no call is wasted on a certain failure


@responses.activate
def test_unknown_code_is_fatal_with_shareCRM_words(time: FakeTime) -> None:
    add_token()
    serve(FakeObject(rows(1), api_name="ContactObj")).before = lambda n: failure(40404, "对象不存在")
    with pytest.raises(FatalApiError) as caught:
        list(make_adapter(time).pull("contacts", None))
    assert not isinstance(caught.value, AuthError)
    assert "40404" in str(caught.value) and "对象不存在" in str(caught.value)
