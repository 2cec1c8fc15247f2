"""ShareCRM's corp access token and operator, in the legacy body style (sharecrm.md §1.3–1.4, §2).

The token endpoint allows ten calls a minute and no concurrency, so the token lives in the store's
shared cache and only one process asks for a new one at a time: after taking the cache's refresh
lock it looks again, because the process it waited for has usually just stored a fresh token.

ShareCRM hands out the *same* token for the first 6,600 s of its 7,200 s life and a new one after
that, while the old one keeps working to the end (``expiresIn`` is the remaining life). So a cached
token is used until :data:`RENEW_BEFORE_END` before it ends — inside the 6,650–7,200 s window the
docs recommend, where asking really yields a new token.

Every request carries ``corpAccessToken`` and ``corpId`` at the top of its JSON body, CRM calls also
``currentOpenUserId`` (the operator), and each attempt gets its own ``?thirdTraceId=<uuid4>``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from adapters.sharecrm.errors import ShareCrmSetupError, both, classify
from adapters.sharecrm.options import ShareCrmOptions
from connector.http import ApiRequest, Decision, Reply, Transport, Verdict
from connector.store.tokens import CachedToken, TokenCache

TOKEN_PATH = "/cgi/corpAccessToken/get/V2"
BY_MOBILE_PATH = "/cgi/user/getByMobile"
RENEW_BEFORE_END = timedelta(seconds=550)  # renew at 6,650 s of a 7,200 s token
MAX_LIFETIME_S = 7200.0
#: Paths whose calls run as the operator (everything under the CRM object API).
OPERATOR_PATHS = "/cgi/crm/"


def trace_params(params: Any = None) -> dict[str, Any]:
    """Query parameters plus a fresh ``thirdTraceId``: unique per attempt, as the docs ask."""
    return {**(params or {}), "thirdTraceId": str(uuid.uuid4())}


class CorpTokenAuth:
    """Puts the corp token (and the operator on CRM calls) into each request body; renews the token."""

    def __init__(
        self,
        options: ShareCrmOptions,
        transport: Transport,
        tokens: TokenCache,
        source: str,
        clock: Callable[[], datetime],
    ) -> None:
        self._options = options
        self._transport = transport
        self._tokens = tokens
        self._source = source
        self._clock = clock
        self._minted_by = f"{options.base_url}|{options.app_id}"
        self._current: CachedToken | None = None
        self._operator = options.operator_open_user_id
        self.refreshes = 0  # tokens this instance asked for; check() reports whether it had to

    # ---- token ----------------------------------------------------------------------------------

    def token(self) -> CachedToken:
        """A token with a while to live: this instance's, the shared cache's, or a new one."""
        current = self._current
        if current is not None and self._usable(current):
            return current
        cached = self._tokens.get(self._source)
        if cached is None or not self._usable(cached):
            with self._tokens.refresh_lock(self._source):
                cached = self._tokens.get(self._source)  # another process may have renewed it meanwhile
                if cached is None or not self._usable(cached):
                    cached = self._mint()
        self._current = cached
        return cached

    def refresh(self, rejected: ApiRequest) -> None:
        """ShareCRM rejected the token ``rejected`` carried (20016): renew it unless another process did."""
        spent = (rejected.json or {}).get("corpAccessToken")
        with self._tokens.refresh_lock(self._source):
            cached = self._tokens.get(self._source)
            if cached is None or cached.token == spent or not self._usable(cached):
                self._tokens.invalidate(self._source)
                cached = self._mint()
        self._current = cached

    def _usable(self, token: CachedToken) -> bool:
        if token.extra.get("minted_by") != self._minted_by:
            return False
        lifetime = timedelta(seconds=float(token.extra.get("lifetime_s", MAX_LIFETIME_S)))
        return self._clock() < token.expires_at - min(RENEW_BEFORE_END, lifetime / 4)

    def _mint(self) -> CachedToken:
        options = self._options
        request = ApiRequest(
            "POST",
            options.base_url + TOKEN_PATH,
            params=trace_params(),
            json={
                "appId": options.app_id,
                "appSecret": options.app_secret.get_secret_value(),
                "permanentCode": options.permanent_code.get_secret_value(),
            },
        )
        body = self._transport.send(request, classify=_classify_token).body
        lifetime = min(float(body.get("expiresIn") or MAX_LIFETIME_S), MAX_LIFETIME_S)
        token = CachedToken(
            token=str(body["corpAccessToken"]),
            expires_at=self._clock() + timedelta(seconds=lifetime),
            extra={"corp_id": str(body["corpId"]), "lifetime_s": lifetime, "minted_by": self._minted_by},
        )
        self._tokens.put(self._source, token)
        self.refreshes += 1
        return token

    # ---- operator -------------------------------------------------------------------------------

    def operator(self) -> str:
        """The ``currentOpenUserId``: configured, or looked up once by mobile number."""
        if self._operator is None:
            mobile = self._options.operator_mobile
            assert mobile is not None  # the options model requires one of the two
            request = ApiRequest("POST", self._options.base_url + BY_MOBILE_PATH, json={"mobile": mobile})
            body = self._transport.send(request, classify=classify, auth=self).body
            employees = body.get("empList") or []
            found = next((e.get("openUserId") for e in employees if e.get("openUserId")), None)
            if not found:
                raise ShareCrmSetupError(both("no_operator", mobile=mobile))
            self._operator = str(found)
        return self._operator

    # ---- Auth protocol --------------------------------------------------------------------------

    def apply(self, request: ApiRequest) -> ApiRequest:
        token = self.token()
        body: dict[str, Any] = {
            "corpAccessToken": token.token,
            "corpId": token.extra["corp_id"],
        }
        if OPERATOR_PATHS in request.url:
            body["currentOpenUserId"] = self.operator()
        return replace(request, json={**body, **(request.json or {})}, params=trace_params(request.params))


def _classify_token(reply: Reply) -> Verdict:
    """The token reply is a bare envelope; a success without a token is a gateway fault, not a token."""
    verdict = classify(reply)
    if verdict.decision is Decision.REFRESH_THEN_RETRY:  # no token to renew on the token call itself
        return Verdict(
            Decision.FATAL, verdict.code, verdict.message, verdict.details, hint=verdict.hint, auth=True
        )
    if verdict.decision is Decision.OK:
        body = reply.body
        if not body.get("corpAccessToken") or not body.get("corpId"):
            return Verdict(Decision.RETRY, "NO_TOKEN", "the token reply has no corpAccessToken/corpId")
    return verdict
