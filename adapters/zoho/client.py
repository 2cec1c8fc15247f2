"""Zoho's REST API as the pull and push code see it: a path in, a classified reply out."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import requests

from adapters.zoho.auth import ZohoAuth
from adapters.zoho.errors import classify
from adapters.zoho.options import ZohoOptions
from connector.http import ApiRequest, Reply, Transport, TransportSettings
from connector.store.tokens import TokenCache


class ZohoClient:
    """Sends requests to ``{api_domain}/crm/{version}/{path}`` with auth, retries and counting."""

    def __init__(self, transport: Transport, auth: ZohoAuth, api_version: str) -> None:
        self.transport = transport
        self.auth = auth
        self._version = api_version

    @property
    def api_calls(self) -> int:
        return self.transport.api_calls

    def url(self, path: str) -> str:
        return f"{self.auth.api_domain()}/crm/{self._version}/{path.lstrip('/')}"

    def get(
        self, path: str, params: Mapping[str, Any] | None = None, headers: Mapping[str, str] | None = None
    ) -> Reply:
        request = ApiRequest("GET", self.url(path), params=params, headers=dict(headers or {}))
        return self.transport.send(request, classify=classify, auth=self.auth)

    def write(self, method: str, path: str, body: Mapping[str, Any], *, idempotent: bool) -> Reply:
        request = ApiRequest(method, self.url(path), json=body)
        return self.transport.send(request, classify=classify, auth=self.auth, idempotent=idempotent)


def build_client(
    options: ZohoOptions,
    *,
    tokens: TokenCache,
    source: str,
    clock: Callable[[], datetime],
    sleep: Callable[[float], None],
    session: requests.Session | None = None,
) -> ZohoClient:
    """One transport for API and token calls alike, so ``api_calls`` counts both."""
    settings = TransportSettings(
        connect_timeout_s=options.connect_timeout_s,
        read_timeout_s=options.read_timeout_s,
        max_retry_wait_s=options.max_retry_wait_s,
        concurrency=options.concurrency,
    )
    transport = Transport(settings, sleep=sleep, clock=clock, session=session)
    auth = ZohoAuth(options, transport, tokens, source, clock)
    return ZohoClient(transport, auth, options.api_version)
