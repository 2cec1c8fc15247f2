"""Cache of short-lived access tokens, shared between processes through the store.

Zoho lets one refresh token mint only about ten access tokens per ten minutes and ShareCRM's token
endpoint allows ten calls a minute with no concurrency, so every process must reuse the cached token
and only one may refresh at a time. Only access tokens are kept here — never refresh tokens, client
secrets or app secrets.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
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
