"""Named locks between real processes, on SQLite (flock) and PostgreSQL (advisory locks).

Processes are sequenced with pipes and events, never with sleeps; bounded waits run on an injected
clock and sleep function.
"""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event
from pathlib import Path
from queue import Queue

import pytest
import sqlalchemy as sa

from connector.store import LockBusy, Store, named_lock, open_store
from connector.store.locks import POLL_SECONDS, current_holder, lock_holder

NAME = "sync:zoho/tickets"
SPAWN = multiprocessing.get_context("spawn")  # no forked copies of engines and pools


def _hold(url: str, name: str, pipe: Connection, releasing: Event) -> None:
    """Child process: take the lock, report, hold it until told to let go."""
    store = open_store(url, upgrade=False)
    with named_lock(store, name):
        pipe.send(current_holder())
        assert pipe.recv() == "release"
        releasing.set()
    pipe.send("released")
    pipe.recv()  # stay alive until the parent is done, so a release is never just the exit
    store.dispose()


@dataclass
class Holder:
    process: multiprocessing.process.BaseProcess
    pipe: Connection
    releasing: Event
    identity: str

    def release(self) -> None:
        self.pipe.send("release")
        assert self.pipe.recv() == "released"


@contextmanager
def held_elsewhere(url: str, name: str = NAME) -> Iterator[Holder]:
    parent, child = SPAWN.Pipe()
    releasing = SPAWN.Event()
    process = SPAWN.Process(target=_hold, args=(url, name, child, releasing), daemon=True)
    process.start()
    try:
        yield Holder(process, parent, releasing, identity=parent.recv())
    finally:
        if process.is_alive():
            if not releasing.is_set():
                parent.send("release")
                parent.recv()
            parent.send("exit")
        process.join()


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    opened = open_store(db_url)
    yield opened
    opened.dispose()


def test_wait_false_fails_fast_and_names_the_holder(store: Store, db_url: str) -> None:
    with held_elsewhere(db_url) as other:
        assert other.identity != current_holder()
        assert lock_holder(store, NAME) == other.identity
        with pytest.raises(LockBusy) as busy, named_lock(store, NAME, wait=False):
            pytest.fail("acquired a lock another process holds")
        assert (busy.value.name, busy.value.holder) == (NAME, other.identity)
        with named_lock(store, "sync:zoho/calls", wait=False):
            pass  # other names are independent
        other.release()
        with named_lock(store, NAME, wait=False):
            assert lock_holder(store, NAME) == current_holder()
    assert lock_holder(store, NAME) is None


def test_timeout_gives_up_on_the_injected_clock(store: Store, db_url: str) -> None:
    now, sleeps = [100.0], []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        now[0] += seconds

    with held_elsewhere(db_url) as other:
        with (
            pytest.raises(LockBusy) as busy,
            named_lock(store, NAME, timeout=1.0, sleep=sleep, clock=lambda: now[0]),
        ):
            pytest.fail("acquired a lock another process holds")
        assert busy.value.holder == other.identity
    assert sleeps == [POLL_SECONDS] * 4


def test_bounded_wait_acquires_when_the_holder_lets_go(store: Store, db_url: str) -> None:
    with held_elsewhere(db_url) as other:
        sleeps = []

        def sleep(seconds: float) -> None:  # the other process finishes while we "sleep"
            sleeps.append(seconds)
            other.release()

        with named_lock(store, NAME, timeout=60, sleep=sleep):
            assert lock_holder(store, NAME) == current_holder()
        assert sleeps == [POLL_SECONDS]


def test_blocking_wait_returns_only_after_release(store: Store, db_url: str) -> None:
    with held_elsewhere(db_url) as other:
        outcome: Queue[bool] = Queue()

        def waiter() -> None:
            with named_lock(store, NAME):
                outcome.put(other.releasing.is_set())  # set by the holder before it lets go

        thread = threading.Thread(target=waiter)
        thread.start()
        other.release()
        thread.join()
        assert outcome.get_nowait() is True


def test_a_dead_holder_leaves_no_lock_behind(store: Store, db_url: str) -> None:
    with held_elsewhere(db_url) as other:
        other.process.kill()
        other.process.join()
        with named_lock(store, NAME, timeout=30):  # PostgreSQL ends the session when the socket closes
            assert lock_holder(store, NAME) == current_holder()  # the stale row was replaced


def test_sqlite_lock_file_sits_next_to_the_database(sqlite_url: str) -> None:
    store = open_store(sqlite_url)
    database = Path(store.engine.url.database or "")
    with named_lock(store, NAME, wait=False):
        assert (database.parent / f"{database.name}.sync_zoho_tickets.lock").is_file()
    store.dispose()


def test_in_memory_store_locks_between_threads() -> None:
    store = open_store("sqlite://")
    outcome: Queue[object] = Queue()

    def contender() -> None:
        try:
            with named_lock(store, NAME, wait=False):
                outcome.put("acquired")
        except LockBusy as exc:
            outcome.put(exc.holder)

    with named_lock(store, NAME):
        thread = threading.Thread(target=contender)
        thread.start()
        thread.join()
    assert outcome.get_nowait() == current_holder()
    store.dispose()


@pytest.mark.parametrize("db_url", ["postgres"], indirect=True)
def test_postgres_lock_is_a_released_advisory_lock(store: Store) -> None:
    assert store.dialect == "postgresql"
    count = sa.text(  # pg_locks spans the cluster; other test runs may hold locks in their databases
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
        " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    )
    with named_lock(store, NAME), store.connect() as conn:
        assert conn.execute(count).scalar() == 1
    with store.connect() as conn:
        assert conn.execute(count).scalar() == 0  # unlocked before its connection went back to the pool
