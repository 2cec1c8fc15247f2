"""Zoho's refresh-token OAuth, with access tokens shared through the store (zoho.md §1.2–1.3).

One refresh token may mint only about ten access tokens per ten minutes, so a token is minted only
when the shared cache holds none that stays valid for :data:`MARGIN` (capped at a quarter of the
token's life), and only one process refreshes at a time: after taking the cache's refresh lock it
looks again, because the process it waited for has usually just stored a fresh token.

A cached token remembers which accounts host and client minted it, so changing the data centre or
the app in the config never reuses a token the new org would reject.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from adapters.zoho.errors import SCOPES
from adapters.zoho.options import ZohoOptions
from connector.http import OK, ApiRequest, Decision, Reply, Transport, Verdict
from connector.store.tokens import CachedToken, SharedToken, TokenCache

HEADER_PREFIX = "Zoho-oauthtoken "
MARGIN = timedelta(minutes=5)
DEFAULT_LIFETIME_S = 3600.0


def _refresh_hint(options: ZohoOptions) -> str:
    return (
        f"Zoho refused the refresh token at {options.accounts_base}. Check that `data_center` "
        f"(now {options.data_center!r}) is the org's data centre and that client_id/client_secret belong "
        f"to the app that issued the token; otherwise the refresh token was revoked — generate a new one "
        f"(API console, Self Client) with the scopes {SCOPES}. If Zoho says too many requests, wait ten "
        f"minutes: a refresh token may mint only about ten access tokens per ten minutes."
    )


def token_lifetime_s(body: dict[str, Any]) -> float:
    """Seconds the token lives; older replies put milliseconds in ``expires_in`` and seconds in
    ``expires_in_sec``."""
    if body.get("expires_in_sec") is not None:
        return float(body["expires_in_sec"])
    value = float(body.get("expires_in") or DEFAULT_LIFETIME_S)
    return value / 1000 if value > 86_400 else value


class ZohoAuth:
    """Adds ``Authorization: Zoho-oauthtoken …`` and refreshes through the shared cache."""

    def __init__(
        self,
        options: ZohoOptions,
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
            owner=f"{options.accounts_base}|{options.client_id}",
            margin=MARGIN,
            default_lifetime_s=DEFAULT_LIFETIME_S,
            clock=clock,
            mint=self._mint,
        )

    @property
    def refreshes(self) -> int:
        """Tokens this instance minted; check() reports whether it had to."""
        return self._shared.minted

    def token(self) -> CachedToken:
        """A token valid for a while yet: this instance's, the shared cache's, or a new one."""
        return self._shared.get()

    def api_domain(self) -> str:
        """Where API calls go: the override, else the domain the token came with."""
        if self._options.api_domain:
            return self._options.api_domain
        return str(self.token().extra.get("api_domain") or self._options.default_api_domain)

    def apply(self, request: ApiRequest) -> ApiRequest:
        return request.with_headers(Authorization=HEADER_PREFIX + self.token().token)

    def refresh(self, rejected: ApiRequest) -> None:
        """Zoho rejected the token ``rejected`` carried: mint one, unless another worker already did."""
        self._shared.renew(rejected.headers.get("Authorization", "").removeprefix(HEADER_PREFIX))

    def _mint(self) -> tuple[str, float, dict[str, Any]]:
        options = self._options
        request = ApiRequest(
            "POST",
            f"{options.accounts_base}/oauth/v2/token",
            data={
                "grant_type": "refresh_token",
                "client_id": options.client_id,
                "client_secret": options.client_secret.get_secret_value(),
                "refresh_token": options.refresh_token.get_secret_value(),
            },
        )
        hint = _refresh_hint(options)
        reply = self._transport.send(request, classify=lambda r: _classify_token(r, hint))
        body = reply.body
        api_domain = str(body.get("api_domain") or options.default_api_domain).rstrip("/")
        return str(body["access_token"]), token_lifetime_s(body), {"api_domain": api_domain}


def _classify_token(reply: Reply, hint: str) -> Verdict:
    """Zoho reports refresh failures as ``{"error": …}`` under 200 or 400 alike (zoho.md §10.1)."""
    body = reply.body if isinstance(reply.body, dict) else {}
    if reply.status >= 500:
        return Verdict(Decision.RETRY, body.get("error"))
    if reply.status == 429:
        return Verdict(Decision.RATE_LIMITED, body.get("error"))
    if "error" in body or not body.get("access_token"):
        code = str(body.get("error") or "NO_ACCESS_TOKEN")
        message = body.get("error_description") or "the token endpoint returned no access_token"
        return Verdict(Decision.FATAL, code, message, hint=hint, auth=True)
    return OK
