"""The sync engine: pull → map → upsert, one transaction per page.

CRM-agnostic. For each (source, entity) it asks the adapter for pages changed since the stored
cursor, maps each record, and in ONE transaction upserts the page's rows, quarantines what did not
map, records ticket status transitions, stores the page's cursor and the run's running counts. A
crash therefore loses at most the page in flight and never skips one: the next run resumes from the
last committed cursor, and the idempotent upsert absorbs any overlap.

A stop request (SIGTERM to ``run`` or ``sync``) is cooperative: ``should_stop`` is asked after each
committed page, so the page in flight is finished and committed, the run is recorded ``stopped`` and
the cursor stays at that page for the next run to resume from. A stop that comes while the adapter
waits to retry a call (:class:`connector.adapter.StopRequested`) ends that wait at once; the page it
was fetching is asked for again by the next run.

Deletions come from the adapter's ``deleted`` stream (or a complete id scan) and only ever set
``deleted_at``; rows are never removed.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import Any

import orjson
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from connector.adapter import Adapter, CallBudgetSpent, Cursor, DeletedPage, Page, StopRequested
from connector.clock import Clock
from connector.mapping import EntityMapping, RecordError
from connector.prefetch import ReadAhead
from connector.store import Store, mark_deleted, mark_missing_deleted, upsert
from connector.store.schema import ENTITY_TABLES, quarantine, sync_runs, sync_state
from connector.store.upsert import id_set
from connector.ticket_history import derive_resolution

log = logging.getLogger(__name__)


@dataclass
class RunCounts:
    fetched: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    quarantined: int = 0
    api_calls: int = 0


@dataclass
class EntityRun:
    """The outcome of syncing one entity of one source (one ``sync_runs`` row)."""

    source: str
    entity: str
    run_id: int
    status: str = "running"
    counts: RunCounts = field(default_factory=RunCounts)
    error: str | None = None
    quarantine_reasons: list[str] = field(default_factory=list)
    resumes_at: datetime | None = None  # stopped by the CRM's call budget: nothing before this time

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "entity": self.entity,
            "run_id": self.run_id,
            "status": self.status,
            **asdict(self.counts),
            "error": self.error,
            "resumes_at": self.resumes_at.isoformat() if self.resumes_at else None,
        }


PageCallback = Callable[[EntityRun], None]
StopCheck = Callable[[], bool]


def _never() -> bool:
    return False


def canonical_json(raw: Mapping[str, Any]) -> str:
    """Stable JSON text: equal records give equal text, so the upsert can compare content.

    orjson writes the same text as ``json.dumps(sort_keys=True, ensure_ascii=False)`` for CRM records
    at a seventh of the cost (this runs once per synced record). What it refuses — a lone surrogate
    (half an emoji), integers beyond 64 bits, non-string keys — goes through the standard library,
    escaped to ASCII so the store can encode it.
    """
    try:
        return orjson.dumps(raw, option=orjson.OPT_SORT_KEYS, default=str).decode()
    except (orjson.JSONEncodeError, UnicodeDecodeError):
        return json.dumps(raw, sort_keys=True, ensure_ascii=True, separators=(",", ":"), default=str)


def load_cursor(conn: Connection, source: str, entity: str, stream: str) -> Cursor | None:
    value = conn.execute(
        sa.select(sync_state.c.cursor).where(
            sync_state.c.source == source, sync_state.c.entity == entity, sync_state.c.stream == stream
        )
    ).scalar_one_or_none()
    return json.loads(value) if value else None


def save_cursor(
    conn: Connection, source: str, entity: str, stream: str, cursor: Cursor | None, now: datetime
) -> None:
    key = (sync_state.c.source == source) & (sync_state.c.entity == entity) & (sync_state.c.stream == stream)
    text = json.dumps(cursor, sort_keys=True) if cursor is not None else None
    if conn.execute(sa.update(sync_state).where(key).values(cursor=text, updated_at=now)).rowcount == 0:
        conn.execute(
            sa.insert(sync_state).values(
                source=source, entity=entity, stream=stream, cursor=text, updated_at=now
            )
        )


def _quarantine_id(mapping: EntityMapping, raw: Mapping[str, Any]) -> str:
    id_column = next(c for c in mapping.columns if c.name == "external_id")
    try:
        value = id_column.value(raw)
    except RecordError:
        value = None
    if value not in (None, ""):
        return str(value)
    return "sha1:" + hashlib.sha1(canonical_json(raw).encode()).hexdigest()


class _PageWriter:
    """Writes one mapped page and its bookkeeping inside the caller's transaction."""

    def __init__(self, source: str, mapping: EntityMapping) -> None:
        self.source, self.mapping = source, mapping
        self.entity = mapping.entity
        self.columns = [c.name for c in ENTITY_TABLES[self.entity].columns]

    def map_page(
        self, records: Iterable[Mapping[str, Any]], now: datetime
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        rows, bad = [], []
        blank = dict.fromkeys(self.columns)  # every column, so the upsert gets complete rows
        blank.update(source=self.source, synced_at=now)
        for raw in records:
            try:
                mapped = self.mapping.apply(raw)
            except RecordError as exc:
                bad.append(
                    {
                        "external_id": _quarantine_id(self.mapping, raw),
                        "raw": canonical_json(raw),
                        "reason": str(exc),
                    }
                )
                continue
            row = blank.copy()
            row.update(mapped)
            row["raw"] = canonical_json(raw)
            rows.append(row)
        return rows, bad

    def write(
        self,
        conn: Connection,
        rows: list[dict[str, Any]],
        bad: list[dict[str, Any]],
        now: datetime,
        counts: RunCounts,
    ) -> None:
        if self.entity == "tickets" and "resolved_at" not in self.mapping.maps_column:
            derive_resolution(conn, self.source, rows, now)
        result = upsert(conn, self.entity, rows)
        counts.inserted += result.inserted
        counts.updated += result.updated
        counts.unchanged += result.unchanged
        self._quarantine(conn, bad, now)
        if rows:
            self._release_fixed(conn, [r["external_id"] for r in rows])
        counts.quarantined += len(bad)

    def _quarantine(self, conn: Connection, bad: list[dict[str, Any]], now: datetime) -> None:
        for item in bad:
            key = (
                (quarantine.c.source == self.source)
                & (quarantine.c.entity == self.entity)
                & (quarantine.c.external_id == item["external_id"])
            )
            seen = conn.execute(
                sa.update(quarantine).where(key).values(raw=item["raw"], reason=item["reason"], last_seen=now)
            ).rowcount
            if not seen:
                conn.execute(
                    sa.insert(quarantine).values(
                        source=self.source, entity=self.entity, first_seen=now, last_seen=now, **item
                    )
                )

    def _release_fixed(self, conn: Connection, external_ids: Sequence[str]) -> None:
        """A record that maps now (the CRM data or the mapping was fixed) leaves the quarantine."""
        id_items, encode = id_set(conn.dialect)
        conn.execute(
            sa.text(
                "DELETE FROM quarantine WHERE source = :source AND entity = :entity "
                f"AND external_id IN (SELECT k.value FROM {id_items})"
            ),
            {"source": self.source, "entity": self.entity, "ids": encode(list(external_ids))},
        )


def _start_run(store: Store, source: str, entity: str, now: datetime) -> int:
    with store.begin() as conn:
        return conn.execute(
            sa.insert(sync_runs).values(
                job="sync",
                source=source,
                entity=entity,
                started_at=now,
                status="running",
                fetched=0,
                inserted=0,
                updated=0,
                unchanged=0,
                deleted=0,
                quarantined=0,
                api_calls=0,
            )
        ).inserted_primary_key[0]


def _record_counts(conn: Connection, run_id: int, counts: RunCounts, **extra: Any) -> None:
    conn.execute(sa.update(sync_runs).where(sync_runs.c.id == run_id).values(**asdict(counts), **extra))


def sync_entity(
    store: Store,
    source: str,
    adapter: Adapter,
    mapping: EntityMapping,
    *,
    full: bool,
    clock: Clock,
    on_page: PageCallback | None = None,
    should_stop: StopCheck | None = None,
) -> EntityRun:
    """Sync one entity; never raises for API failures — the run row says what happened.

    ``should_stop`` is checked between pages; once it answers true no further page is requested, the
    pages already fetched (the one being stored, at most two read ahead) are committed, and the run
    ends ``stopped`` (the deletions stream then waits for the next run).
    """
    stop = should_stop or _never
    entity = mapping.entity
    run = EntityRun(source=source, entity=entity, run_id=_start_run(store, source, entity, clock()))
    calls_before = adapter.api_calls
    writer = _PageWriter(source, mapping)
    try:
        with store.connect() as conn:
            cursor = None if full else load_cursor(conn, source, entity, "records")
            deletions_cursor = None if full else load_cursor(conn, source, entity, "deletions")
        stopped = False
        # The next page is fetched while this one is mapped and stored (connector.prefetch). Not on
        # an in-memory SQLite store: its one connection would be shared by two threads (the
        # adapter's token cache writes to the store).
        pulled = adapter.pull(entity, cursor)
        with ReadAhead(pulled, name=f"pull-{entity}", threaded=not store.shares_one_connection) as pages:
            for page in pages:
                _commit_page(store, run, writer, page, clock, adapter, calls_before)
                if on_page:
                    on_page(run)
                if not stopped and stop():
                    stopped = True
                    pages.stop_reading()  # pages already fetched are committed; no new request
        if not stopped:
            for deleted_page in adapter.deleted(entity, deletions_cursor):
                _commit_deletions(store, run, deleted_page, entity, clock, adapter, calls_before)
                if on_page:
                    on_page(run)
                if stopped := stop():
                    break
        run.status = "stopped" if stopped else "success"
    except Exception as exc:  # the run is recorded; the cursor stays at the last committed page
        run.error = f"{type(exc).__name__}: {exc}"
        if isinstance(exc, StopRequested):  # a stop came in while the adapter waited to retry
            log.warning("sync of %s.%s stopped while waiting to retry a CRM call", source, entity)
            run.status, run.error = "stopped", None
        elif isinstance(exc, CallBudgetSpent):
            log.warning("sync of %s.%s stopped: %s", source, entity, exc)
            run.status, run.resumes_at = "stopped", exc.resets_at
        else:
            log.warning("sync of %s.%s failed: %s", source, entity, exc)
            run.status = "failed"
    run.counts.api_calls = adapter.api_calls - calls_before
    with store.begin() as conn:
        _record_counts(conn, run.run_id, run.counts, status=run.status, error=run.error, finished_at=clock())
        run.quarantine_reasons = list(
            conn.execute(
                sa.select(quarantine.c.reason)
                .where(quarantine.c.source == source, quarantine.c.entity == entity)
                .order_by(quarantine.c.last_seen.desc())
                .limit(5)
            ).scalars()
        )
    return run


def _commit_page(
    store: Store,
    run: EntityRun,
    writer: _PageWriter,
    page: Page,
    clock: Clock,
    adapter: Adapter,
    calls_before: int,
) -> None:
    now = clock()
    rows, bad = writer.map_page(page.records, now)
    # Counted on a copy that replaces the run's counts only once the page is committed: a page rolled
    # back must not show up in the run row that records the failure.
    counts = replace(run.counts, fetched=run.counts.fetched + len(page.records))
    with store.begin() as conn:
        writer.write(conn, rows, bad, now, counts)
        if page.cursor is not None:
            save_cursor(conn, run.source, run.entity, "records", page.cursor, now)
        counts.api_calls = adapter.api_calls - calls_before
        _record_counts(conn, run.run_id, counts)
    run.counts = counts


def _commit_deletions(
    store: Store,
    run: EntityRun,
    page: DeletedPage,
    entity: str,
    clock: Clock,
    adapter: Adapter,
    calls_before: int,
) -> None:
    now = clock()
    counts = replace(run.counts)  # as in _commit_page: adopted only once committed
    with store.begin() as conn:
        if page.complete_ids is not None:
            counts.deleted += mark_missing_deleted(conn, entity, run.source, page.complete_ids, now)
        counts.deleted += mark_deleted(conn, entity, run.source, page.deleted)
        if page.cursor is not None:
            save_cursor(conn, run.source, entity, "deletions", page.cursor, now)
        counts.api_calls = adapter.api_calls - calls_before
        _record_counts(conn, run.run_id, counts)
    run.counts = counts


def sync_source(
    store: Store,
    source: str,
    adapter: Adapter,
    mappings: Mapping[str, EntityMapping],
    *,
    entities: Sequence[str] | None = None,
    full: bool = False,
    clock: Clock,
    on_page: PageCallback | None = None,
    should_stop: StopCheck | None = None,
) -> list[EntityRun]:
    """Sync every wanted entity of one source in adapter order; one failed entity does not stop the rest.

    A stop request ends the entity in flight (see :func:`sync_entity`) and starts no further one; so
    does a spent call budget (:class:`connector.adapter.CallBudgetSpent`), which the rest would only
    run into again.
    """
    stop = should_stop or _never
    runs = []
    for entity in adapter.entities():
        if (entities is not None and entity not in entities) or entity not in mappings:
            continue  # an adapter may support entities this source's mapping leaves out
        if stop():
            break
        mapping = mappings[entity]
        run = sync_entity(
            store, source, adapter, mapping, full=full, clock=clock, on_page=on_page, should_stop=stop
        )
        runs.append(run)
        if run.resumes_at is not None:
            break
    return runs
