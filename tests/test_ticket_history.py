"""Ticket status history and the resolved_at derived from it, through the sync engine (SQLite and PG)."""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from connector.adapter import Cursor, DeletedPage, Page
from connector.clock import fixed_clock
from connector.mapping import EntityMapping, load_mapping
from connector.store import Store, open_store
from connector.store.schema import ticket_status_history, tickets
from connector.sync import EntityRun, sync_entity

TZ = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # long before any sync
SYNC = datetime(2026, 11, 1, 4, 0, tzinfo=UTC)

DERIVING = """
[entities.tickets]
object = "Cases"
[entities.tickets.columns]
external_id = "id"
updated_at = { path = "Modified_Time", transform = "iso_datetime" }
subject = "Subject"
status = { path = "Status", transform = "value_map", map = "status" }
[value_maps.status]
values = { "New" = "open", "On Hold" = "pending", "Resolved" = "resolved", "Closed" = "closed" }
"""


@dataclass
class OnePage:
    """An adapter that hands over the given records as one page."""

    records: list[dict[str, Any]]
    api_calls: int = 0

    def entities(self) -> Sequence[str]:
        return ["tickets"]

    def pull(self, entity: str, cursor: Cursor | None) -> Iterator[Page]:
        yield Page(records=self.records, cursor=None)

    def deleted(self, entity: str, cursor: Cursor | None) -> Iterator[DeletedPage]:
        return iter(())

    def push(self, target: str, records: Sequence[dict[str, Any]]) -> list[Any]:
        raise AssertionError("not used")

    def check(self) -> Any:
        raise AssertionError("not used")


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    opened = open_store(db_url)
    yield opened
    opened.dispose()


@pytest.fixture
def mapping(tmp_path: Path) -> EntityMapping:
    path = tmp_path / "cases.toml"
    path.write_text(DERIVING, encoding="utf-8")
    return load_mapping(path, TZ).entities["tickets"]


def case(external_id: str, hours: float, status: str | None, subject: str = "") -> dict[str, Any]:
    record = {
        "id": external_id,
        "Modified_Time": (T0 + timedelta(hours=hours)).isoformat(),
        "Subject": subject,
    }
    if status is not None:
        record["Status"] = status
    return record


def sync(
    store: Store, mapping: EntityMapping, *records: dict[str, Any], now: datetime = SYNC, source: str = "zoho"
) -> EntityRun:
    run = sync_entity(store, source, OnePage(list(records)), mapping, full=True, clock=fixed_clock(now))
    assert run.status == "success", run.error
    return run


def stored(store: Store, external_id: str, source: str = "zoho") -> Any:
    with store.connect() as conn:
        return conn.execute(
            sa.select(tickets).where(tickets.c.source == source, tickets.c.external_id == external_id)
        ).one()


def history(store: Store, external_id: str, source: str = "zoho") -> list[tuple[Any, ...]]:
    h = ticket_status_history
    with store.connect() as conn:
        return [
            tuple(row)
            for row in conn.execute(
                sa.select(h.c.from_status, h.c.to_status, h.c.changed_at, h.c.observed_at)
                .where(h.c.source == source, h.c.ticket_id == external_id)
                .order_by(h.c.id)
            )
        ]


def hours(n: float) -> datetime:
    return T0 + timedelta(hours=n)


@pytest.mark.parametrize(("crm_status", "status"), [("Closed", "closed"), ("Resolved", "resolved")])
def test_first_sync_of_a_finished_ticket_takes_its_modification_time(
    store: Store, mapping: EntityMapping, crm_status: str, status: str
) -> None:
    sync(store, mapping, case("c1", 5, crm_status))
    row = stored(store, "c1")
    assert row.status == status
    assert row.resolved_at == hours(5)  # its last modification in the CRM …
    assert row.resolved_at != SYNC  # … never the time of the sync
    assert history(store, "c1") == [(None, status, hours(5), SYNC)]


def test_first_sync_of_an_open_ticket_has_no_resolution(store: Store, mapping: EntityMapping) -> None:
    sync(store, mapping, case("c1", 5, "New"))
    assert stored(store, "c1").resolved_at is None
    assert history(store, "c1") == [(None, "open", hours(5), SYNC)]


def test_resolved_then_closed_keeps_the_first_resolution(store: Store, mapping: EntityMapping) -> None:
    days = [SYNC + timedelta(days=n) for n in range(3)]
    sync(store, mapping, case("c1", 1, "New"), now=days[0])
    sync(store, mapping, case("c1", 2, "Resolved"), now=days[1])
    assert stored(store, "c1").resolved_at == hours(2)
    sync(store, mapping, case("c1", 3, "Closed"), now=days[2])

    row = stored(store, "c1")
    assert (row.status, row.resolved_at) == ("closed", hours(2))
    assert history(store, "c1") == [
        (None, "open", hours(1), days[0]),
        ("open", "resolved", hours(2), days[1]),
        ("resolved", "closed", hours(3), days[2]),
    ]


def test_versions_within_one_page_are_replayed_in_time_order(store: Store, mapping: EntityMapping) -> None:
    sync(store, mapping, case("c1", 3, "Closed"), case("c1", 1, "New"), case("c1", 2, "Resolved"))
    row = stored(store, "c1")
    assert (row.status, row.resolved_at) == ("closed", hours(2))
    assert [(f, t, c) for f, t, c, _ in history(store, "c1")] == [
        (None, "open", hours(1)),
        ("open", "resolved", hours(2)),
        ("resolved", "closed", hours(3)),
    ]


def test_a_reopened_ticket_loses_its_resolution_until_resolved_again(
    store: Store, mapping: EntityMapping
) -> None:
    sync(store, mapping, case("c1", 1, "New"))
    sync(store, mapping, case("c1", 2, "Resolved"))
    sync(store, mapping, case("c1", 3, "New"))
    assert stored(store, "c1").resolved_at is None
    sync(store, mapping, case("c1", 4, "On Hold"))
    assert stored(store, "c1").resolved_at is None
    sync(store, mapping, case("c1", 5, "Closed"))

    assert stored(store, "c1").resolved_at == hours(5)
    assert [(f, t, c) for f, t, c, _ in history(store, "c1")] == [
        (None, "open", hours(1)),
        ("open", "resolved", hours(2)),
        ("resolved", "open", hours(3)),
        ("open", "pending", hours(4)),
        ("pending", "closed", hours(5)),
    ]


def test_an_older_version_adds_no_transition_and_changes_nothing(
    store: Store, mapping: EntityMapping
) -> None:
    sync(store, mapping, case("c1", 1, "New"))
    sync(store, mapping, case("c1", 3, "Closed"))
    before = history(store, "c1")

    run = sync(store, mapping, case("c1", 2, "New"))  # a late page replaying an old version

    assert run.counts.unchanged == 1
    row = stored(store, "c1")
    assert (row.status, row.resolved_at, row.updated_at) == ("closed", hours(3), hours(3))
    assert history(store, "c1") == before


def test_a_newer_version_with_the_same_status_is_no_transition(store: Store, mapping: EntityMapping) -> None:
    sync(store, mapping, case("c1", 1, "Closed", subject="a"))
    sync(store, mapping, case("c1", 4, "Closed", subject="b"))
    sync(store, mapping, case("c1", 4, "Closed", subject="formula changed, same time"))
    row = stored(store, "c1")
    assert (row.subject, row.resolved_at) == ("formula changed, same time", hours(1))
    assert len(history(store, "c1")) == 1


def test_a_version_without_status_records_no_transition(store: Store, mapping: EntityMapping) -> None:
    sync(store, mapping, case("c1", 1, "New"))
    run = sync(store, mapping, case("c1", 2, None))
    assert run.counts.updated == 1
    assert stored(store, "c1").status is None
    sync(store, mapping, case("c1", 3, "Resolved"))
    assert stored(store, "c1").resolved_at == hours(3)
    assert [(f, t) for f, t, _, _ in history(store, "c1")] == [(None, "open"), (None, "resolved")]


def test_sources_keep_separate_histories(store: Store, mapping: EntityMapping) -> None:
    sync(store, mapping, case("c1", 1, "Resolved"), source="east")
    sync(store, mapping, case("c1", 2, "Closed"), source="west")
    assert stored(store, "c1", "west").resolved_at == hours(2)
    assert stored(store, "c1", "east").resolved_at == hours(1)
    assert history(store, "c1", "west") == [(None, "closed", hours(2), SYNC)]


def test_a_mapped_resolved_at_bypasses_derivation(store: Store) -> None:
    jsonl = load_mapping("jsonl", TZ).entities["tickets"]
    base = {"owner_id": "u1", "created_at": "2026-03-02T08:00:00+08:00"}
    sync(
        store,
        jsonl,
        {"id": "j1", "updated_at": "2026-03-05T10:00:00+08:00", "status": "closed", **base},
        {
            "id": "j2",
            "updated_at": "2026-03-05T10:00:00+08:00",
            "status": "closed",
            "resolved_at": "2026-03-03T09:00:00+08:00",
            **base,
        },
    )
    assert stored(store, "j1").resolved_at is None  # the CRM's own field says nothing: nothing is made up
    assert stored(store, "j2").resolved_at == datetime(2026, 3, 3, 1, 0, tzinfo=UTC)
    assert history(store, "j1") == [] and history(store, "j2") == []


def test_a_page_larger_than_one_lookup_query(store: Store, mapping: EntityMapping) -> None:
    ids = [f"c{n:05d}" for n in range(1200)]
    sync(store, mapping, *(case(i, 1, "New") for i in ids))
    closing = [case(i, 2, "Closed") for i in ids]
    random.Random(7).shuffle(closing)
    sync(store, mapping, *closing)
    with store.connect() as conn:
        resolved = conn.execute(sa.select(tickets.c.resolved_at).distinct()).scalars().all()
        steps = conn.execute(
            sa.select(ticket_status_history.c.from_status, sa.func.count()).group_by(
                ticket_status_history.c.from_status
            )
        ).all()
    assert resolved == [hours(2)]
    assert sorted(steps, key=str) == sorted([(None, 1200), ("open", 1200)], key=str)
