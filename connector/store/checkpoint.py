"""WAL checkpoints of a file SQLite store, run by a background thread instead of inside commits.

In WAL mode SQLite copies the log back into the database file (a checkpoint) from the ``COMMIT`` that
takes the log past ``wal_autocheckpoint`` pages, and with ``synchronous=NORMAL`` that is where it waits
for the disk (``fsync`` of the log and of the database). Upserting 10⁵ tickets (``bench/store_upsert.py``),
those commits were a third of the wall time. Here the writer's own trigger is set far higher and a
thread with its own connection runs passive checkpoints (which never block a writer or a reader)
after commits, so the copying and the waiting for the disk overlap with the next page's work (SQLite
releases the GIL while it works). The writers' trigger stays as a bound should the thread fall behind.

Durability is unchanged: with ``synchronous=NORMAL`` a commit is durable once checkpointed, wherever
the checkpoint runs, and a process that dies leaves a log that the next connection recovers.
In-memory databases have no log, and PostgreSQL checkpoints on its own: neither gets a checkpointer.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import weakref
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

#: Pages of log after which the next transaction lets the log restart (see ``_checkpoint``): ~16 MB.
RESTART_PAGES = 4_000
#: The writers' own trigger, as a bound should the thread fall behind: ~40 MB of 4 kB pages.
WRITER_PAGES = 10_000
#: The longest a transaction waits for a checkpoint in flight; it only ever waits for one.
_RESTART_WAIT_S = 10.0


class WalCheckpointer:
    """Passive checkpoints of one database file, in a daemon thread woken as connections come back."""

    def __init__(self, path: str, restart_pages: int = RESTART_PAGES) -> None:
        self._database = path
        self._restart_pages = self._next_restart = restart_pages
        self._restart_due = False
        self._changed = threading.Condition()
        self._requested = self._handled = 0
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="sqlite-wal-checkpoint", daemon=True)
        self._thread.start()

    @classmethod
    def attach(cls, engine: Engine, path: str, restart_pages: int = RESTART_PAGES) -> WalCheckpointer:
        """Checkpoint ``engine``'s database file until :meth:`stop` or until the engine is gone.

        The pool's check-in is the trigger because it comes after the commit (the engine's own
        commit event comes before it, which would leave every last page in the log).
        """
        checkpointer = cls(path, restart_pages)
        event.listen(engine, "connect", _raise_writer_trigger)
        event.listen(engine, "begin", checkpointer.before_transaction)
        event.listen(engine.pool, "checkin", checkpointer.notify)
        weakref.finalize(engine, checkpointer.stop)
        return checkpointer

    def notify(self, *_: Any) -> None:
        """Something may have been committed: checkpoint soon."""
        with self._changed:
            self._requested += 1
            self._changed.notify_all()

    def before_transaction(self, *_: Any) -> None:
        """Once the log is long, let one transaction start only after the checkpoint in flight.

        SQLite restarts the log from its beginning only in a transaction that starts when the log
        is wholly copied back, which never happens while this thread copies as fast as a busy
        writer commits: the log would grow with the whole sync.
        """
        if self._restart_due:
            self._restart_due = False
            self.wait_idle(_RESTART_WAIT_S)

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until every notification so far has had its checkpoint (tests and benches use it)."""
        with self._changed:
            target = self._requested
            return self._changed.wait_for(lambda: self._handled >= target or self._stopping, timeout)

    def stop(self) -> None:
        """End the thread after its current checkpoint; safe to call more than once."""
        with self._changed:
            self._stopping = True
            self._changed.notify_all()
        if self._thread is not threading.current_thread():
            self._thread.join()

    def _run(self) -> None:
        connection: sqlite3.Connection | None = None
        try:
            while True:
                with self._changed:
                    self._changed.wait_for(lambda: self._stopping or self._requested > self._handled)
                    if self._stopping:
                        return
                    target = self._requested
                # Busy or gone: the writers' own trigger still bounds the log, and the next commit retries.
                with contextlib.suppress(sqlite3.Error):
                    connection = connection or _connect(self._database)
                    self._checkpoint(connection)
                with self._changed:
                    self._handled = target
                    self._changed.notify_all()
        finally:
            if connection is not None:
                connection.close()

    def _checkpoint(self, connection: sqlite3.Connection) -> None:
        """Copy the log back without blocking anyone, and ask for a restart once it has grown long.

        A reader in a long query keeps the log from being copied past its snapshot, and so from
        restarting; the next request then waits until the log has grown as much again, so that the
        reader costs a busy writer one short wait per ``restart_pages``, not one per page.
        """
        _busy, log_pages, _copied = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        if log_pages >= self._next_restart:
            self._restart_due = True
            self._next_restart = log_pages + self._restart_pages
        elif log_pages < self._restart_pages:
            self._next_restart = self._restart_pages


def _raise_writer_trigger(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.execute(f"PRAGMA wal_autocheckpoint={WRITER_PAGES}")


def _connect(path: str) -> sqlite3.Connection:
    """The thread's own connection; ``mode=rw`` so a file deleted meanwhile is not made anew, empty."""
    return sqlite3.connect(f"{Path(path).as_uri()}?mode=rw", uri=True)
