"""Real processes against one store (SQLite file and PostgreSQL): the per-source lock keeps a manual
``sync``, a scheduled sync and a second ``run`` apart, and SIGTERM mid-sync commits the page in
flight, exits 0 and leaves a cursor the next sync resumes from.

The CLI runs in a subprocess with a tiny ``gated`` adapter kind registered (this module, imported by
the child). Before handing over page ``gate_page`` the adapter writes the page number to one pipe and
blocks reading another, so the test knows exactly where the child is; every step is sequenced by
pipes and by lines the child prints, never by sleeping.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict

from connector.adapter import AdapterContext, AdapterKind, CheckResult, Cursor, DeletedPage, Page, register
from connector.clock import fixed_clock
from connector.mapping import load_mapping
from connector.store import Store, named_lock, open_store
from connector.store.locks import current_holder
from connector.store.schema import contacts, sync_runs, sync_state
from connector.sync import sync_source

TESTS = Path(__file__).parent
NOW = datetime(2026, 10, 2, tzinfo=UTC)
SOURCE = "clinic"
PAGES = 4
MAPPING = """
[entities.contacts]
object = "contacts"
[entities.contacts.columns]
external_id = "id"
updated_at = { path = "updated_at", transform = "iso_datetime" }
name = "name"
"""
BOOT = (
    f"import sys; sys.path.insert(0, {str(TESTS)!r}); import test_locks_e2e; "
    "test_locks_e2e.register_gated(); from connector.cli import main; main()"
)


class GatedOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    gate_page: int = 0  # 0: never stop at a gate
    ready_fd: int = -1
    go_fd: int = -1


class GatedAdapter:
    """``PAGES`` pages of three contacts; the cursor is the number of the last page handed over."""

    def __init__(self, options: GatedOptions) -> None:
        self.options = options
        self.api_calls = 0

    def entities(self) -> list[str]:
        return ["contacts"]

    def pull(self, entity: str, cursor: Cursor | None) -> Iterator[Page]:
        for number in range((cursor or {}).get("page", 0) + 1, PAGES + 1):
            self.api_calls += 1
            records = [
                {"id": f"c-{number}-{i}", "name": f"page {number}", "updated_at": "2026-10-01T08:00:00+00:00"}
                for i in range(3)
            ]
            if number == self.options.gate_page:  # the page is fetched; the "response" is slow
                os.write(self.options.ready_fd, f"{number}\n".encode())
                with os.fdopen(os.dup(self.options.go_fd), "rb") as go:
                    go.readline()
            yield Page(records=records, cursor={"page": number})

    def deleted(self, entity: str, cursor: Cursor | None) -> Iterator[DeletedPage]:
        return iter(())

    def push(self, target: str, records: Sequence[Any]) -> list[Any]:
        raise AssertionError("never pushed")

    def check(self) -> CheckResult:
        return CheckResult(ok=True, detail="gated test source")


def register_gated() -> None:
    """Called in the child process only, so the test process's registry stays as shipped."""

    def factory(context: AdapterContext) -> GatedAdapter:
        return GatedAdapter(context.config.options)  # type: ignore[arg-type]

    register("gated", AdapterKind(factory=factory, options=GatedOptions))


class Gate:
    """Two pipes: the child says "page k is in hand" on one and waits for a line on the other."""

    def __init__(self) -> None:
        self.ready_read, self.ready_write = os.pipe()
        self.go_read, self.go_write = os.pipe()

    @property
    def child_fds(self) -> tuple[int, int]:
        return self.ready_write, self.go_read

    def spawned(self) -> None:
        os.close(self.ready_write)  # the child's copies stay open; end-of-file then means it died
        os.close(self.go_read)

    def wait_ready(self) -> str:
        with os.fdopen(os.dup(self.ready_read), "rb") as ready:
            return ready.readline().decode().strip()

    def open(self) -> None:
        os.write(self.go_write, b"go\n")

    def close(self) -> None:
        for fd in (self.ready_read, self.go_write):
            os.close(fd)


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    opened = open_store(db_url)  # migrated before any child starts
    yield opened
    opened.dispose()


@pytest.fixture
def gate() -> Iterator[Gate]:
    opened = Gate()
    yield opened
    opened.close()


def write_config(folder: Path, store: Store, name: str, options: GatedOptions | None = None) -> Path:
    (folder / "gated.toml").write_text(MAPPING, encoding="utf-8")
    keys = "".join(f"{key} = {value}\n" for key, value in (options or GatedOptions()).model_dump().items())
    url = store.engine.url.render_as_string(hide_password=False)
    path = folder / name
    path.write_text(
        f'[store]\nurl = "{url}"\n[clinic]\nlanguage = "en"\n'
        f'[sources.{SOURCE}]\nkind = "gated"\nmapping = "gated.toml"\n{keys}',
        encoding="utf-8",
    )
    return path


def spawn(config: Path, *args: str, gate: Gate | None = None) -> subprocess.Popen[str]:
    child = subprocess.Popen(
        [sys.executable, "-c", BOOT, "--config", str(config), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        pass_fds=gate.child_fds if gate else (),
        env={key: value for key, value in os.environ.items() if key != "CRM_CONNECTOR_NOW"},
    )
    if gate is not None:
        gate.spawned()
    return child


def finish(child: subprocess.Popen[str]) -> tuple[int, str, str]:
    out, err = child.communicate(timeout=300)
    return child.returncode, out, err


def read_until(stream: IO[str], marker: str) -> str:
    """Lines from the child's stream up to the one containing ``marker`` (all of them if it dies)."""
    seen = []
    while line := stream.readline():
        seen.append(line)
        if marker in line:
            break
    return "".join(seen)


def contact_rows(store: Store) -> list[tuple[Any, ...]]:
    with store.connect() as conn:
        return [
            tuple(row)
            for row in conn.execute(
                sa.select(contacts.c.external_id, contacts.c.name, contacts.c.updated_at, contacts.c.raw)
                .where(contacts.c.deleted_at.is_(None))
                .order_by(contacts.c.external_id)
            )
        ]


def cursor(store: Store) -> Any:
    with store.connect() as conn:
        text = conn.execute(sa.select(sync_state.c.cursor).where(sync_state.c.entity == "contacts")).scalar()
    return json.loads(text) if text else None


def runs(store: Store) -> list[tuple[str | None, str]]:
    """(entity, status) of every sync row in order; entity None is a source's job-level row."""
    with store.connect() as conn:
        return [
            tuple(row)
            for row in conn.execute(
                sa.select(sync_runs.c.entity, sync_runs.c.status)
                .where(sync_runs.c.job == "sync")
                .order_by(sync_runs.c.id)
            )
        ]


# ---- the lock ----------------------------------------------------------------------------------


def test_manual_sync_exits_1_naming_the_source_and_the_holder(tmp_path: Path, store: Store) -> None:
    config = write_config(tmp_path, store, "connector.toml")
    with named_lock(store, f"sync:{SOURCE}"):
        code, out, err = finish(spawn(config, "sync"))
    assert code == 1, err
    assert f"Source {SOURCE} is being synced by another process ({current_holder()})" in out
    assert "--wait" in out
    assert contact_rows(store) == [] and runs(store) == [(None, "skipped")]


def test_manual_sync_with_wait_runs_once_the_holder_is_done(tmp_path: Path, store: Store) -> None:
    config = write_config(tmp_path, store, "connector.toml")
    holder = ExitStack()
    holder.enter_context(named_lock(store, f"sync:{SOURCE}"))
    child = spawn(config, "--json", "sync", "--wait", "300")
    assert child.stderr is not None
    waiting = read_until(child.stderr, "waiting up to 300 s")
    assert current_holder() in waiting, waiting
    assert contact_rows(store) == []  # it really waits
    holder.close()
    code, out, err = finish(child)
    assert code == 0, err
    assert [(r["entity"], r["status"], r["fetched"]) for r in json.loads(out)] == [
        ("contacts", "success", 12)
    ]
    assert len(contact_rows(store)) == 12


def test_two_processes_never_sync_one_source_at_once(tmp_path: Path, store: Store, gate: Gate) -> None:
    running = spawn(
        write_config(
            tmp_path,
            store,
            "a.toml",
            GatedOptions(gate_page=2, ready_fd=gate.ready_write, go_fd=gate.go_read),
        ),
        "--json",
        "run",
        "--once",
        gate=gate,
    )
    assert gate.wait_ready() == "2"  # page 1 committed, page 2 in hand, the lock held
    other = write_config(tmp_path, store, "b.toml")

    code, out, err = finish(spawn(other, "sync"))
    assert code == 1 and f":{running.pid})" in out, (out, err)

    code, out, err = finish(spawn(other, "--json", "run", "--once"))
    assert code == 0, err
    [skipped] = json.loads(out)  # nothing synced here, so no metrics/alerts from this process
    assert (skipped["job"], skipped["status"]) == ("sync", "skipped")
    assert skipped["holder"].endswith(f":{running.pid}")
    assert len(contact_rows(store)) == 3  # only the first process's first page so far

    gate.open()
    code, out, err = finish(running)
    assert code == 0, err
    assert [o["job"] for o in json.loads(out)][:3] == ["sync", "metrics", "alerts"]
    assert len(contact_rows(store)) == 12 and cursor(store) == {"page": PAGES}
    # By id: the first process's source row and entity row, then the two refusals while it ran.
    assert runs(store) == [(None, "success"), ("contacts", "success"), (None, "skipped"), (None, "skipped")]


# ---- SIGTERM -----------------------------------------------------------------------------------


def reference_state(tmp_path: Path) -> tuple[list[tuple[Any, ...]], Any]:
    """What an uninterrupted sync of the same source stores."""
    store = open_store(f"sqlite:///{tmp_path / 'reference.db'}")
    (tmp_path / "gated.toml").write_text(MAPPING, encoding="utf-8")
    mappings = load_mapping(tmp_path / "gated.toml", ZoneInfo("Asia/Shanghai")).entities
    [run] = sync_source(store, SOURCE, GatedAdapter(GatedOptions()), mappings, clock=fixed_clock(NOW))
    assert run.status == "success"
    state = contact_rows(store), cursor(store)
    store.dispose()
    return state


@pytest.mark.parametrize("command", [("sync",), ("run", "--once")], ids=["sync", "run-once"])
def test_sigterm_commits_the_page_in_flight_exits_0_and_resumes(
    tmp_path: Path, store: Store, gate: Gate, command: tuple[str, ...]
) -> None:
    options = GatedOptions(gate_page=3, ready_fd=gate.ready_write, go_fd=gate.go_read)
    child = spawn(write_config(tmp_path, store, "connector.toml", options), *command, gate=gate)
    assert gate.wait_ready() == "3"  # pages 1-2 committed; page 3 is in flight
    child.send_signal(signal.SIGTERM)
    assert child.stderr is not None
    assert "SIGTERM received" in read_until(child.stderr, "SIGTERM received")
    gate.open()
    code, out, err = finish(child)

    assert code == 0, err
    assert runs(store) == [(None, "stopped"), ("contacts", "stopped")]
    assert cursor(store) == {"page": 3}  # the page in flight was committed, nothing after it
    assert [row[0] for row in contact_rows(store)] == sorted(
        f"c-{p}-{i}" for p in (1, 2, 3) for i in range(3)
    )
    assert "stopped" in out

    (tmp_path / "reference").mkdir()
    mappings = load_mapping(tmp_path / "gated.toml", ZoneInfo("Asia/Shanghai")).entities
    [resumed] = sync_source(store, SOURCE, GatedAdapter(GatedOptions()), mappings, clock=fixed_clock(NOW))
    assert (resumed.status, resumed.counts.fetched) == ("success", 3)  # only page 4 was left
    final_rows, final_cursor = reference_state(tmp_path / "reference")
    assert contact_rows(store) == final_rows and cursor(store) == final_cursor
