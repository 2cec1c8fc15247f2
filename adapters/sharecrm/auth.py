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
from connector.store.tokens import CachedToken, SharedToken, TokenCache

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
        self._shared = SharedToken(
            tokens,
            source,
            owner=f"{options.base_url}|{options.app_id}",
            margin=RENEW_BEFORE_END,
            default_lifetime_s=MAX_LIFETIME_S,
            clock=clock,
            mint=self._mint,
        )
        self._operator = options.operator_open_user_id

    @property
    def refreshes(self) -> int:
        """Tokens this instance asked for; check() reports whether it had to."""
        return self._shared.minted

    # ---- token ----------------------------------------------------------------------------------

    def token(self) -> CachedToken:
        """A token with a while to live: this instance's, the shared cache's, or a new one."""
        return self._shared.get()

    def refresh(self, rejected: ApiRequest) -> None:
        """ShareCRM rejected the token ``rejected`` carried (20016): renew it unless another process did."""
        self._shared.renew(str((rejected.json or {}).get("corpAccessToken")))

    def _mint(self) -> tuple[str, float, dict[str, Any]]:
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
        return str(body["corpAccessToken"]), lifetime, {"corp_id": str(body["corpId"])}

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
