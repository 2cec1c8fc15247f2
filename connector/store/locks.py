"""Named locks that keep two processes (scheduler, a manual ``sync``, a token refresh) apart.

The lock itself lives where the operating system or the database releases it when its holder dies,
so a crashed process never leaves a stale lock behind:

- PostgreSQL: a session-level advisory lock on a dedicated connection (key: a stable hash of the name).
- SQLite file: ``flock`` on ``<dbfile>.<name>.lock`` next to the database (``flock`` rather than POSIX
  record locks, so two threads of one process exclude each other too).
- SQLite in memory: a process-wide ``threading.Lock`` (nothing else can open that database).

The ``locks`` table only *records* who holds what (hostname:pid), for ``status`` and for
:class:`LockBusy`; it is never the source of truth. Locks are not re-entrant.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from connector.clock import Clock, system_clock
from connector.store.engine import Store, is_memory_sqlite
from connector.store.schema import locks

log = logging.getLogger(__name__)

#: How often a waiting ``named_lock(..., timeout=...)`` retries.
POLL_SECONDS = 0.25


class LockBusy(Exception):
    """The lock is held elsewhere and the caller chose not to wait (longer)."""

    def __init__(self, name: str, holder: str | None) -> None:
        super().__init__(f"lock {name!r} is held by {holder or 'another process'}")
        self.name = name
        self.holder = holder


class _Primitive(Protocol):
    def try_acquire(self) -> bool: ...

    def acquire(self) -> None: ...

    def release(self) -> None: ...


class _FileLock:
    def __init__(self, path: Path) -> None:
        self._path = path
        self._fd: int | None = None

    def _lock(self, flags: int) -> bool:
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, flags)
        except BlockingIOError:
            os.close(fd)
            return False
        except BaseException:  # e.g. Ctrl-C while blocked: do not leak the descriptor
            os.close(fd)
            raise
        self._fd = fd
        return True

    def try_acquire(self) -> bool:
        return self._lock(fcntl.LOCK_EX | fcntl.LOCK_NB)

    def acquire(self) -> None:
        self._lock(fcntl.LOCK_EX)

    def release(self) -> None:
        assert self._fd is not None
        fd, self._fd = self._fd, None
        # The file stays: unlinking it would let a waiter lock a file nobody else can open any more.
        os.close(fd)  # closing the last descriptor drops the flock


_MEMORY_LOCKS: dict[tuple[str, str], threading.Lock] = {}
_MEMORY_LOCKS_GUARD = threading.Lock()


class _ThreadLock:
    def __init__(self, key: tuple[str, str]) -> None:
        with _MEMORY_LOCKS_GUARD:
            self._lock = _MEMORY_LOCKS.setdefault(key, threading.Lock())

    def try_acquire(self) -> bool:
        return self._lock.acquire(blocking=False)

    def acquire(self) -> None:
        self._lock.acquire()

    def release(self) -> None:
        self._lock.release()


def _advisory_key(name: str) -> int:
    """A signed 64-bit key, stable across processes and Python versions (unlike ``hash``)."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True)


class _AdvisoryLock:
    def __init__(self, engine: Engine, name: str) -> None:
        self._engine = engine
        self._key = _advisory_key(name)
        self._conn: Connection | None = None

    def _call(self, function: str) -> bool:
        conn = self._engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            got = conn.execute(sa.text(f"SELECT {function}(:key)"), {"key": self._key}).scalar()
        except BaseException:
            conn.close()
            raise
        if got is False:
            conn.close()
            return False
        self._conn = conn
        return True

    def try_acquire(self) -> bool:
        return self._call("pg_try_advisory_lock")

    def acquire(self) -> None:
        self._call("pg_advisory_lock")

    def release(self) -> None:
        assert self._conn is not None
        conn, self._conn = self._conn, None
        try:
            conn.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": self._key})
        except SQLAlchemyError as exc:
            # A broken session has lost the lock already; drop the connection so the pool never
            # hands out a session that might still hold it.
            log.warning("advisory unlock failed, discarding the connection: %s", exc)
            conn.invalidate()
        finally:
            conn.close()


def _sanitise(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)


def _primitive(engine: Engine, name: str) -> _Primitive:
    url = engine.url
    if engine.dialect.name == "postgresql":
        return _AdvisoryLock(engine, name)
    if engine.dialect.name != "sqlite":
        raise NotImplementedError(f"named locks are not implemented for {engine.dialect.name}")
    if is_memory_sqlite(url):
        return _ThreadLock((url.render_as_string(hide_password=True), name))
    return _FileLock(Path(f"{url.database}.{_sanitise(name)}.lock"))


@contextmanager
def engine_lock(
    engine: Engine,
    name: str,
    *,
    wait: bool = True,
    timeout: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    holder: Callable[[], str | None] = lambda: None,
) -> Iterator[None]:
    """The bare lock, without the ``locks`` row: for migrations, which run before that table exists."""
    lock = _primitive(engine, name)
    if wait and timeout is None:
        lock.acquire()
    else:
        deadline = clock() + (timeout or 0.0) if wait else None
        while not lock.try_acquire():
            if deadline is None or clock() >= deadline:
                raise LockBusy(name, holder())
            sleep(min(POLL_SECONDS, max(deadline - clock(), 0.0)))
    try:
        yield
    finally:
        lock.release()


def current_holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def lock_holder(store: Store, name: str) -> str | None:
    """Who the ``locks`` table says holds ``name`` (may be stale if that process crashed)."""
    with store.connect() as conn:
        return conn.execute(sa.select(locks.c.holder).where(locks.c.name == name)).scalar()


@contextmanager
def named_lock(
    store: Store,
    name: str,
    *,
    wait: bool = True,
    timeout: float | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    now: Clock | None = None,
) -> Iterator[None]:
    """Hold ``name`` across processes; ``wait=False`` (or an expired ``timeout``) raises LockBusy.

    ``sleep``/``clock`` drive the retry loop of a bounded wait (monotonic seconds); ``now`` stamps
    the ``locks`` row.
    """
    with engine_lock(
        store.engine,
        name,
        wait=wait,
        timeout=timeout,
        sleep=sleep,
        clock=clock,
        holder=lambda: lock_holder(store, name),
    ):
        me = current_holder()
        at = (now or system_clock())()
        with store.begin() as conn:
            conn.execute(sa.delete(locks).where(locks.c.name == name))
            conn.execute(sa.insert(locks).values(name=name, holder=me, acquired_at=at, heartbeat_at=at))
        try:
            yield
        finally:
            with store.begin() as conn:
                conn.execute(sa.delete(locks).where(locks.c.name == name, locks.c.holder == me))
