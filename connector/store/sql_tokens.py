"""The token cache shared by every process through the store's ``auth_tokens`` table.

Each call is its own short transaction, so a token obtained by the scheduler is visible at once to a
CLI command in another process; ``refresh_lock`` serialises refreshes across processes, because the
CRMs' token endpoints are rate limited far below what parallel refreshes would need.
"""

from __future__ import annotations

import json
from contextlib import AbstractContextManager

import sqlalchemy as sa

from connector.clock import Clock, system_clock
from connector.store.engine import Store
from connector.store.locks import named_lock
from connector.store.schema import auth_tokens
from connector.store.tokens import CachedToken


class SqlTokenCache:
    """:class:`connector.store.tokens.TokenCache` backed by the store."""

    def __init__(self, store: Store, clock: Clock | None = None) -> None:
        self._store = store
        self._clock = clock or system_clock()

    def get(self, source: str) -> CachedToken | None:
        query = sa.select(auth_tokens.c.token, auth_tokens.c.expires_at, auth_tokens.c.extra).where(
            auth_tokens.c.source == source
        )
        with self._store.connect() as conn:
            row = conn.execute(query).first()
        if row is None:
            return None
        return CachedToken(row.token, row.expires_at, json.loads(row.extra) if row.extra else {})

    def put(self, source: str, token: CachedToken) -> None:
        with self._store.begin() as conn:
            conn.execute(sa.delete(auth_tokens).where(auth_tokens.c.source == source))
            conn.execute(
                sa.insert(auth_tokens).values(
                    source=source,
                    token=token.token,
                    extra=json.dumps(token.extra, sort_keys=True) if token.extra else None,
                    expires_at=token.expires_at,
                    obtained_at=self._clock(),
                )
            )

    def invalidate(self, source: str) -> None:
        with self._store.begin() as conn:
            conn.execute(sa.delete(auth_tokens).where(auth_tokens.c.source == source))

    def refresh_lock(self, source: str) -> AbstractContextManager[None]:
        return named_lock(self._store, f"token-refresh:{source}")
