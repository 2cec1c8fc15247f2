"""The local SQL store: open it (migrating to the newest schema), write rows, hold named locks.

Everything else in the connector reaches the database through what this package exports, plus
plain SQLAlchemy Core queries against the tables in :mod:`connector.store.schema`.
"""

from __future__ import annotations

from connector.store import migrate
from connector.store.checkpoint import WalCheckpointer
from connector.store.engine import Store, create_store_engine, sqlite_file
from connector.store.locks import LockBusy, named_lock
from connector.store.sql_tokens import SqlTokenCache
from connector.store.upsert import UpsertCounts, mark_deleted, mark_missing_deleted, upsert

__all__ = [
    "LockBusy",
    "SqlTokenCache",
    "Store",
    "UpsertCounts",
    "mark_deleted",
    "mark_missing_deleted",
    "named_lock",
    "open_store",
    "upsert",
]


def open_store(url: str, *, upgrade: bool = True) -> Store:
    """The store at ``url`` (any SQLAlchemy URL), brought to the newest schema unless told not to."""
    engine = create_store_engine(url)
    path = sqlite_file(engine.url)
    checkpointer = WalCheckpointer.attach(engine, path) if path else None
    if upgrade:
        migrate.upgrade(engine)
    return Store(engine, checkpointer)
