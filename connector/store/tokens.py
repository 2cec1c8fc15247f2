"""Cache of short-lived access tokens, shared between processes through the store.

Zoho lets one refresh token mint only about ten access tokens per ten minutes and ShareCRM's token
endpoint allows ten calls a minute with no concurrency, so every process must reuse the cached token
and only one may refresh at a time. Only access tokens are kept here — never refresh tokens, client
secrets or app secrets.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol


@dataclass(frozen=True)
class CachedToken:
    token: str
    expires_at: datetime
    extra: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:  # the token itself must never reach a log line
        return f"CachedToken(token='***', expires_at={self.expires_at.isoformat()}, extra={self.extra!r})"


class TokenCache(Protocol):
    def get(self, source: str) -> CachedToken | None: ...

    def put(self, source: str, token: CachedToken) -> None: ...

    def invalidate(self, source: str) -> None: ...

    def refresh_lock(self, source: str) -> Any:
        """A context manager held while refreshing, so only one process refreshes at a time."""
        ...


class MemoryTokenCache:
    """In-process cache for tests and one-shot tools."""

    def __init__(self) -> None:
        self._tokens: dict[str, CachedToken] = {}
        self._locks: dict[str, threading.Lock] = {}

    def get(self, source: str) -> CachedToken | None:
        return self._tokens.get(source)

    def put(self, source: str, token: CachedToken) -> None:
        self._tokens[source] = token

    def invalidate(self, source: str) -> None:
        self._tokens.pop(source, None)

    @contextmanager
    def refresh_lock(self, source: str) -> Iterator[None]:
        with self._locks.setdefault(source, threading.Lock()):
            yield


class SharedToken:
    """One source's access token: this process's copy, else the shared cache's, else a new one.

    Zoho and ShareCRM both cap how often tokens may be minted, so every adapter goes through here. A
    token is reused until ``margin`` (at most a quarter of its life) before it expires; only one
    process mints at a time, and after waiting for the lock the cache is read again, because another
    process may have minted meanwhile. ``owner`` ties a cached token to the credentials that minted it
    (host, client id), so changed credentials never reuse a stale token.
    """

    def __init__(
        self,
        cache: TokenCache,
        source: str,
        *,
        owner: str,
        margin: timedelta,
        default_lifetime_s: float,
        clock: Callable[[], datetime],
        mint: Callable[[], tuple[str, float, dict[str, Any]]],
    ) -> None:
        self._cache, self._source, self._owner = cache, source, owner
        self._margin, self._default_lifetime_s = margin, default_lifetime_s
        self._clock, self._mint = clock, mint
        self._current: CachedToken | None = None
        self.minted = 0  # tokens this instance minted; check() reports whether it had to

    def get(self) -> CachedToken:
        """A token valid for a while yet."""
        current = self._current
        if current is not None and self._usable(current):
            return current
        cached = self._cache.get(self._source)
        if cached is None or not self._usable(cached):
            with self._cache.refresh_lock(self._source):
                cached = self._cache.get(self._source)
                if cached is None or not self._usable(cached):
                    cached = self._mint_and_share()
        self._current = cached
        return cached

    def renew(self, spent: str) -> CachedToken:
        """The CRM rejected ``spent``: mint a new token, unless another process already did."""
        with self._cache.refresh_lock(self._source):
            cached = self._cache.get(self._source)
            if cached is None or cached.token == spent or not self._usable(cached):
                self._cache.invalidate(self._source)
                cached = self._mint_and_share()
        self._current = cached
        return cached

    def _usable(self, token: CachedToken) -> bool:
        if token.extra.get("minted_by") != self._owner:
            return False
        lifetime = timedelta(seconds=float(token.extra.get("lifetime_s", self._default_lifetime_s)))
        return self._clock() < token.expires_at - min(self._margin, lifetime / 4)

    def _mint_and_share(self) -> CachedToken:
        value, lifetime_s, extra = self._mint()
        token = CachedToken(
            token=value,
            expires_at=self._clock() + timedelta(seconds=lifetime_s),
            extra={**extra, "lifetime_s": lifetime_s, "minted_by": self._owner},
        )
        self._cache.put(self._source, token)
        self.minted += 1
        return token
