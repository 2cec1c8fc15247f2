"""The shared transport: timeouts, classification, backoff within a budget, refresh once, redaction."""

from __future__ import annotations

import random
from datetime import timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
import requests
import responses
from fake_time import FakeTime

from connector.http import (
    OK,
    ApiRequest,
    AuthError,
    Decision,
    FatalApiError,
    OutcomeUnknown,
    Reply,
    RetryExhausted,
    Transport,
    TransportSettings,
    Verdict,
    describe,
)

URL = "https://api.example.test/things"
SECRET = "1000.s3cr3t-t0ken-value-abcdef"


def classify(reply: Reply) -> Verdict:
    """A small CRM: 2xx fine, 429 rate limited, 5xx retry, 401 refresh, else fatal with the body's code."""
    body = reply.body if isinstance(reply.body, dict) else {}
    if 200 <= reply.status < 300:
        return OK
    if reply.status == 429:
        return Verdict(Decision.RATE_LIMITED, "TOO_MANY")
    if reply.status >= 500:
        return Verdict(Decision.RETRY, body.get("code"))
    if reply.status == 401:
        return Verdict(
            Decision.REFRESH_THEN_RETRY, body.get("code"), body.get("message"), hint="check the data centre"
        )
    return Verdict(Decision.FATAL, body.get("code"), body.get("message"), body.get("details"), hint="fix it")


class HeaderAuth:
    """Bearer-style auth whose token changes on every refresh."""

    def __init__(self) -> None:
        self.token = SECRET
        self.refreshed_for: list[str] = []

    def apply(self, request: ApiRequest) -> ApiRequest:
        return request.with_headers(Authorization=f"Bearer {self.token}")

    def refresh(self, rejected: ApiRequest) -> None:
        self.refreshed_for.append(rejected.headers["Authorization"])
        self.token = SECRET + "-renewed"


def transport(time: FakeTime, **settings: float) -> Transport:
    return Transport(TransportSettings(**settings), sleep=time.sleep, clock=time.clock, rng=random.Random(7))


@pytest.fixture
def time() -> FakeTime:
    return FakeTime()


@responses.activate
def test_ok_reply_is_parsed_and_every_request_has_both_timeouts(time: FakeTime) -> None:
    responses.get(URL, json={"a": 1})
    t = transport(time, connect_timeout_s=3, read_timeout_s=7)
    reply = t.send(ApiRequest("GET", URL, params={"x": "1"}), classify=classify)
    assert reply.status == 200 and reply.body == {"a": 1}
    assert responses.calls[0].request.req_kwargs["timeout"] == (3, 7)
    assert t.api_calls == 1 and time.sleeps == []


@responses.activate
def test_redirects_are_not_followed(time: FakeTime) -> None:
    """A redirect could carry the credentials to another host; the classifier sees it instead."""
    responses.get(URL, status=302, headers={"Location": "https://elsewhere.test/"})
    t = transport(time)
    with pytest.raises(FatalApiError) as caught:
        t.send(ApiRequest("GET", URL), classify=classify)
    assert caught.value.status == 302 and t.api_calls == 1 and len(responses.calls) == 1


@responses.activate
def test_empty_and_non_json_bodies(time: FakeTime) -> None:
    responses.get(URL, status=204)
    responses.get(URL, body="<html>hi</html>")
    t = transport(time)
    assert t.send(ApiRequest("GET", URL), classify=classify).body is None
    assert t.send(ApiRequest("GET", URL), classify=classify).body == "<html>hi</html>"


@responses.activate
def test_server_error_is_retried_then_succeeds(time: FakeTime) -> None:
    responses.get(URL, status=500, json={"code": "INTERNAL_ERROR"})
    responses.get(URL, status=503)
    responses.get(URL, json={"ok": True})
    t = transport(time, backoff_initial_s=1)
    assert t.send(ApiRequest("GET", URL), classify=classify).body == {"ok": True}
    assert t.api_calls == 3
    assert len(time.sleeps) == 2
    assert 0.5 <= time.sleeps[0] <= 1 and 1 <= time.sleeps[1] <= 2  # equal jitter around 1 s, 2 s


@pytest.mark.parametrize(
    "failure", [requests.ReadTimeout("read timed out"), requests.ConnectionError("connection reset")]
)
@responses.activate
def test_timeouts_and_dropped_connections_are_retried(time: FakeTime, failure: Exception) -> None:
    responses.get(URL, body=failure)
    responses.get(URL, json={"ok": True})
    t = transport(time)
    assert t.send(ApiRequest("GET", URL), classify=classify).body == {"ok": True}
    assert t.api_calls == 2 and len(time.sleeps) == 1


@responses.activate
def test_rate_limit_backs_off_growing_jittered_and_bounded_then_fails_cleanly(time: FakeTime) -> None:
    responses.get(URL, status=429, json={"code": "TOO_MANY"})
    t = transport(time, rate_limit_initial_s=5, backoff_max_s=60, max_retry_wait_s=300)
    with pytest.raises(RetryExhausted) as caught:
        t.send(ApiRequest("GET", URL), classify=classify)
    waits = time.sleeps
    for n, wait in enumerate(waits[:4]):  # bases 5, 10, 20, 40 s; equal jitter keeps [base/2, base]
        assert 5 * 2**n / 2 <= wait <= 5 * 2**n
    assert waits[:4] == sorted(waits[:4]), "waits grow until the cap"
    assert all(w <= 60 for w in waits), "capped at backoff_max_s"
    assert len({round(w, 6) for w in waits[4:-1]}) > 1, "jittered at the cap, not in lockstep"
    assert sum(waits) == pytest.approx(300, abs=1e-3), "bounded; the last wait is trimmed to the budget"
    error = caught.value
    assert error.rate_limited and error.attempts == len(waits) + 1 == t.api_calls
    assert "gave up after" in str(error) and "TOO_MANY" in str(error)


@responses.activate
def test_retry_after_seconds_is_honoured(time: FakeTime) -> None:
    responses.get(URL, status=429, headers={"Retry-After": "42"})
    responses.get(URL, json={})
    transport(time).send(ApiRequest("GET", URL), classify=classify)
    assert time.sleeps == [42.0]


@responses.activate
def test_retry_after_http_date_is_measured_with_the_injected_clock(time: FakeTime) -> None:
    responses.get(URL, status=503, headers={"Retry-After": format_datetime(time.now + timedelta(seconds=30))})
    responses.get(URL, json={})
    transport(time).send(ApiRequest("GET", URL), classify=classify)
    assert time.sleeps == [30.0]


@responses.activate
def test_retry_after_beyond_the_budget_gives_up_without_waiting(time: FakeTime) -> None:
    responses.get(URL, status=429, headers={"Retry-After": "3600"})
    t = transport(time, max_retry_wait_s=300)
    with pytest.raises(RetryExhausted):
        t.send(ApiRequest("GET", URL), classify=classify)
    assert time.sleeps == [] and t.api_calls == 1


@responses.activate
def test_time_spent_in_slow_attempts_counts_against_the_budget(time: FakeTime) -> None:
    def slow_failure(request: requests.PreparedRequest) -> tuple[int, dict[str, str], str]:
        time.advance(60)  # each attempt hangs for a minute before failing
        return 502, {}, ""

    responses.add_callback(responses.GET, URL, callback=slow_failure)
    t = transport(time, max_retry_wait_s=100, backoff_initial_s=1)
    with pytest.raises(RetryExhausted):
        t.send(ApiRequest("GET", URL), classify=classify)
    assert t.api_calls == 2  # 60 s + 1 s wait + 60 s > 100 s: no third attempt
    assert sum(time.sleeps) < 5


@responses.activate
def test_no_budget_means_no_retries(time: FakeTime) -> None:
    responses.get(URL, status=500)
    t = transport(time, max_retry_wait_s=0)
    with pytest.raises(RetryExhausted):
        t.send(ApiRequest("GET", URL), classify=classify)
    assert t.api_calls == 1 and time.sleeps == []


@responses.activate
def test_refresh_then_retry_happens_once_and_immediately(time: FakeTime) -> None:
    responses.get(URL, status=401, json={"code": "EXPIRED"})
    responses.get(URL, json={"ok": 1})
    auth = HeaderAuth()
    t = transport(time, max_retry_wait_s=0)  # a refresh is not a backoff retry: no budget needed
    assert t.send(ApiRequest("GET", URL), classify=classify, auth=auth).body == {"ok": 1}
    assert auth.refreshed_for == [f"Bearer {SECRET}"]
    assert responses.calls[1].request.headers["Authorization"] == f"Bearer {SECRET}-renewed"
    assert time.sleeps == [] and t.api_calls == 2


@responses.activate
def test_second_rejection_after_refresh_is_an_auth_error_without_secrets(time: FakeTime) -> None:
    responses.get(URL, status=401, json={"code": "EXPIRED", "message": f"token {SECRET}-renewed is bad"})
    auth = HeaderAuth()
    t = transport(time)
    with pytest.raises(AuthError) as caught:
        t.send(ApiRequest("GET", URL), classify=classify, auth=auth)
    assert len(auth.refreshed_for) == 1 and t.api_calls == 2
    text = str(caught.value)
    assert "still rejected after refreshing" in text and "check the data centre" in text
    assert SECRET not in text and "***" in text


@responses.activate
def test_refresh_needs_an_auth(time: FakeTime) -> None:
    responses.get(URL, status=401, json={"code": "EXPIRED"})
    with pytest.raises(AuthError):
        transport(time).send(ApiRequest("GET", URL), classify=classify)


@responses.activate
def test_fatal_reply_reports_code_message_details_and_is_not_retried(time: FakeTime) -> None:
    responses.get(URL, status=400, json={"code": "INVALID_DATA", "message": "bad", "details": {"f": "x"}})
    t = transport(time)
    with pytest.raises(FatalApiError) as caught:
        t.send(ApiRequest("GET", URL), classify=classify)
    error = caught.value
    assert not isinstance(error, AuthError)
    assert (error.code, error.message, error.details, error.status) == (
        "INVALID_DATA",
        "bad",
        {"f": "x"},
        400,
    )
    assert error.hint == "fix it"
    assert str(error) == 'GET https://api.example.test/things: HTTP 400 INVALID_DATA: bad {"f": "x"} — fix it'
    assert t.api_calls == 1


@responses.activate
def test_auth_verdict_raises_auth_error(time: FakeTime) -> None:
    responses.get(URL, status=403)
    with pytest.raises(AuthError):
        transport(time).send(
            ApiRequest("GET", URL), classify=lambda r: Verdict(Decision.FATAL, "SCOPE", auth=True)
        )


@responses.activate
def test_non_idempotent_request_is_not_retried_when_it_may_have_been_applied(time: FakeTime) -> None:
    responses.post(URL, status=500)
    responses.post(URL, body=requests.ReadTimeout("slow"))
    t = transport(time)
    for _ in range(2):
        with pytest.raises(OutcomeUnknown):
            t.send(ApiRequest("POST", URL, json={}), classify=classify, idempotent=False)
    assert t.api_calls == 2 and time.sleeps == []


@responses.activate
def test_non_idempotent_request_is_retried_when_the_server_did_not_act(time: FakeTime) -> None:
    responses.post(URL, status=429)
    responses.post(URL, body=requests.ConnectTimeout("no route"))
    responses.post(URL, status=201, json={"id": 1})
    t = transport(time)
    reply = t.send(ApiRequest("POST", URL, json={}), classify=classify, idempotent=False)
    assert reply.status == 201 and t.api_calls == 3


@responses.activate
def test_secrets_never_appear_in_errors(time: FakeTime) -> None:
    token_url = "https://accounts.example.test/token"
    responses.post(token_url, body=requests.ConnectionError(f"failed for {token_url}?refresh_token={SECRET}"))
    request = ApiRequest(
        "POST",
        token_url,
        params={"refresh_token": SECRET, "scope": "all"},
        data={"client_secret": "cs-" + SECRET, "client_id": "public-id"},
        headers={"Authorization": f"Zoho-oauthtoken {SECRET}"},
    )
    with pytest.raises(RetryExhausted) as caught:
        transport(time, max_retry_wait_s=1).send(request, classify=classify)
    text = str(caught.value)
    assert SECRET not in text and "cs-" not in text
    assert "refresh_token=***" in text and "scope=all" in text
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_describe_masks_sensitive_query_values() -> None:
    request = ApiRequest("GET", f"{URL}?access_token={SECRET}&page=2", params={"client_secret": "x", "n": 1})
    assert describe(request) == f"GET {URL}?access_token=***&page=2&client_secret=***&n=1"


@pytest.mark.parametrize(
    "settings",
    [{"connect_timeout_s": 0}, {"read_timeout_s": -1}, {"max_retry_wait_s": -1}, {"concurrency": 0}],
)
def test_settings_are_validated(settings: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        TransportSettings(**settings)


PROXY = "http://proxy.clinic.test:3128"


@responses.activate
def test_proxies_and_ca_bundle_come_from_the_environment_once_per_origin(
    time: FakeTime, monkeypatch: pytest.MonkeyPatch
) -> None:
    local = "http://127.0.0.1:9/sandbox"
    responses.get(URL, json={})
    responses.get(local, json={})
    monkeypatch.setenv("HTTPS_PROXY", PROXY)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/clinic/ca.pem")
    t = transport(time)
    t.send(ApiRequest("GET", URL), classify=classify)
    t.send(ApiRequest("GET", local), classify=classify)
    monkeypatch.setenv("HTTPS_PROXY", "http://elsewhere.test:1")  # read once: not seen any more
    t.send(ApiRequest("GET", URL, params={"page": "2"}), classify=classify)
    sent = [call.request.req_kwargs for call in responses.calls]
    assert [kwargs["proxies"].get("https") for kwargs in sent] == [PROXY, None, PROXY]
    assert {kwargs["verify"] for kwargs in sent} == {"/etc/clinic/ca.pem"}


@responses.activate
def test_a_netrc_password_never_replaces_the_token_header(
    time: FakeTime, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text("machine api.example.test login admin password hunter2\n", encoding="utf-8")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    responses.get(URL, json={})
    transport(time).send(ApiRequest("GET", URL), classify=classify, auth=HeaderAuth())
    assert responses.calls[0].request.headers["Authorization"] == f"Bearer {SECRET}"
