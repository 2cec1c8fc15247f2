"""Zoho auth: token refresh and reuse through the shared cache, refresh-once on 401, fatal messages,
data centres, options, and check()."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs

import pytest
import responses
from fake_time import FakeTime
from pydantic import ValidationError
from zoho_support import (
    ACCESS,
    API,
    CLIENT_SECRET,
    CRM,
    REFRESH_TOKEN,
    SECRETS,
    TOKEN_URL,
    add_token,
    make_adapter,
    options,
    token_calls,
    token_reply,
)

from adapters.zoho.options import DATA_CENTERS
from connector.http import AuthError, RetryExhausted
from connector.store.tokens import CachedToken, MemoryTokenCache

CURRENT_USER = {
    "users": [
        {
            "id": "1",
            "full_name": "Asha Rao",
            "email": "asha@example.com",
            "profile": {"name": "Administrator"},
        }
    ]
}


@pytest.fixture
def time() -> FakeTime:
    return FakeTime()


def users_ok() -> None:
    responses.get(f"{CRM}/users", json=CURRENT_USER)


def assert_no_secrets(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text


@responses.activate
def test_first_call_refreshes_with_form_body_and_uses_the_tokens_api_domain(time: FakeTime) -> None:
    add_token(api_domain="https://www.zohoapis.eu")
    users_ok()
    tokens = MemoryTokenCache()
    adapter = make_adapter(time, tokens=tokens)
    assert adapter.check().ok
    form = parse_qs(token_calls()[0].request.body)
    assert form == {
        "grant_type": ["refresh_token"],
        "client_id": ["1000.CLIENTID"],
        "client_secret": [CLIENT_SECRET],
        "refresh_token": [REFRESH_TOKEN],
    }
    assert "?" not in token_calls()[0].request.url, "secrets go in the body, not the URL"
    api_call = responses.calls[1].request
    assert api_call.url.startswith("https://www.zohoapis.eu/crm/v8/users?")
    assert api_call.headers["Authorization"] == f"Zoho-oauthtoken {ACCESS}"
    cached = tokens.get("clinic_zoho")
    assert cached is not None and cached.token == ACCESS
    assert cached.expires_at == time.now + timedelta(seconds=3600)
    assert cached.extra["api_domain"] == "https://www.zohoapis.eu"


@responses.activate
def test_cached_token_is_reused_by_a_second_adapter_without_refreshing(time: FakeTime) -> None:
    add_token()
    users_ok()
    tokens = MemoryTokenCache()
    make_adapter(time, tokens=tokens).check()
    time.advance(50 * 60)  # 50 minutes later: still 10 minutes to go
    second = make_adapter(time, tokens=tokens)
    result = second.check()
    assert result.ok and result.facts["token_refreshed"] is False
    assert len(token_calls()) == 1
    assert second.api_calls == 1


@responses.activate
def test_token_near_expiry_is_refreshed(time: FakeTime) -> None:
    add_token("1000.first")
    add_token("1000.second")
    users_ok()
    tokens = MemoryTokenCache()
    make_adapter(time, tokens=tokens).check()
    time.advance(56 * 60)  # four minutes left: inside the five-minute margin
    make_adapter(time, tokens=tokens).check()
    assert len(token_calls()) == 2
    assert responses.calls[-1].request.headers["Authorization"] == "Zoho-oauthtoken 1000.second"


@responses.activate
def test_short_lived_token_is_still_reused_for_most_of_its_life(time: FakeTime) -> None:
    """A margin larger than the token's life would refresh on every call and exhaust Zoho's quota."""
    add_token(expires_in=120)
    users_ok()
    adapter = make_adapter(time)
    adapter.check()
    time.advance(80)  # 40 s left: more than a quarter of 120 s
    adapter.check()
    assert len(token_calls()) == 1


@pytest.mark.parametrize(
    ("fields", "lifetime"),
    [
        ({"expires_in": 3_600_000, "expires_in_sec": 3600}, 3600),  # legacy: ms plus seconds
        ({"expires_in": 3_600_000}, 3600),  # legacy ms alone
        ({"expires_in": 1800}, 1800),
    ],
)
@responses.activate
def test_expiry_in_seconds_or_legacy_milliseconds(
    time: FakeTime, fields: dict[str, Any], lifetime: int
) -> None:
    responses.post(TOKEN_URL, json={"access_token": ACCESS, "api_domain": API, **fields})
    tokens = MemoryTokenCache()
    token = make_adapter(time, tokens=tokens).client.auth.token()
    assert token.expires_at == time.now + timedelta(seconds=lifetime)


@pytest.mark.parametrize("code", ["INVALID_TOKEN", "AUTHENTICATION_FAILURE"])
@responses.activate
def test_401_refreshes_once_and_retries_once(time: FakeTime, code: str) -> None:
    add_token("1000.old")
    add_token("1000.new")
    responses.get(
        f"{CRM}/users", status=401, json={"code": code, "details": {}, "message": "x", "status": "error"}
    )
    users_ok()
    tokens = MemoryTokenCache()
    adapter = make_adapter(time, tokens=tokens)
    assert adapter.check().ok
    assert len(token_calls()) == 2
    api = [c.request for c in responses.calls if c.request.url.startswith(CRM)]
    assert [r.headers["Authorization"] for r in api] == [
        "Zoho-oauthtoken 1000.old",
        "Zoho-oauthtoken 1000.new",
    ]
    assert tokens.get("clinic_zoho").token == "1000.new"  # type: ignore[union-attr]
    assert time.sleeps == []


@responses.activate
def test_401_after_refresh_is_fatal_and_names_the_data_centre(time: FakeTime) -> None:
    add_token("1000.old")
    add_token("1000.new")
    invalid = {"code": "INVALID_TOKEN", "details": {}, "message": "invalid oauth token", "status": "error"}
    responses.get(f"{CRM}/users", status=401, json=invalid)
    adapter = make_adapter(time)
    with pytest.raises(AuthError) as caught:
        adapter.client.get("users", {"type": "CurrentUser"})
    text = str(caught.value)
    assert caught.value.code == "INVALID_TOKEN" and "data_center" in text
    assert len(token_calls()) == 2 and adapter.api_calls == 4  # token, 401, token, 401
    assert_no_secrets(text)
    assert "1000.new" not in text


@responses.activate
def test_a_token_another_worker_already_refreshed_is_adopted_not_re_minted(time: FakeTime) -> None:
    add_token("1000.old")
    responses.get(f"{CRM}/users", status=401, json={"code": "INVALID_TOKEN"})
    users_ok()
    tokens = MemoryTokenCache()
    adapter = make_adapter(time, tokens=tokens)
    adapter.client.auth.token()
    fresh = CachedToken("1000.fresh", time.now + timedelta(hours=1), dict(tokens.get("clinic_zoho").extra))  # type: ignore[union-attr]
    tokens.put("clinic_zoho", fresh)  # another process refreshed while this one held the old token
    adapter.client.get("users", {"type": "CurrentUser"})
    assert len(token_calls()) == 1
    assert responses.calls[-1].request.headers["Authorization"] == "Zoho-oauthtoken 1000.fresh"


@responses.activate
def test_scope_mismatch_is_fatal_at_once_and_lists_the_scopes(time: FakeTime) -> None:
    add_token()
    body = {"code": "OAUTH_SCOPE_MISMATCH", "details": {}, "message": "Unauthorized", "status": "error"}
    responses.get(f"{CRM}/Cases", status=401, json=body)
    adapter = make_adapter(time)
    with pytest.raises(AuthError) as caught:
        list(adapter.pull("tickets", None))
    text = str(caught.value)
    assert "OAUTH_SCOPE_MISMATCH" in text
    for scope in ("ZohoCRM.modules.ALL", "ZohoCRM.users.READ", "ZohoCRM.settings.fields.READ", "custom.ALL"):
        assert scope in text
    assert len(token_calls()) == 1 and adapter.api_calls == 2
    assert_no_secrets(text)


@pytest.mark.parametrize("status", [200, 400])
@responses.activate
def test_refresh_answered_with_an_error_is_fatal_and_tells_the_admin_what_to_do(
    time: FakeTime, status: int
) -> None:
    responses.post(TOKEN_URL, status=status, json={"error": "invalid_code"})
    adapter = make_adapter(time)
    result = adapter.check()
    assert not result.ok
    with pytest.raises(AuthError) as caught:
        adapter.client.auth.token()
    text = str(caught.value)
    assert caught.value.code == "invalid_code"
    assert (
        "data_center" in text
        and "'eu'" in text
        and "ZohoCRM.modules.ALL" in text
        and "generate a new one" in text
    )
    assert_no_secrets(text)
    assert_no_secrets(result.detail)
    assert_no_secrets(repr(result.facts))


@responses.activate
def test_refresh_without_access_token_is_fatal(time: FakeTime) -> None:
    responses.post(TOKEN_URL, json={"api_domain": API})
    with pytest.raises(AuthError) as caught:
        make_adapter(time).client.auth.token()
    assert caught.value.code == "NO_ACCESS_TOKEN"


@responses.activate
def test_token_endpoint_server_error_is_retried(time: FakeTime) -> None:
    responses.post(TOKEN_URL, status=502)
    add_token()
    assert make_adapter(time).client.auth.token().token == ACCESS
    assert len(token_calls()) == 2 and len(time.sleeps) == 1


@responses.activate
def test_token_endpoint_unreachable_fails_cleanly_without_secrets(time: FakeTime) -> None:
    responses.post(TOKEN_URL, status=503)
    with pytest.raises(RetryExhausted) as caught:
        make_adapter(time, max_retry_wait_s=10).client.auth.token()
    assert_no_secrets(str(caught.value))


class _ContendedCache(MemoryTokenCache):
    """Records every attempt to take the refresh lock, before it blocks."""

    def __init__(self) -> None:
        super().__init__()
        self.attempts = 0
        self.changed = threading.Condition()

    @contextmanager
    def refresh_lock(self, source: str) -> Iterator[None]:
        with self.changed:
            self.attempts += 1
            self.changed.notify_all()
        with super().refresh_lock(source):
            yield


@responses.activate
def test_concurrent_refreshes_are_serialised_and_the_second_reuses_the_first(time: FakeTime) -> None:
    tokens = _ContendedCache()

    def slow_token(request: Any) -> tuple[int, dict[str, str], str]:
        with tokens.changed:  # hold the refresh until the other worker is waiting for the lock
            assert tokens.changed.wait_for(lambda: tokens.attempts >= 2, timeout=10)
        return 200, {}, json.dumps(token_reply())

    responses.add_callback(responses.POST, TOKEN_URL, callback=slow_token)
    adapters = [make_adapter(time, tokens=tokens) for _ in range(2)]
    got: list[str] = []
    threads = [threading.Thread(target=lambda a=a: got.append(a.client.auth.token().token)) for a in adapters]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert got == [ACCESS, ACCESS]
    assert len(token_calls()) == 1


@responses.activate
def test_changing_data_centre_never_reuses_the_old_orgs_token(time: FakeTime) -> None:
    tokens = MemoryTokenCache()
    responses.post("https://accounts.zoho.com/oauth/v2/token", json=token_reply("1000.us"))
    add_token("1000.eu")
    make_adapter(time, tokens=tokens, data_center="us").client.auth.token()
    assert make_adapter(time, tokens=tokens).client.auth.token().token == "1000.eu"


@pytest.mark.parametrize("dc", sorted(DATA_CENTERS))
@responses.activate
def test_each_data_centre_has_its_accounts_host_and_fallback_api_domain(time: FakeTime, dc: str) -> None:
    accounts, api = DATA_CENTERS[dc]
    responses.post(f"{accounts}/oauth/v2/token", json={"access_token": ACCESS, "expires_in": 3600})
    adapter = make_adapter(time, data_center=dc)
    assert adapter.client.auth.api_domain() == api  # the token named no api_domain
    assert adapter.client.url("Cases") == f"{api}/crm/v8/Cases"


def test_data_centre_table_matches_the_fact_sheet() -> None:
    assert DATA_CENTERS["ca"] == ("https://accounts.zohocloud.ca", "https://www.zohoapis.ca")
    assert DATA_CENTERS["sa"] == ("https://accounts.zoho.sa", "https://www.zohoapis.sa")
    assert DATA_CENTERS["au"] == ("https://accounts.zoho.com.au", "https://www.zohoapis.com.au")


@responses.activate
def test_overrides_send_token_and_api_calls_to_the_sandbox(time: FakeTime) -> None:
    responses.post(
        "http://127.0.0.1:9000/oauth/v2/token", json=token_reply(api_domain="https://www.zohoapis.com")
    )
    responses.get("http://127.0.0.1:9000/crm/v8/users", json=CURRENT_USER)
    adapter = make_adapter(time, accounts_url="http://127.0.0.1:9000/", api_domain="http://127.0.0.1:9000")
    result = adapter.check()
    assert result.ok and result.facts["api_domain"] == "http://127.0.0.1:9000"


@responses.activate
def test_check_reports_facts_and_never_a_secret(time: FakeTime) -> None:
    add_token()
    users_ok()
    result = make_adapter(time).check()
    assert result.ok and result.api_calls == 2
    assert result.facts["api_domain"] == API
    assert result.facts["user"] == "Asha Rao" and result.facts["email"] == "asha@example.com"
    assert result.facts["token_refreshed"] is True
    assert responses.calls[1].request.params == {"type": "CurrentUser"}
    assert_no_secrets(repr(result))


def test_options_defaults_and_secret_masking() -> None:
    opts = options()
    assert (opts.api_version, opts.concurrency, opts.overlap_s, opts.max_retry_wait_s) == ("v8", 1, 60, 300.0)
    assert (opts.connect_timeout_s, opts.read_timeout_s) == (10.0, 60.0)
    assert opts.write.trigger == [] and opts.write.duplicate_check_fields == ["Name"]
    assert CLIENT_SECRET not in repr(opts) and REFRESH_TOKEN not in repr(opts)


@pytest.mark.parametrize(
    ("overrides", "problem"),
    [
        ({"concurrency": 6}, "limit of 5"),
        ({"concurrency": 16, "edition": "professional"}, "limit of 15"),
        ({"concurrency": 26, "edition": "ultimate"}, "less than or equal to 25"),
        ({"data_center": "uk"}, "data_center"),
        ({"modules": {"tickets": "Cases"}}, "Extra inputs"),
        ({"accounts_url": "accounts.zoho.eu"}, "https://"),
        ({"write": {"trigger": ["everything"]}}, "trigger"),
    ],
)
def test_invalid_options_are_rejected(overrides: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValidationError) as caught:
        options(**overrides)
    assert problem in str(caught.value)


def test_edition_raises_the_concurrency_cap() -> None:
    assert options(concurrency=20, edition="enterprise").concurrency == 20
