"""ShareCRM's API as the pull and push code see it: a path and a body in, a checked envelope out.

One transport carries token, directory and CRM calls alike, so ``api_calls`` counts all of them, and
its session passes every attempt through the per-endpoint limiter.

A spent daily quota (30002) is sticky: once seen, every later call of this client fails at once with
the same :class:`QuotaExhausted`, so the rest of a sync spends no calls on certain failures.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from adapters.sharecrm.auth import CorpTokenAuth
from adapters.sharecrm.errors import QUOTA_CODE, QuotaExhausted, classify, next_reset
from adapters.sharecrm.limiter import EndpointLimiter, LimitedSession
from adapters.sharecrm.options import ShareCrmOptions
from connector.http import ApiRequest, FatalApiError, Reply, Transport, TransportSettings
from connector.store.tokens import TokenCache

PRESET_DATA = "/cgi/crm/v2/data/"
CUSTOM_DATA = "/cgi/crm/custom/v2/data/"


def is_custom(api_name: str) -> bool:
    """Custom objects (API name ending ``__c``) have their own paths (sharecrm.md §3.1)."""
    return api_name.endswith("__c")


def data_path(api_name: str, action: str) -> str:
    """``/cgi/crm/v2/data/<action>`` for preset objects, ``/cgi/crm/custom/v2/data/<action>`` for custom."""
    return (CUSTOM_DATA if is_custom(api_name) else PRESET_DATA) + action


class ShareCrmClient:
    """POSTs JSON to ``{base_url}{path}`` with auth, limits, retries, counting and the quota stop."""

    def __init__(
        self,
        base_url: str,
        transport: Transport,
        auth: CorpTokenAuth,
        limiter: EndpointLimiter,
        clock: Callable[[], datetime],
    ) -> None:
        self.base_url = base_url
        self.transport = transport
        self.auth = auth
        self.limiter = limiter
        self._clock = clock
        self._quota: QuotaExhausted | None = None
        self.server_time: datetime | None = None  # from the last reply's Date header, if it had one

    @property
    def api_calls(self) -> int:
        return self.transport.api_calls

    def post(self, path: str, body: Mapping[str, Any], *, idempotent: bool = True) -> dict[str, Any]:
        """The reply envelope of a successful call; raises a transport error (or QuotaExhausted)."""
        if self._quota is not None:
            raise self._quota
        request = ApiRequest("POST", self.base_url + path, json=dict(body))
        try:
            reply = self.transport.send(request, classify=classify, auth=self.auth, idempotent=idempotent)
        except FatalApiError as exc:
            if exc.code == str(QUOTA_CODE):
                trace = exc.details.get("traceId") if isinstance(exc.details, dict) else None
                self._quota = QuotaExhausted(next_reset(self._clock()), trace)
                raise self._quota from None
            raise
        self.server_time = _server_time(reply)
        return reply.body


def _server_time(reply: Reply) -> datetime | None:
    value = reply.headers.get("Date")
    if not value:
        return None
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return parsed.astimezone(UTC) if parsed.tzinfo else None


def build_client(
    options: ShareCrmOptions,
    *,
    tokens: TokenCache,
    source: str,
    clock: Callable[[], datetime],
    sleep: Callable[[float], None],
) -> ShareCrmClient:
    """One limited session and transport for every call; 30004 backs off a window or more."""
    limiter = EndpointLimiter(options.rate_limit_calls, options.rate_limit_window_s, clock=clock, sleep=sleep)
    settings = TransportSettings(
        connect_timeout_s=options.connect_timeout_s,
        read_timeout_s=options.read_timeout_s,
        max_retry_wait_s=options.max_retry_wait_s,
        rate_limit_initial_s=2 * options.rate_limit_window_s,  # equal jitter: first wait 1–2 windows
    )
    transport = Transport(settings, sleep=sleep, clock=clock, session=LimitedSession(limiter))
    auth = CorpTokenAuth(options, transport, tokens, source, clock)
    return ShareCrmClient(options.base_url, transport, auth, limiter, clock)
