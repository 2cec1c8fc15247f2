"""The sync engine on SQLite and PostgreSQL: counts, cursors, quarantine, deletions, failures, crashes."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

import connector.sync as sync_module
from connector.adapter import Cursor, DeletedPage, Page
from connector.clock import fixed_clock
from connector.mapping import EntityMapping, load_mapping
from connector.store import Store, open_store
from connector.store.schema import metadata, quarantine, sync_runs, sync_state, ticket_status_history, tickets
from connector.sync import EntityRun, canonical_json, sync_entity, sync_source

SOURCE = "clinic"
BASE = datetime(2026, 10, 1, 8, 0, tzinfo=UTC)
NOW = datetime(2026, 11, 1, 4, 0, tzinfo=UTC)

MAPPING = """
[entities.contacts]
object = "contacts"
[entities.contacts.columns]
external_id = "id"
updated_at = { path = "updated_at", transform = "iso_datetime" }
name = "name"

[entities.tickets]
object = "tickets"
[entities.tickets.columns]
external_id = "id"
updated_at = { path = "updated_at", transform = "iso_datetime" }
contact_id = "contact"
owner_id = "owner"
subject = "subject"
status = { path = "status", transform = "value_map", map = "status", required = true }
created_at = { path = "created_at", transform = "iso_datetime" }

[value_maps.status]
values = { open = "open", pending = "pending", resolved = "resolved", closed = "closed" }
"""


class ApiError(RuntimeError):
    """What an adapter raises when the CRM answers 5xx after its retries."""


@dataclass
class FakeAdapter:
    """Serves fixed pages; the cursor is the number of pages already handed out.

    ``fail_after`` simulates a crash or an API failure: the pull raises after yielding that many pages.
    """

    pages: dict[str, list[list[dict[str, Any]]]]
    deletions: dict[str, list[DeletedPage]] = field(default_factory=dict)
    fail_after: int | None = None
    error: Exception = field(default_factory=lambda: ApiError("HTTP 503 from the CRM"))
    calls: int = 0
    pulls: list[tuple[str, Cursor | None]] = field(default_factory=list)
    deletion_pulls: list[tuple[str, Cursor | None]] = field(default_factory=list)

    @property
    def api_calls(self) -> int:
        return self.calls

    def entities(self) -> Sequence[str]:
        return list(self.pages)

    def pull(self, entity: str, cursor: Cursor | None) -> Iterator[Page]:
        self.pulls.append((entity, cursor))
        start = cursor["page"] if cursor else 0
        for yielded, number in enumerate(range(start + 1, len(self.pages[entity]) + 1)):
            self.calls += 1
            if self.fail_after is not None and yielded == self.fail_after:
                raise self.error
            yield Page(records=self.pages[entity][number - 1], cursor={"page": number})

    def deleted(self, entity: str, cursor: Cursor | None) -> Iterator[DeletedPage]:
        self.deletion_pulls.append((entity, cursor))
        start = cursor["page"] if cursor else 0
        for page in self.deletions.get(entity, [])[start:]:
            self.calls += 1
            yield page

    def push(self, target: str, records: Sequence[dict[str, Any]]) -> list[Any]:
        raise AssertionError("sync never pushes")

    def check(self) -> Any:
        raise AssertionError("sync never checks")


def at(minutes: int) -> str:
    return (BASE + timedelta(minutes=minutes)).isoformat()


def ticket(external_id: str, minutes: int, status: str = "open", **extra: Any) -> dict[str, Any]:
    return {
        "id": external_id,
        "updated_at": at(minutes),
        "status": status,
        "owner": "u1",
        "created_at": at(0),
        "subject": f"{external_id} v{minutes}",
        **extra,
    }


@pytest.fixture
def mappings(tmp_path: Path) -> dict[str, EntityMapping]:
    path = tmp_path / "mapping.toml"
    path.write_text(MAPPING, encoding="utf-8")
    return load_mapping(path, ZoneInfo("Asia/Shanghai")).entities


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    opened = open_store(db_url)
    yield opened
    opened.dispose()


@pytest.fixture
def other_store(db_url: str, tmp_path: Path, pg_admin: sa.Engine | None) -> Iterator[Store]:
    """A second, separate store on the same kind of database."""
    if db_url.startswith("sqlite"):
        opened = open_store(f"sqlite:///{tmp_path / 'other.db'}")
        yield opened
        opened.dispose()
        return
    assert pg_admin is not None
    name = f"crm_test_{uuid.uuid4().hex[:12]}"
    with pg_admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    opened = open_store(pg_admin.url.set(database=name).render_as_string(hide_password=False))
    try:
        yield opened
    finally:
        opened.dispose()
        with pg_admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def run_tickets(
    store: Store,
    adapter: FakeAdapter,
    mappings: dict[str, EntityMapping],
    *,
    full: bool = False,
    now: datetime = NOW,
) -> EntityRun:
    return sync_entity(store, SOURCE, adapter, mappings["tickets"], full=full, clock=fixed_clock(now))


def stored_tickets(store: Store) -> dict[str, Any]:
    with store.connect() as conn:
        return {r.external_id: r for r in conn.execute(sa.select(tickets))}


def run_row(store: Store, run_id: int) -> Any:
    with store.connect() as conn:
        return conn.execute(sa.select(sync_runs).where(sync_runs.c.id == run_id)).one()


def counts_of(run: EntityRun) -> dict[str, int]:
    data = run.as_dict()
    return {
        k: data[k]
        for k in ("fetched", "inserted", "updated", "unchanged", "deleted", "quarantined", "api_calls")
    }


def cursor_of(store: Store, stream: str = "records", entity: str = "tickets") -> Any:
    with store.connect() as conn:
        return sync_module.load_cursor(conn, SOURCE, entity, stream)


def quarantined(store: Store) -> dict[str, Any]:
    with store.connect() as conn:
        return {r.external_id: r for r in conn.execute(sa.select(quarantine))}


def snapshot(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table but the run log, without synced_at and surrogate ids."""
    tables = {}
    with store.connect() as conn:
        for table in metadata.sorted_tables:
            if table.name == "sync_runs":
                continue
            columns = [c for c in table.columns if c.name not in ("synced_at", "id")]
            rows = conn.execute(sa.select(*columns)).all()
            tables[table.name] = sorted((tuple(row) for row in rows), key=repr)
    return tables


PAGES = [
    [ticket("t1", 1), ticket("t2", 2), ticket("bad", 3, status="escalated")],
    [ticket("t3", 4, "pending"), ticket("t4", 5, "closed")],
]


# ---- full sync, rerun, incremental ---------------------------------------------------------------


def test_full_sync_counts_rows_and_run_record(store: Store, mappings: dict[str, EntityMapping]) -> None:
    run = run_tickets(store, FakeAdapter({"tickets": PAGES}), mappings)

    assert run.status == "success" and run.error is None
    assert counts_of(run) == {
        "fetched": 5,
        "inserted": 4,
        "updated": 0,
        "unchanged": 0,
        "deleted": 0,
        "quarantined": 1,
        "api_calls": 2,
    }
    rows = stored_tickets(store)
    assert set(rows) == {"t1", "t2", "t3", "t4"}
    t3 = rows["t3"]
    assert (t3.source, t3.status, t3.owner_id, t3.subject) == (SOURCE, "pending", "u1", "t3 v4")
    assert t3.updated_at == BASE + timedelta(minutes=4) and t3.created_at == BASE
    assert t3.synced_at == NOW and t3.deleted_at is None
    assert json.loads(t3.raw) == PAGES[1][0] and t3.raw == canonical_json(PAGES[1][0])
    assert t3.category is None  # a column the mapping leaves out is stored empty

    row = run_row(store, run.run_id)
    assert (row.job, row.source, row.entity, row.status, row.error) == (
        "sync",
        SOURCE,
        "tickets",
        "success",
        None,
    )
    assert {k: getattr(row, k) for k in counts_of(run)} == counts_of(run)
    assert row.started_at == NOW and row.finished_at == NOW
    assert cursor_of(store) == {"page": 2}
    assert run.quarantine_reasons and "status" in run.quarantine_reasons[0]


def test_rerun_is_a_no_op(store: Store, mappings: dict[str, EntityMapping]) -> None:
    adapter = FakeAdapter({"tickets": PAGES})
    run_tickets(store, adapter, mappings)
    before = snapshot(store)

    incremental = run_tickets(store, adapter, mappings)
    assert adapter.pulls[-1] == ("tickets", {"page": 2})
    assert counts_of(incremental) == dict.fromkeys(counts_of(incremental), 0)

    full = run_tickets(store, adapter, mappings, full=True)
    assert adapter.pulls[-1] == ("tickets", None)
    assert counts_of(full) == {
        "fetched": 5,
        "inserted": 0,
        "updated": 0,
        "unchanged": 4,
        "deleted": 0,
        "quarantined": 1,
        "api_calls": 2,
    }
    assert snapshot(store) == before


def test_incremental_sync_resumes_from_the_cursor(store: Store, mappings: dict[str, EntityMapping]) -> None:
    adapter = FakeAdapter({"tickets": [list(p) for p in PAGES]})
    run_tickets(store, adapter, mappings)
    adapter.pages["tickets"].append([ticket("t1", 30, "resolved"), ticket("t5", 31)])

    run = run_tickets(store, adapter, mappings, now=NOW + timedelta(hours=1))

    assert adapter.pulls[-1] == ("tickets", {"page": 2})
    assert counts_of(run) == {
        "fetched": 2,
        "inserted": 1,
        "updated": 1,
        "unchanged": 0,
        "deleted": 0,
        "quarantined": 0,
        "api_calls": 1,
    }
    rows = stored_tickets(store)
    assert rows["t1"].status == "resolved" and rows["t1"].synced_at == NOW + timedelta(hours=1)
    assert rows["t2"].synced_at == NOW  # untouched
    assert cursor_of(store) == {"page": 3}


def test_an_older_record_never_overwrites_a_newer_one(
    store: Store, mappings: dict[str, EntityMapping]
) -> None:
    adapter = FakeAdapter({"tickets": [[ticket("t1", 10, "pending")], [ticket("t1", 5, "open")]]})
    run = run_tickets(store, adapter, mappings)
    assert (run.counts.inserted, run.counts.unchanged) == (1, 1)
    assert stored_tickets(store)["t1"].subject == "t1 v10"

    adapter.pages["tickets"].append([ticket("t1", 1, "closed", subject="stale")])
    later = run_tickets(store, adapter, mappings)
    assert (later.counts.updated, later.counts.unchanged) == (0, 1)
    stored = stored_tickets(store)["t1"]
    assert (stored.status, stored.subject) == ("pending", "t1 v10")
    assert json.loads(stored.raw)["updated_at"] == at(10)


def test_same_modification_time_with_new_content_updates(
    store: Store, mappings: dict[str, EntityMapping]
) -> None:
    adapter = FakeAdapter(
        {"tickets": [[ticket("t1", 10)], [ticket("t1", 10, subject="formula field changed")]]}
    )
    run = run_tickets(store, adapter, mappings)
    assert (run.counts.inserted, run.counts.updated) == (1, 1)
    assert stored_tickets(store)["t1"].subject == "formula field changed"


def test_on_page_sees_running_counts(store: Store, mappings: dict[str, EntityMapping]) -> None:
    seen: list[int] = []
    sync_entity(
        store,
        SOURCE,
        FakeAdapter({"tickets": PAGES}),
        mappings["tickets"],
        full=False,
        clock=fixed_clock(NOW),
        on_page=lambda run: seen.append(run.counts.fetched),
    )
    assert seen == [3, 5]


# ---- quarantine ----------------------------------------------------------------------------------


def test_quarantine_keeps_reason_and_raw_updates_last_seen_and_releases_fixed_records(
    store: Store, mappings: dict[str, EntityMapping]
) -> None:
    bad = ticket("t9", 1, status="escalated")
    no_id = {"updated_at": at(2), "status": "open"}
    adapter = FakeAdapter({"tickets": [[bad, no_id, ticket("t1", 1)]]})

    run_tickets(store, adapter, mappings, now=NOW)
    entries = quarantined(store)
    anonymous = "sha1:" + hashlib.sha1(canonical_json(no_id).encode()).hexdigest()
    assert set(entries) == {"t9", anonymous}
    entry = entries["t9"]
    assert (entry.source, entry.entity) == (SOURCE, "tickets")
    assert json.loads(entry.raw) == bad
    assert "status" in entry.reason and "escalated" in entry.reason and "no default" in entry.reason
    assert entry.first_seen == entry.last_seen == NOW
    assert "external_id" in entries[anonymous].reason and "required" in entries[anonymous].reason
    assert "t9" not in stored_tickets(store)

    later = NOW + timedelta(days=1)
    again = run_tickets(store, adapter, mappings, full=True, now=later)
    assert again.counts.quarantined == 2
    entry = quarantined(store)["t9"]
    assert (entry.first_seen, entry.last_seen) == (NOW, later)

    adapter.pages["tickets"].append([ticket("t9", 5, status="closed")])  # fixed in the CRM
    fixed = run_tickets(store, adapter, mappings, now=later + timedelta(days=1))
    assert fixed.counts.inserted == 1 and fixed.counts.quarantined == 0
    assert set(quarantined(store)) == {anonymous}
    assert stored_tickets(store)["t9"].status == "closed"


def test_a_large_page_releases_fixed_records_anywhere_in_it(
    store: Store, mappings: dict[str, EntityMapping]
) -> None:
    adapter = FakeAdapter({"tickets": [[ticket("t1100", 1, status="?"), ticket("t0", 1, status="?")]]})
    run_tickets(store, adapter, mappings)
    assert set(quarantined(store)) == {"t1100", "t0"}
    adapter.pages["tickets"].append([ticket(f"t{n}", 2) for n in range(1200)])
    run = run_tickets(store, adapter, mappings)
    assert run.counts.inserted == 1200
    assert quarantined(store) == {}


def test_a_value_the_store_cannot_take_is_quarantined_not_fatal(
    store: Store, mappings: dict[str, EntityMapping]
) -> None:
    page = [
        ticket("t1", 1, owner={"id": "u1"}),
        ticket("t2", 2, subject="nul\x00byte"),
        ticket("x" * 200, 3),
        ticket("t3", 4),
    ]
    run = run_tickets(store, FakeAdapter({"tickets": [page]}), mappings)
    assert run.status == "success"
    assert (run.counts.inserted, run.counts.quarantined) == (1, 3)
    entries = quarantined(store)
    assert {"t1", "t2"} < set(entries)
    assert "expected text" in entries["t1"].reason and "NUL" in entries["t2"].reason
    too_long = next(e for k, e in entries.items() if k.startswith("sha1:"))
    assert "128 characters" in too_long.reason


def test_half_an_emoji_is_stored_not_fatal(store: Store, mappings: dict[str, EntityMapping]) -> None:
    cut = json.loads('"李\\ud83d"')
    good = ticket("t1", 1, subject=cut, note=cut)
    bad = ticket("t2", 2, status=cut)
    run = run_tickets(store, FakeAdapter({"tickets": [[good, bad]]}), mappings)
    assert run.status == "success", run.error
    stored = stored_tickets(store)["t1"]
    assert stored.subject == "李\ufffd"
    assert json.loads(stored.raw) == good  # the raw record stays exact, escaped
    entry = quarantined(store)["t2"]
    assert json.loads(entry.raw) == bad and "\ufffd" in entry.reason


# ---- deletions -----------------------------------------------------------------------------------


def test_deletions_stream_marks_deleted_at(store: Store, mappings: dict[str, EntityMapping]) -> None:
    when = BASE + timedelta(days=3)
    adapter = FakeAdapter(
        {"tickets": PAGES},
        deletions={"tickets": [DeletedPage(deleted=[("t1", when), ("unknown", when)], cursor={"page": 1})]},
    )
    run = run_tickets(store, adapter, mappings)

    assert run.counts.deleted == 1 and run.counts.api_calls == 3
    rows = stored_tickets(store)
    assert rows["t1"].deleted_at == when
    assert all(rows[k].deleted_at is None for k in ("t2", "t3", "t4"))
    assert cursor_of(store, "deletions") == {"page": 1}

    adapter.deletions["tickets"].append(DeletedPage(deleted=[("t2", when)], cursor={"page": 2}))
    later = run_tickets(store, adapter, mappings)
    assert adapter.deletion_pulls[-1] == ("tickets", {"page": 1})
    assert later.counts.deleted == 1
    assert stored_tickets(store)["t2"].deleted_at == when
    assert len(stored_tickets(store)) == 4  # never removed


def test_complete_id_scan_marks_missing_rows_deleted(
    store: Store, mappings: dict[str, EntityMapping]
) -> None:
    adapter = FakeAdapter({"tickets": PAGES})
    run_tickets(store, adapter, mappings)
    adapter.deletions["tickets"] = [
        DeletedPage(deleted=[], cursor=None, complete_ids=frozenset({"t1", "t3"}))
    ]
    scan_time = NOW + timedelta(hours=2)

    run = run_tickets(store, adapter, mappings, now=scan_time)

    assert run.counts.deleted == 2
    rows = stored_tickets(store)
    assert {k for k, r in rows.items() if r.deleted_at is not None} == {"t2", "t4"}
    assert rows["t2"].deleted_at == scan_time
    assert cursor_of(store, "deletions") is None  # a scan has no cursor to keep


def test_full_rerun_with_deletions_ends_in_the_same_state(
    store: Store, mappings: dict[str, EntityMapping]
) -> None:
    when = BASE + timedelta(days=3)
    adapter = FakeAdapter(
        {"tickets": PAGES}, deletions={"tickets": [DeletedPage(deleted=[("t1", when)], cursor={"page": 1})]}
    )
    run_tickets(store, adapter, mappings)
    before = snapshot(store)
    run_tickets(store, adapter, mappings, full=True)
    assert snapshot(store) == before


# ---- failures ------------------------------------------------------------------------------------


def test_api_error_mid_stream_records_a_failed_run(store: Store, mappings: dict[str, EntityMapping]) -> None:
    pages = [[ticket("t1", 1)], [ticket("t2", 2)], [ticket("t3", 3)]]
    adapter = FakeAdapter({"tickets": pages}, fail_after=1)

    run = run_tickets(store, adapter, mappings)

    assert run.status == "failed"
    assert run.error == "ApiError: HTTP 503 from the CRM"
    assert counts_of(run) == {
        "fetched": 1,
        "inserted": 1,
        "updated": 0,
        "unchanged": 0,
        "deleted": 0,
        "quarantined": 0,
        "api_calls": 2,
    }
    row = run_row(store, run.run_id)
    assert (row.status, row.error, row.fetched, row.inserted, row.api_calls) == ("failed", run.error, 1, 1, 2)
    assert row.finished_at == NOW
    assert cursor_of(store) == {"page": 1}
    assert set(stored_tickets(store)) == {"t1"}
    assert adapter.deletion_pulls == []  # deletions wait for a run whose records stream got through


class QuotaSpent(RuntimeError):
    """Shaped like ShareCRM's QuotaExhausted (a :class:`connector.adapter.CallBudgetSpent`)."""

    def __init__(self, resets_at: datetime) -> None:
        super().__init__("the daily API quota is used up")
        self.resets_at = resets_at


def test_a_spent_call_budget_stops_the_source_until_it_resets(
    store: Store, mappings: dict[str, EntityMapping]
) -> None:
    """Not a failure: the entity ends stopped with the reason and the reset time, the cursor stays at
    the last committed page, and the source's other entities are not begun (they would only hit the
    same refusal). The next run resumes from the cursor."""
    resets_at = datetime(2026, 10, 2, 16, tzinfo=UTC)  # 00:00 Asia/Shanghai
    contacts = [[{"id": "c1", "updated_at": at(1), "name": "王芳"}]]
    pages = {"tickets": [[ticket("t1", 1)], [ticket("t2", 2)]], "contacts": contacts}
    adapter = FakeAdapter(pages, fail_after=1, error=QuotaSpent(resets_at))

    runs = sync_source(store, SOURCE, adapter, mappings, clock=fixed_clock(NOW))

    [run] = runs
    assert (run.entity, run.status, run.resumes_at) == ("tickets", "stopped", resets_at)
    assert run.error == "QuotaSpent: the daily API quota is used up"
    assert run.as_dict()["resumes_at"] == "2026-10-02T16:00:00+00:00"
    assert [entity for entity, _ in adapter.pulls] == ["tickets"]
    row = run_row(store, run.run_id)
    assert (row.status, row.error, row.fetched) == ("stopped", run.error, 1)
    assert cursor_of(store) == {"page": 1}

    after_reset = FakeAdapter(pages)
    resumed = sync_source(store, SOURCE, after_reset, mappings, clock=fixed_clock(resets_at))
    assert [(r.entity, r.status, r.counts.fetched) for r in resumed] == [
        ("tickets", "success", 1),
        ("contacts", "success", 1),
    ]
    assert after_reset.pulls[0] == ("tickets", {"page": 1})


def test_a_failed_entity_does_not_stop_the_others(store: Store, mappings: dict[str, EntityMapping]) -> None:
    contacts = [[{"id": "c1", "updated_at": at(1), "name": "王芳"}]]
    adapter = FakeAdapter(
        {"tickets": [[ticket("t1", 1)], [ticket("t2", 2)]], "contacts": contacts}, fail_after=1
    )
    runs = sync_source(store, SOURCE, adapter, mappings, clock=fixed_clock(NOW))
    assert [(r.entity, r.status) for r in runs] == [("tickets", "failed"), ("contacts", "success")]
    with store.connect() as conn:
        statuses = dict(conn.execute(sa.select(sync_runs.c.entity, sync_runs.c.status)).all())
    assert statuses == {"tickets": "failed", "contacts": "success"}


def test_sync_source_filters_entities_and_skips_unmapped_ones(
    store: Store, mappings: dict[str, EntityMapping]
) -> None:
    adapter = FakeAdapter({"agents": [[{"id": "a1"}]], "contacts": [[]], "tickets": [[ticket("t1", 1)]]})
    runs = sync_source(store, SOURCE, adapter, mappings, clock=fixed_clock(NOW))
    assert [r.entity for r in runs] == ["contacts", "tickets"]  # agents: no mapping for this source
    only = sync_source(
        store, SOURCE, adapter, mappings, entities=["tickets"], full=True, clock=fixed_clock(NOW)
    )
    assert [r.entity for r in only] == ["tickets"]


# ---- crash safety (issue 2, "Must show") -----------------------------------------------------------

CRASH_PAGES = [
    [ticket("t1", 1), ticket("t2", 2), ticket("bad", 3, status="?")],
    [ticket("t3", 4), ticket("t1", 5, "resolved")],
    [ticket("t2", 6, "closed"), ticket("t4", 7, "pending"), ticket("bad", 8, status="??")],
    [ticket("t1", 9, "closed"), ticket("t3", 2, "closed")],  # t3's version here is older than the stored one
    [ticket("t5", 10), ticket("t4", 11, "resolved")],
]


@pytest.mark.parametrize("killed_after", [0, 1, 2, 4])
def test_a_sync_killed_after_page_k_resumes_there_and_ends_identical(
    store: Store, other_store: Store, mappings: dict[str, EntityMapping], killed_after: int
) -> None:
    deletions = {"tickets": [DeletedPage(deleted=[("t5", BASE + timedelta(days=2))], cursor={"page": 1})]}

    reference = run_tickets(other_store, FakeAdapter({"tickets": CRASH_PAGES}, dict(deletions)), mappings)
    assert reference.status == "success"

    crashing = FakeAdapter({"tickets": CRASH_PAGES}, dict(deletions), fail_after=killed_after)
    crashed = run_tickets(store, crashing, mappings)
    assert crashed.status == "failed"
    assert crashed.counts.fetched == sum(len(p) for p in CRASH_PAGES[:killed_after])
    assert cursor_of(store) == ({"page": killed_after} if killed_after else None)

    resuming = FakeAdapter({"tickets": CRASH_PAGES}, dict(deletions))
    resumed = run_tickets(store, resuming, mappings)
    assert resumed.status == "success"
    assert resuming.pulls == [("tickets", {"page": killed_after} if killed_after else None)]
    assert resumed.counts.fetched == sum(len(p) for p in CRASH_PAGES[killed_after:])  # no page read twice

    assert snapshot(store) == snapshot(other_store)
    history = snapshot(store)["ticket_status_history"]
    assert len(history) == 9  # derivation ran across the crash exactly as without it


@pytest.mark.parametrize("dies_in", ["upsert", "save_cursor"])
def test_a_crash_inside_a_page_commits_nothing_of_that_page(
    store: Store,
    other_store: Store,
    mappings: dict[str, EntityMapping],
    monkeypatch: pytest.MonkeyPatch,
    dies_in: str,
) -> None:
    """Rows, history, quarantine and cursor of a page are one transaction, whichever step dies."""
    run_tickets(other_store, FakeAdapter({"tickets": CRASH_PAGES}), mappings)
    real = getattr(sync_module, dies_in)

    def dies_on_page_three(conn: Any, *args: Any) -> Any:
        page_three = (
            any(r["external_id"] == "t4" for r in args[1]) if dies_in == "upsert" else args[3] == {"page": 3}
        )
        if page_three:
            raise OSError("power lost")
        return real(conn, *args)

    monkeypatch.setattr(sync_module, dies_in, dies_on_page_three)
    crashed = run_tickets(store, FakeAdapter({"tickets": CRASH_PAGES}), mappings)
    assert crashed.status == "failed" and "power lost" in (crashed.error or "")
    assert crashed.counts.fetched == 5  # pages 1 and 2 only: page 3 was rolled back
    assert run_row(store, crashed.run_id).fetched == 5
    assert cursor_of(store) == {"page": 2}
    rows = stored_tickets(store)
    assert "t4" not in rows and rows["t2"].status == "open"
    with store.connect() as conn:
        changed = conn.execute(sa.select(ticket_status_history.c.changed_at)).scalars().all()
        bad = conn.execute(sa.select(quarantine.c.raw)).scalars().one()
    assert max(changed) == BASE + timedelta(minutes=5)
    assert json.loads(bad)["status"] == "?"  # page 3's version of the bad record was rolled back

    monkeypatch.setattr(sync_module, dies_in, real)
    resumed = run_tickets(store, FakeAdapter({"tickets": CRASH_PAGES}), mappings)
    assert resumed.status == "success"
    assert snapshot(store) == snapshot(other_store)


def test_sync_state_rows_are_per_source_entity_and_stream(
    store: Store, mappings: dict[str, EntityMapping]
) -> None:
    adapter = FakeAdapter(
        {"tickets": PAGES}, deletions={"tickets": [DeletedPage(deleted=[], cursor={"page": 1})]}
    )
    run_tickets(store, adapter, mappings)
    with store.connect() as conn:
        rows = conn.execute(
            sa.select(
                sync_state.c.source,
                sync_state.c.entity,
                sync_state.c.stream,
                sync_state.c.cursor,
                sync_state.c.updated_at,
            )
        ).all()
    assert sorted(rows) == [
        (SOURCE, "tickets", "deletions", '{"page": 1}', NOW),
        (SOURCE, "tickets", "records", '{"page": 2}', NOW),
    ]
