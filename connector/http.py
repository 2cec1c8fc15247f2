"""The HTTP transport every CRM adapter shares: timeouts, retries, token refresh, call counting.

The transport knows nothing about any CRM. Each adapter passes a *classifier* that turns a reply
into a :class:`Decision` (the CRM knows that Zoho's 401 ``INVALID_TOKEN`` means "refresh" and that
ShareCRM says the same with HTTP 200 and ``errorCode 20016``), and optionally an :class:`Auth` that
puts credentials on each request (a header, or the JSON body) and refreshes them when told to.

Policy, in one place:

* every attempt has a connect and a read timeout, and counts as one API call (``api_calls``);
* ``RETRY`` (5xx, timeouts, dropped connections) and ``RATE_LIMITED`` (429) back off exponentially
  with jitter; a ``Retry-After`` header, when a server sends one, sets the wait instead;
* all waiting for one request is bounded (``max_retry_wait_s``, counted by the injected clock or by
  the waits themselves, whichever is larger), after which :class:`RetryExhausted` is raised;
* ``REFRESH_THEN_RETRY`` refreshes credentials at most once per request, then retries at once; a
  second rejection is an :class:`AuthError`;
* a request that is not idempotent (a plain create) is retried only when the server provably did not
  act on it (rate limited, rejected credentials, connect timeout); otherwise :class:`OutcomeUnknown`.

Errors (httpx style, the whole tree here)::

    TransportError            anything the transport raises; messages never carry secrets
    ├── RetryExhausted        retryable failures outlasted the wait budget (.rate_limited, .attempts)
    ├── OutcomeUnknown        a non-idempotent request failed in a way that may have applied it
    └── FatalApiError         the server refused; retrying unchanged will not help
        └── AuthError         credentials, scopes or the token refresh were refused

Secrets never reach a message: URLs are shown with sensitive query values masked, and any value
sent under a sensitive key (Authorization header, token/secret form or JSON keys) is replaced by
``***`` wherever it appears in an error text. Exceptions from ``requests`` are not chained, so a
traceback cannot leak them either.
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from email.utils import parsedate_to_datetime
from enum import Enum
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlsplit

import orjson
import requests
import tenacity

log = logging.getLogger(__name__)

_SENSITIVE_KEY = re.compile(
    r"token|secret|password|passwd|authorization|api_?key|permanent_?code|^code$|signature", re.I
)
USER_AGENT = "clinic-crm-connector/0.1"


class Decision(Enum):
    """What to do with a reply (the CRM's classifier decides)."""

    OK = "ok"
    RETRY = "retry"
    RATE_LIMITED = "rate_limited"
    REFRESH_THEN_RETRY = "refresh_then_retry"
    FATAL = "fatal"


@dataclass(frozen=True)
class Verdict:
    """A classifier's decision plus the CRM's own words, used in error messages."""

    decision: Decision
    code: str | None = None
    message: str | None = None
    details: Any = None
    hint: str | None = None  # what the admin should do, for fatal errors
    auth: bool = False  # a fatal verdict about credentials or scopes → AuthError


OK = Verdict(Decision.OK)


@dataclass(frozen=True)
class ApiRequest:
    """One request as the adapter describes it; the auth may add to it before it is sent."""

    method: str
    url: str
    params: Mapping[str, Any] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    json: Any = None
    data: Mapping[str, Any] | None = None

    def with_headers(self, **headers: str) -> ApiRequest:
        return replace(self, headers={**self.headers, **headers})


@dataclass(frozen=True)
class Reply:
    """A received response: ``body`` is parsed JSON, ``None`` when empty, else the raw text."""

    status: int
    headers: Mapping[str, str]
    body: Any


Classifier = Callable[[Reply], Verdict]


class Auth(Protocol):
    """Puts credentials on a request; refreshes them when the server rejected ``rejected``."""

    def apply(self, request: ApiRequest) -> ApiRequest: ...

    def refresh(self, rejected: ApiRequest) -> None: ...


class TransportError(Exception):
    """Base of every error the transport raises."""


class RetryExhausted(TransportError):
    """Retryable failures went on past the wait budget."""

    def __init__(self, message: str, *, attempts: int, waited_s: float, rate_limited: bool) -> None:
        super().__init__(message)
        self.attempts = attempts
        self.waited_s = waited_s
        self.rate_limited = rate_limited


class OutcomeUnknown(TransportError):
    """A non-idempotent request failed after it may have reached the server, so it was not retried."""


class FatalApiError(TransportError):
    """The server refused the request; the CRM's ``code``, ``message`` and ``details`` say why."""

    def __init__(
        self,
        code: str | None,
        message: str | None,
        details: Any = None,
        status: int | None = None,
        *,
        text: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(text or f"HTTP {status} {code}: {message}")
        self.code = code
        self.message = message
        self.details = details
        self.status = status
        self.hint = hint


class AuthError(FatalApiError):
    """Credentials, scopes or the token refresh were refused; an admin has to act."""


@dataclass(frozen=True)
class TransportSettings:
    """Timeouts and the retry budget; validated on construction."""

    connect_timeout_s: float = 10.0
    read_timeout_s: float = 60.0
    max_retry_wait_s: float = 300.0
    backoff_initial_s: float = 1.0
    rate_limit_initial_s: float = 5.0
    backoff_max_s: float = 60.0
    concurrency: int = 1

    def __post_init__(self) -> None:
        for name in ("connect_timeout_s", "read_timeout_s", "backoff_initial_s", "rate_limit_initial_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0")
        if self.max_retry_wait_s < 0 or self.backoff_max_s <= 0:
            raise ValueError("max_retry_wait_s must be >= 0 and backoff_max_s > 0")
        if self.concurrency < 1:
            raise ValueError("concurrency must be >= 1")


class _Retry(Exception):
    """Internal: this attempt failed in a retryable way."""

    def __init__(
        self,
        reason: str,
        *,
        rate_limited: bool = False,
        retry_after: float | None = None,
        refreshed: bool = False,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.rate_limited = rate_limited
        self.retry_after = retry_after  # the server's Retry-After, in seconds
        self.refreshed = refreshed  # credentials were just refreshed: retry at once, outside the budget


class Transport:
    """Sends :class:`ApiRequest` s with the policy in the module docstring."""

    def __init__(
        self,
        settings: TransportSettings,
        *,
        sleep: Callable[[float], None],
        clock: Callable[[], datetime],
        session: requests.Session | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self._sleep = sleep
        self._clock = clock
        self._session = session or requests.Session()
        self._session.headers.setdefault("User-Agent", USER_AGENT)
        # requests reads the environment (proxy variables, ~/.netrc, the CA bundle) again on every
        # call, a third of a millisecond here, and its .netrc password would replace our token header.
        # The environment does not change while we run: read it once per origin instead.
        self._session.trust_env = False
        self._verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or None
        self._proxies_by_origin: dict[str, dict[str, str]] = {}
        self._rng = rng or random.Random()
        self._slots = threading.BoundedSemaphore(settings.concurrency)
        self._count_lock = threading.Lock()
        self._api_calls = 0

    @property
    def api_calls(self) -> int:
        """HTTP attempts made so far, failed ones and token requests included."""
        return self._api_calls

    def send(
        self,
        request: ApiRequest,
        *,
        classify: Classifier,
        auth: Auth | None = None,
        idempotent: bool = True,
    ) -> Reply:
        """Send until the classifier says OK; raise a :class:`TransportError` otherwise."""
        state = _SendState(start=self._clock())
        retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(_Retry),
            wait=lambda rs: self._wait(rs, state),
            stop=lambda rs: self._stop(rs, state),
            sleep=self._pause,
            before_sleep=lambda rs: log.warning(
                "retrying %s in %.1f s: %s", describe(request), rs.upcoming_sleep, _failure(rs).reason
            ),
        )
        try:
            for attempt in retrying:
                with attempt:
                    return self._attempt(request, classify, auth, idempotent, state)
        except tenacity.RetryError as exc:
            last = exc.last_attempt.exception()
            assert isinstance(last, _Retry)
            waited = float(retrying.statistics.get("idle_for", 0.0))
            text = (
                f"{describe(request)}: gave up after {exc.last_attempt.attempt_number} attempts and "
                f"{waited:.0f} s of waiting (limit {self.settings.max_retry_wait_s:.0f} s); "
                f"last error: {last.reason}"
            )
            raise RetryExhausted(
                _scrub(text, request),
                attempts=exc.last_attempt.attempt_number,
                waited_s=waited,
                rate_limited=last.rate_limited,
            ) from None
        raise AssertionError("unreachable: tenacity either returns or raises")  # pragma: no cover

    def _attempt(
        self,
        request: ApiRequest,
        classify: Classifier,
        auth: Auth | None,
        idempotent: bool,
        state: _SendState,
    ) -> Reply:
        prepared = auth.apply(request) if auth else request
        reply = self._exchange(prepared, idempotent)
        verdict = classify(reply)
        decision = verdict.decision
        if decision is Decision.OK:
            return reply
        what = _scrub(_verdict_text(reply, verdict), prepared)
        if decision is Decision.REFRESH_THEN_RETRY:
            if auth is None or state.refreshed:
                raise self._fatal(
                    prepared, reply, verdict, "still rejected after refreshing credentials", True
                )
            state.refreshed = True
            auth.refresh(prepared)
            raise _Retry(what, refreshed=True)
        if decision is Decision.RATE_LIMITED:
            raise _Retry(what, rate_limited=True, retry_after=self._retry_after(reply))
        if decision is Decision.RETRY:
            if not idempotent:
                raise OutcomeUnknown(
                    _scrub(f"{describe(request)}: {what}; not retried (not idempotent)", prepared)
                )
            raise _Retry(what, retry_after=self._retry_after(reply))
        raise self._fatal(prepared, reply, verdict, None, verdict.auth)

    def _exchange(self, request: ApiRequest, idempotent: bool) -> Reply:
        timeout = (self.settings.connect_timeout_s, self.settings.read_timeout_s)
        with self._count_lock:
            self._api_calls += 1
        try:
            with self._slots:
                response = self._session.request(
                    request.method,
                    request.url,
                    params=request.params,
                    headers=dict(request.headers),
                    json=request.json,
                    data=request.data,
                    timeout=timeout,
                    allow_redirects=False,
                    proxies=self._proxies(request.url),
                    verify=self._verify,
                )
        except requests.ConnectTimeout as exc:  # never connected: safe to retry any request
            raise _Retry(_scrub(f"{type(exc).__name__}: {exc}", request)) from None
        except (requests.Timeout, requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
            reason = _scrub(f"{type(exc).__name__}: {exc}", request)
            if not idempotent:
                raise OutcomeUnknown(f"{describe(request)}: {reason}; not retried (not idempotent)") from None
            raise _Retry(reason) from None
        return Reply(response.status_code, response.headers, _parse_body(response.content))

    def _proxies(self, url: str) -> dict[str, str]:
        """The environment's proxies for ``url``'s origin (none when ``NO_PROXY`` covers it)."""
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        proxies = self._proxies_by_origin.get(origin)
        if proxies is None:
            proxies = self._proxies_by_origin[origin] = requests.utils.get_environ_proxies(origin)
        return proxies

    def _pause(self, seconds: float) -> None:
        if seconds > 0:  # a retry right after a refresh needs no sleep call at all
            self._sleep(seconds)

    def _retry_after(self, reply: Reply) -> float | None:
        value = reply.headers.get("Retry-After")
        if not value:
            return None
        try:
            return max(0.0, float(value))
        except ValueError:
            pass
        try:
            return max(0.0, (parsedate_to_datetime(value) - self._clock()).total_seconds())
        except (TypeError, ValueError):
            return None

    def _wait(self, rs: tenacity.RetryCallState, state: _SendState) -> float:
        failure = _failure(rs)
        if failure.refreshed:
            return 0.0
        s = self.settings
        initial = s.rate_limit_initial_s if failure.rate_limited else s.backoff_initial_s
        base = min(s.backoff_max_s, initial * 2 ** (rs.attempt_number - 1))
        jittered = base / 2 + self._rng.uniform(0, base / 2)  # "equal jitter": grows, never bunches
        if failure.retry_after is not None and failure.retry_after >= jittered:
            return failure.retry_after  # never earlier than the server asked; _stop gives up if too long
        return max(0.0, min(jittered, s.max_retry_wait_s - self._used(rs, state)))

    def _stop(self, rs: tenacity.RetryCallState, state: _SendState) -> bool:
        if _failure(rs).refreshed:
            return False
        used = self._used(rs, state)
        limit = self.settings.max_retry_wait_s
        return used >= limit or used + rs.upcoming_sleep > limit

    def _used(self, rs: tenacity.RetryCallState, state: _SendState) -> float:
        """Budget spent: time by the injected clock, or the waits so far if that clock stands still."""
        return max((self._clock() - state.start).total_seconds(), rs.idle_for)

    def _fatal(
        self, request: ApiRequest, reply: Reply, verdict: Verdict, prefix: str | None, auth: bool
    ) -> FatalApiError:
        parts = [describe(request) + ":"]
        if prefix:
            parts.append(prefix + ";")
        parts.append(_verdict_text(reply, verdict))
        if verdict.hint:
            parts.append("— " + verdict.hint)
        cls = AuthError if auth else FatalApiError
        return cls(
            verdict.code,
            verdict.message,
            verdict.details,
            reply.status,
            text=_scrub(" ".join(parts), request),
            hint=verdict.hint,
        )


@dataclass
class _SendState:
    start: datetime
    refreshed: bool = False


def _parse_body(content: bytes) -> Any:
    """JSON when the body is JSON (orjson: pages of 100–200 records are parsed on every call)."""
    if not content or not content.strip():
        return None
    try:
        return orjson.loads(content)
    except orjson.JSONDecodeError:
        try:  # what orjson refuses but Python reads, e.g. integers beyond 64 bits
            return json.loads(content)
        except ValueError:
            return content.decode("utf-8", errors="replace")


def _failure(rs: tenacity.RetryCallState) -> _Retry:
    failure = rs.outcome.exception() if rs.outcome else None
    assert isinstance(failure, _Retry)  # tenacity retries only _Retry
    return failure


def _verdict_text(reply: Reply, verdict: Verdict) -> str:
    text = f"HTTP {reply.status}"
    if verdict.code:
        text += f" {verdict.code}"
    if verdict.message:
        text += f": {verdict.message}"
    if verdict.details:
        text += f" {json.dumps(verdict.details, ensure_ascii=False, default=str)}"
    return text


def describe(request: ApiRequest) -> str:
    """``METHOD url`` with sensitive query values masked, for messages and logs."""
    parts = urlsplit(request.url)
    query = parse_qsl(parts.query, keep_blank_values=True) + list((request.params or {}).items())
    shown = "&".join(f"{k}={'***' if _SENSITIVE_KEY.search(str(k)) else v}" for k, v in query)
    base = f"{parts.scheme}://{parts.netloc}{parts.path}" if parts.netloc else parts.path
    return f"{request.method} {base}" + (f"?{shown}" if shown else "")


def _secret_values(request: ApiRequest) -> list[str]:
    """Every value the request carries under a sensitive key (header, query, form or JSON body)."""
    found: list[str] = []
    sources: list[Mapping[str, Any]] = [request.headers, request.params or {}, request.data or {}]
    if isinstance(request.json, Mapping):
        sources.append(request.json)
    sources.append(dict(parse_qsl(urlsplit(request.url).query)))
    for source in sources:
        for key, value in source.items():
            if value and _SENSITIVE_KEY.search(str(key)):
                text = str(value)
                found.append(text)
                found.extend(text.split()[1:])  # the token of "Scheme <token>" on its own
    return sorted(set(found), key=len, reverse=True)


def _scrub(text: str, request: ApiRequest) -> str:
    for value in _secret_values(request):
        if len(value) >= 4:
            text = text.replace(value, "***")
    return text
