"""Background WAL checkpoints of a file SQLite store: they happen, bound the log, yield to readers.

Every test waits for the checkpointer with ``wait_idle`` after each commit, so what it checked is
decided by the commits, not by how fast the thread ran.
"""

from __future__ import annotations

import gc
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from connector.store import Store, migrate, open_store, upsert
from connector.store import checkpoint as checkpoint_module
from connector.store.checkpoint import WRITER_PAGES, WalCheckpointer
from connector.store.engine import create_store_engine
from tests.test_store import ticket

PAGE = 4096
BIG = "x" * 3000  # about one page per ticket row


def commit_tickets(store: Store, first: int, count: int) -> None:
    with store.begin() as conn:
        upsert(
            conn,
            "tickets",
            [ticket(f"t{i}", raw=f'{{"i":{i},"pad":"{BIG}"}}') for i in range(first, first + count)],
        )
    assert store.checkpointer is not None
    assert store.checkpointer.wait_idle(timeout=30)


def log_pages(db: Path) -> int:
    """The most frames the log has held: a restarted log is written again from its start, so its
    file keeps the size of its longest run (read without a checkpoint, which would change it)."""
    wal = Path(f"{db}-wal")
    return 0 if not wal.exists() else max(0, (wal.stat().st_size - 32) // (PAGE + 24))


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "store.db"


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """One entry per transaction that waited for a checkpoint so that the log could restart."""
    seen: list[int] = []
    wait_idle = WalCheckpointer.wait_idle

    def counted(self: WalCheckpointer, timeout: float | None = None) -> bool:
        if timeout == checkpoint_module._RESTART_WAIT_S:
            seen.append(1)
        return wait_idle(self, timeout)

    monkeypatch.setattr(WalCheckpointer, "wait_idle", counted)
    return seen


def store_with(db: Path, restart_pages: int) -> Store:
    engine = create_store_engine(f"sqlite:///{db}")
    checkpointer = WalCheckpointer.attach(engine, str(db), restart_pages=restart_pages)
    migrate.upgrade(engine)
    return Store(engine, checkpointer)


@pytest.fixture
def small_log_store(db: Path) -> Iterator[Store]:
    store = store_with(db, restart_pages=40)
    yield store
    store.dispose()


def test_commits_reach_the_database_file_without_the_writers_trigger(db: Path) -> None:
    store = open_store(f"sqlite:///{db}")
    try:
        before = db.stat().st_size
        for batch in range(6):
            commit_tickets(store, batch * 100, 100)  # ~600 pages: far below the writers' own trigger
        assert WRITER_PAGES > 600
        assert db.stat().st_size - before > 500 * PAGE
    finally:
        store.dispose()


def test_a_sustained_stream_of_commits_keeps_the_log_short(small_log_store: Store, db: Path) -> None:
    # No waiting between commits: the thread is mid-copy whenever the next transaction starts, and
    # such a writer may not restart the log itself, so without RESTART the log grows with the stream.
    for batch in range(60):
        with small_log_store.begin() as conn:
            rows = [ticket(f"t{i}", raw=f'{{"pad":"{BIG}"}}') for i in range(batch * 20, batch * 20 + 20)]
            upsert(conn, "tickets", rows)
    assert small_log_store.checkpointer is not None
    assert small_log_store.checkpointer.wait_idle(timeout=30)
    assert log_pages(db) < 60 * 25 / 3  # of ~1,500 pages written


def test_a_reader_in_a_long_query_costs_one_wait_per_threshold(
    small_log_store: Store, db: Path, waits: list[int]
) -> None:
    reader = sqlite3.connect(db, isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM tickets").fetchone()  # holds its snapshot until COMMIT
    waits.clear()
    try:
        for batch in range(10):  # ~250 pages: past the threshold of 40 six times
            commit_tickets(small_log_store, batch * 20, 20)
        assert 1 <= len(waits) <= 250 // 40  # not one per transaction once past the threshold
        longest = log_pages(db)
        assert longest > 200  # the reader kept the log from restarting
    finally:
        reader.execute("COMMIT")
        reader.close()
    for batch in range(10, 20):
        commit_tickets(small_log_store, batch * 20, 20)
    # With the reader gone, the first commit still lands behind its snapshot; then the log restarts
    # instead of growing by the ~250 pages of the ten commits.
    assert log_pages(db) - longest <= 30
    with small_log_store.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM tickets").scalar_one() == 20 * 20


def test_dispose_stops_the_thread(db: Path) -> None:
    store = open_store(f"sqlite:///{db}")
    commit_tickets(store, 0, 5)
    store.dispose()
    assert not [t for t in threading.enumerate() if t.name == "sqlite-wal-checkpoint" and t.is_alive()]


def test_a_forgotten_engine_takes_its_thread_with_it(db: Path) -> None:
    engine = create_store_engine(f"sqlite:///{db}")
    checkpointer = WalCheckpointer.attach(engine, str(db))
    migrate.upgrade(engine)
    thread = checkpointer._thread
    del engine
    gc.collect()
    thread.join(timeout=30)
    assert not thread.is_alive()


def test_a_deleted_database_file_is_not_recreated_by_the_thread(tmp_path: Path) -> None:
    missing = tmp_path / "gone.db"
    checkpointer = WalCheckpointer(str(missing))
    checkpointer.notify()
    assert checkpointer.wait_idle(timeout=30)
    checkpointer.stop()
    assert not missing.exists()


def test_memory_and_postgresql_stores_have_no_checkpointer(db_url: str) -> None:
    for url in ("sqlite://", db_url):
        store = open_store(url)
        try:
            assert (store.checkpointer is not None) == url.startswith("sqlite:///")
        finally:
            store.dispose()
