"""ShareCRM corp token and operator: body-style auth, caching in the shared cache, renewal near the
end of the token's life, one renewal on 20016, token-endpoint errors, operator lookup by mobile."""

from __future__ import annotations

import json
import uuid
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
import responses
from fake_time import FakeTime
from sharecrm_support import (
    BASE,
    CORP,
    OPERATOR,
    QUERY_URL,
    SECRETS,
    TOKEN,
    TOKEN_URL,
    FakeObject,
    add_token,
    body_of,
    calls_to,
    envelope,
    failure,
    make_adapter,
    rows,
    serve,
)

from adapters.sharecrm.errors import ShareCrmSetupError
from connector.http import AuthError
from connector.store.tokens import CachedToken, MemoryTokenCache

MOBILE_URL = f"{BASE}/cgi/user/getByMobile"
USERS_URL = f"{BASE}/cgi/user/list"


@pytest.fixture
def time() -> FakeTime:
    return FakeTime()


def pull_contacts(adapter: Any) -> list[dict[str, Any]]:
    return [r for page in adapter.pull("contacts", None) for r in page.records]


@responses.activate
def test_token_request_and_body_style_auth_on_every_call(time: FakeTime) -> None:
    add_token()
    serve(FakeObject(rows(3), api_name="ContactObj"))
    adapter = make_adapter(time)
    assert len(pull_contacts(adapter)) == 3
    token_body = body_of(calls_to(TOKEN_URL)[0])
    assert set(token_body) == {"appId", "appSecret", "permanentCode"}
    assert token_body["appId"] == "FSAID_131abc" and token_body["permanentCode"] == SECRETS[1]
    query = body_of(calls_to(QUERY_URL)[0])
    assert query["corpAccessToken"] == TOKEN and query["corpId"] == CORP
    assert query["currentOpenUserId"] == OPERATOR
    assert query["data"]["dataObjectApiName"] == "ContactObj"
    # every attempt carries its own thirdTraceId
    trace_ids = [call.request.params["thirdTraceId"] for call in responses.calls]
    assert len(set(trace_ids)) == len(trace_ids)
    assert all(uuid.UUID(t).version == 4 for t in trace_ids)


@responses.activate
def test_directory_calls_carry_the_token_but_no_operator(time: FakeTime) -> None:
    add_token()
    responses.post(USERS_URL, json=envelope(userList=[]))
    responses.post(f"{BASE}/cgi/department/list", json=envelope(departments=[]))
    list(make_adapter(time).pull("agents", None))
    body = body_of(calls_to(USERS_URL)[0])
    assert body == {"corpAccessToken": TOKEN, "corpId": CORP, "departmentId": 999999, "fetchChild": True}


@responses.activate
def test_token_is_shared_by_two_adapters_through_the_cache(time: FakeTime) -> None:
    add_token()
    serve(FakeObject(rows(2), api_name="ContactObj"))
    cache = MemoryTokenCache()
    pull_contacts(make_adapter(time, tokens=cache))
    time.advance(3000)
    pull_contacts(make_adapter(time, tokens=cache))
    assert len(calls_to(TOKEN_URL)) == 1
    cached = cache.get("clinic_fx")
    assert cached is not None and cached.token == TOKEN
    assert cached.expires_at == FakeTime().now + timedelta(seconds=7200)


@responses.activate
def test_token_is_renewed_inside_the_documented_window_not_before(time: FakeTime) -> None:
    add_token()
    serve(FakeObject(rows(1), api_name="ContactObj"))
    cache = MemoryTokenCache()
    adapter = make_adapter(time, tokens=cache)
    pull_contacts(adapter)
    time.advance(6600)  # still 600 s to live: ShareCRM would hand out the same token anyway
    pull_contacts(adapter)
    assert len(calls_to(TOKEN_URL)) == 1
    time.advance(60)  # 6,660 s: inside the 6,650–7,200 s window where a new token is issued
    responses.replace(
        responses.POST,
        TOKEN_URL,
        json={"errorCode": 0, "corpAccessToken": "NEW" * 8, "corpId": CORP, "expiresIn": 7200},
    )
    pull_contacts(adapter)
    assert len(calls_to(TOKEN_URL)) == 2
    assert body_of(calls_to(QUERY_URL)[-1])["corpAccessToken"] == "NEW" * 8


@responses.activate
def test_remaining_life_from_expires_in_is_respected(time: FakeTime) -> None:
    """A token another app asked for earlier comes back with less life left: expiresIn is what remains."""
    add_token(expires_in=1000)
    serve(FakeObject(rows(1), api_name="ContactObj"))
    cache = MemoryTokenCache()
    adapter = make_adapter(time, tokens=cache)
    pull_contacts(adapter)
    token = cache.get("clinic_fx")
    assert token is not None and token.expires_at == time.now + timedelta(seconds=1000)
    time.advance(1000 - 250 + 1)  # renewal margin is a quarter of a short life (250 s)
    pull_contacts(adapter)
    assert len(calls_to(TOKEN_URL)) == 2


@responses.activate
def test_20016_renews_once_and_retries_once(time: FakeTime) -> None:
    add_token()
    fake = serve(FakeObject(rows(2), api_name="ContactObj"))
    fake.before = lambda n: (
        failure(20016, "the cropId,cropAccessToken or authorization is error") if n == 1 else None
    )
    cache = MemoryTokenCache()
    adapter = make_adapter(time, tokens=cache)
    responses.replace(
        responses.POST,
        TOKEN_URL,
        json={"errorCode": 0, "corpAccessToken": TOKEN, "corpId": CORP, "expiresIn": 7200},
    )
    add_token("RENEWED" * 4)
    assert len(pull_contacts(adapter)) == 2
    assert len(calls_to(TOKEN_URL)) == 2
    assert [b["corpAccessToken"] for b in fake.bodies] == [TOKEN, "RENEWED" * 4]
    assert time.sleeps == []  # a renewal retries at once


@responses.activate
def test_a_second_20016_is_an_auth_error_without_secrets(time: FakeTime) -> None:
    add_token()
    fake = serve(FakeObject(rows(2), api_name="ContactObj"))
    fake.before = lambda n: failure(20016, "corpAccessToken不存在或者已经过期")
    adapter = make_adapter(time)
    with pytest.raises(AuthError) as caught:
        pull_contacts(adapter)
    assert len(fake.bodies) == 2 and len(calls_to(TOKEN_URL)) == 2
    assert "20016" in str(caught.value)
    assert not any(secret in str(caught.value) for secret in SECRETS)


@responses.activate
def test_renewal_reuses_a_token_another_process_stored_meanwhile(time: FakeTime) -> None:
    """20016 on token A, but the shared cache already holds B (another process renewed): no new call."""
    cache = MemoryTokenCache()
    cache.put(
        "clinic_fx",
        CachedToken(
            TOKEN,
            time.now + timedelta(hours=2),
            {"corp_id": CORP, "lifetime_s": 7200, "minted_by": f"{BASE}|FSAID_131abc"},
        ),
    )
    fake = serve(FakeObject(rows(1), api_name="ContactObj"))

    def other_process_renews(n: int) -> dict[str, Any] | None:
        if n == 1:
            cache.put(
                "clinic_fx",
                CachedToken(
                    "B" * 32,
                    time.now + timedelta(hours=2),
                    {"corp_id": CORP, "lifetime_s": 7200, "minted_by": f"{BASE}|FSAID_131abc"},
                ),
            )
            return failure(20016)
        return None

    fake.before = other_process_renews
    assert len(pull_contacts(make_adapter(time, tokens=cache))) == 1
    assert calls_to(TOKEN_URL) == []
    assert fake.bodies[1]["corpAccessToken"] == "B" * 32


class CountingCache(MemoryTokenCache):
    """Records when the refresh lock is held and what ``get`` saw inside it."""

    def __init__(self) -> None:
        super().__init__()
        self.locked = 0
        self.gets_inside_lock = 0
        self._inside = False

    @contextmanager
    def refresh_lock(self, source: str):  # type: ignore[no-untyped-def]
        self.locked += 1
        self._inside = True
        try:
            with super().refresh_lock(source):
                yield
        finally:
            self._inside = False

    def get(self, source: str) -> CachedToken | None:
        if self._inside:
            self.gets_inside_lock += 1
        return super().get(source)


@responses.activate
def test_token_request_holds_the_refresh_lock_and_looks_again_inside(time: FakeTime) -> None:
    add_token()
    serve(FakeObject(rows(1), api_name="ContactObj"))
    cache = CountingCache()
    pull_contacts(make_adapter(time, tokens=cache))
    assert cache.locked == 1 and cache.gets_inside_lock == 1


@responses.activate
def test_a_token_minted_for_another_app_or_host_is_not_reused(time: FakeTime) -> None:
    add_token()
    serve(FakeObject(rows(1), api_name="ContactObj"))
    cache = MemoryTokenCache()
    cache.put(
        "clinic_fx",
        CachedToken(
            "OTHER" * 6,
            time.now + timedelta(hours=2),
            {"corp_id": CORP, "minted_by": "https://open-hws.fxiaoke.com|FSAID_x"},
        ),
    )
    pull_contacts(make_adapter(time, tokens=cache))
    assert len(calls_to(TOKEN_URL)) == 1


@pytest.mark.parametrize(
    ("code", "zh", "en"),
    [
        (10006, "app_secret", "app_secret is wrong"),
        (20006, "app_secret", "app_secret is wrong"),
        (20015, "永久授权码", "permanent_code is wrong"),
    ],
)
@responses.activate
def test_token_endpoint_configuration_errors_are_fatal_in_both_languages(
    time: FakeTime, code: int, zh: str, en: str
) -> None:
    responses.post(TOKEN_URL, json=failure(code, "the parameter appSecret is missing or illegal"))
    with pytest.raises(AuthError) as caught:
        make_adapter(time).client.auth.token()
    text = str(caught.value)
    assert str(code) in text and zh in text and en in text
    assert not any(secret in text for secret in SECRETS)
    assert len(calls_to(TOKEN_URL)) == 1  # never retried


@responses.activate
def test_operator_is_resolved_by_mobile_once(time: FakeTime) -> None:
    add_token()
    responses.post(
        MOBILE_URL,
        json=envelope(
            empList=[
                {
                    "openUserId": "FSUID_" + "A" * 32,
                    "name": "李四",
                    "mobile": "13800000000",
                    "status": "NORMAL",
                }
            ]
        ),
    )
    serve(FakeObject(rows(1), api_name="ContactObj"))
    adapter = make_adapter(time, operator_mobile="13800000000")
    pull_contacts(adapter)
    pull_contacts(adapter)
    lookups = calls_to(MOBILE_URL)
    assert len(lookups) == 1
    assert body_of(lookups[0]) == {"corpAccessToken": TOKEN, "corpId": CORP, "mobile": "13800000000"}
    assert {body_of(c)["currentOpenUserId"] for c in calls_to(QUERY_URL)} == {"FSUID_" + "A" * 32}


@responses.activate
def test_unknown_mobile_is_a_clear_setup_error(time: FakeTime) -> None:
    add_token()
    responses.post(MOBILE_URL, json=envelope(empList=[]))
    with pytest.raises(ShareCrmSetupError) as caught:
        make_adapter(time, operator_mobile="13900000000").client.auth.operator()
    assert "13900000000" in str(caught.value) and "找不到员工" in str(caught.value)
    assert "operator_mobile" in str(caught.value)


@responses.activate
def test_check_reports_token_operator_and_a_probe_read(time: FakeTime) -> None:
    add_token()
    responses.post(MOBILE_URL, json=envelope(empList=[{"openUserId": OPERATOR}]))
    fake = serve(FakeObject(rows(1), api_name="ContactObj"))
    result = make_adapter(time, operator_mobile="13800000000").check()
    assert result.ok, result.detail
    assert result.facts["corp_id"] == CORP and result.facts["operator"] == OPERATOR
    assert result.facts["token_refreshed"] is True and result.api_calls == 3
    assert fake.bodies[0]["data"]["search_query_info"]["limit"] == 1


@responses.activate
def test_check_fails_cleanly_on_a_bad_operator(time: FakeTime) -> None:
    add_token()
    serve(FakeObject(rows(1), api_name="ContactObj")).before = lambda n: failure(
        20012, "openUserId not found"
    )
    result = make_adapter(time).check()
    assert not result.ok
    assert "20012" in result.detail and "CRM管理员" in result.detail and "CRM administrator" in result.detail


def test_options_need_exactly_one_operator_and_the_api_host() -> None:
    from pydantic import ValidationError

    from adapters.sharecrm import ShareCrmOptions

    base = {"app_id": "FSAID_1", "app_secret": "s", "permanent_code": "p"}
    with pytest.raises(ValidationError, match="CRM administrator"):
        ShareCrmOptions.model_validate(base)
    with pytest.raises(ValidationError, match="exactly one"):
        ShareCrmOptions.model_validate({**base, "operator_open_user_id": OPERATOR, "operator_mobile": "1"})
    with pytest.raises(ValidationError, match="not the API"):
        ShareCrmOptions.model_validate(
            {**base, "operator_mobile": "1", "base_url": "https://www.fxiaoke.com"}
        )
    parsed = ShareCrmOptions.model_validate(
        {**base, "operator_mobile": "1", "base_url": "http://127.0.0.1:8080/"}
    )
    assert parsed.base_url == "http://127.0.0.1:8080"
    assert "***" in repr(parsed) or "SecretStr" in repr(parsed)
    assert "s" not in json.dumps(parsed.model_dump(mode="json")["app_secret"]).strip('"*')
