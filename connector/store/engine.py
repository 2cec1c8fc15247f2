"""The store handle: one SQLAlchemy engine, set up so SQLite and PostgreSQL behave alike.

SQLite runs in WAL mode so ``status`` can read while ``sync`` writes, with ``synchronous=NORMAL``
(durable at checkpoints, not at every page commit — a crash loses at most the page in flight, which
the sync engine re-fetches from the stored cursor) and a busy timeout so a second writer waits
instead of failing at once.
"""

from __future__ import annotations

import os
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.pool import StaticPool

from connector.store.checkpoint import WalCheckpointer

SQLITE_BUSY_TIMEOUT_MS = 30_000
_SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}",
)


def _apply_sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        for pragma in _SQLITE_PRAGMAS:
            cursor.execute(pragma)
    finally:
        cursor.close()


def is_memory_sqlite(url: URL) -> bool:
    """An in-memory SQLite database: it lives and dies with its one connection, in this process."""
    return (url.database or ":memory:") == ":memory:" or url.query.get("mode") == "memory"


def sqlite_file(url: URL) -> str | None:
    """The database file of a file SQLite URL; None for in-memory SQLite, ``uri=true`` and other databases."""
    if url.get_backend_name() != "sqlite" or is_memory_sqlite(url) or url.query.get("uri"):
        return None
    return os.path.abspath(url.database or "")


def create_store_engine(url: str) -> Engine:
    """An engine for any SQLAlchemy URL; plain ``postgresql://`` means psycopg 3 (our PG driver)."""
    parsed = make_url(url)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() == "sqlite":
        if is_memory_sqlite(parsed):
            # One shared connection: otherwise every thread would see its own empty database.
            kwargs: dict[str, Any] = {"poolclass": StaticPool, "connect_args": {"check_same_thread": False}}
        else:
            kwargs = {}
        engine = sa.create_engine(parsed, **kwargs)
        event.listen(engine, "connect", _apply_sqlite_pragmas)
        return engine
    return sa.create_engine(parsed, pool_pre_ping=True)


@dataclass(frozen=True, eq=False)
class Store:
    """The opened store. ``url`` has its password masked, so it is safe to print and log."""

    engine: Engine
    checkpointer: WalCheckpointer | None = None

    @property
    def url(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    @property
    def dialect(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return self.engine.dialect.name

    @property
    def shares_one_connection(self) -> bool:
        """An in-memory SQLite store: all threads use its one connection, so their work must not overlap."""
        return isinstance(self.engine.pool, StaticPool)

    def begin(self) -> AbstractContextManager[Connection]:
        """A connection in a transaction: committed on normal exit, rolled back on an exception."""
        return self.engine.begin()

    def connect(self) -> Connection:
        return self.engine.connect()

    def dispose(self) -> None:
        if self.checkpointer is not None:
            self.checkpointer.stop()
        self.engine.dispose()

    def __repr__(self) -> str:
        return f"Store({self.url!r})"
