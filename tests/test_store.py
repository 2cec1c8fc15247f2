"""The store layer on SQLite and PostgreSQL: upsert semantics, deletion marks, time zones, tokens."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects.sqlite import base as sqlite_types

from connector.store import (
    LockBusy,
    SqlTokenCache,
    Store,
    UpsertCounts,
    mark_deleted,
    mark_missing_deleted,
    named_lock,
    open_store,
    upsert,
)
from connector.store.engine import create_store_engine
from connector.store.schema import auth_tokens, tickets
from connector.store.tokens import CachedToken

T0 = datetime(2026, 10, 5, 8, 0, tzinfo=UTC)
SYNCED = datetime(2026, 10, 6, tzinfo=UTC)


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    opened = open_store(db_url)
    yield opened
    opened.dispose()


def ticket(
    external_id: str, updated_at: datetime = T0, source: str = "zoho", **fields: Any
) -> dict[str, Any]:
    """A complete tickets row; ``raw`` follows the content so equal content gives equal text."""
    row: dict[str, Any] = {
        "source": source,
        "external_id": external_id,
        "contact_id": "c1",
        "owner_id": "a1",
        "subject": f"subject {external_id}",
        "category": "complaint",
        "channel": "phone",
        "priority": "high",
        "status": "open",
        "created_at": T0 - timedelta(days=1),
        "first_response_at": None,
        "resolved_at": None,
        "satisfaction": None,
        "updated_at": updated_at,
        "deleted_at": None,
        "synced_at": SYNCED,
    }
    row.update(fields)
    if "raw" not in fields:
        content = {k: v for k, v in row.items() if k not in ("synced_at", "deleted_at")}
        row["raw"] = json.dumps(content, default=str, sort_keys=True, separators=(",", ":"))
    return row


def write(store: Store, rows: list[dict[str, Any]], entity: str = "tickets") -> UpsertCounts:
    with store.begin() as conn:
        return upsert(conn, entity, rows)


def stored(store: Store, external_id: str, source: str = "zoho") -> Any:
    with store.connect() as conn:
        query = sa.select(tickets).where(tickets.c.source == source, tickets.c.external_id == external_id)
        return conn.execute(query).one()


def test_insert_stores_every_column(store: Store) -> None:
    rows = [ticket("t1", satisfaction=4), ticket("t2", status="pending")]
    assert write(store, rows) == UpsertCounts(inserted=2)
    for row in rows:
        assert stored(store, row["external_id"])._asdict() == row


def test_newer_version_wins_even_by_a_microsecond(store: Store) -> None:
    write(store, [ticket("t1"), ticket("t2")])
    newer = [
        ticket("t1", T0 + timedelta(hours=1), status="resolved"),
        ticket("t2", T0 + timedelta(microseconds=1), status="closed"),
    ]
    assert write(store, newer) == UpsertCounts(updated=2)
    assert stored(store, "t1").status == "resolved"
    assert stored(store, "t2").status == "closed"
    assert stored(store, "t2").updated_at == T0 + timedelta(microseconds=1)


def test_older_version_never_overwrites(store: Store) -> None:
    write(store, [ticket("t1", T0, status="resolved")])
    older = ticket("t1", T0 - timedelta(microseconds=1), status="open", raw='{"older":true}')
    assert write(store, [older]) == UpsertCounts(unchanged=1)
    row = stored(store, "t1")
    assert (row.status, row.updated_at) == ("resolved", T0)


def test_same_version_rerun_is_a_no_op(store: Store) -> None:
    rows = [ticket(f"t{i}") for i in range(5)]
    write(store, rows)
    rerun = [dict(r, synced_at=SYNCED + timedelta(days=1)) for r in rows]
    assert write(store, rerun) == UpsertCounts(unchanged=5)
    assert stored(store, "t0").synced_at == SYNCED  # nothing was written


def test_equal_version_with_different_raw_updates(store: Store) -> None:
    write(store, [ticket("t1")])
    recalculated = ticket("t1", T0, satisfaction=5, raw='{"formula":"changed"}')
    assert write(store, [recalculated]) == UpsertCounts(updated=1)
    row = stored(store, "t1")
    assert (row.raw, row.satisfaction) == ('{"formula":"changed"}', 5)


def test_delete_marks_and_reappearance_clears(store: Store) -> None:
    write(store, [ticket("t1"), ticket("t2")])
    gone_at = T0 + timedelta(hours=2)
    with store.begin() as conn:
        assert mark_deleted(conn, "tickets", "zoho", [("t1", gone_at), ("missing", gone_at)]) == 1
        assert mark_deleted(conn, "tickets", "zoho", [("t1", gone_at + timedelta(hours=1))]) == 0
        assert mark_deleted(conn, "tickets", "other-source", [("t2", gone_at)]) == 0
    assert stored(store, "t1").deleted_at == gone_at  # marked once, never moved, row kept
    assert stored(store, "t2").deleted_at is None
    # The same version showing up again (restored from the recycle bin) clears the mark.
    assert write(store, [ticket("t1")]) == UpsertCounts(updated=1)
    assert stored(store, "t1").deleted_at is None


def test_deleted_version_from_mapping_marks_row(store: Store) -> None:
    write(store, [ticket("t1")])
    invalidated = ticket("t1", T0, deleted_at=T0 + timedelta(hours=1))
    assert write(store, [invalidated]) == UpsertCounts(updated=1)
    assert stored(store, "t1").deleted_at == T0 + timedelta(hours=1)


def test_mark_missing_deleted(store: Store) -> None:
    write(store, [ticket(f"t{i}") for i in range(6)])
    write(store, [ticket("t1", source="other")])
    with store.begin() as conn:
        mark_deleted(conn, "tickets", "zoho", [("t5", T0)])
    scan_at = T0 + timedelta(days=1)
    with store.begin() as conn:
        marked = mark_missing_deleted(conn, "tickets", "zoho", ["t0", "t1", "t2", "unknown"], scan_at)
    assert marked == 2
    assert [stored(store, f"t{i}").deleted_at for i in range(6)] == [None, None, None, scan_at, scan_at, T0]
    assert stored(store, "t1", source="other").deleted_at is None
    with store.begin() as conn:  # a second scan in the same connection: the temp table is reusable
        assert mark_missing_deleted(conn, "tickets", "zoho", [], scan_at) == 3


def test_mark_missing_deleted_with_100k_present_ids(store: Store) -> None:
    write(store, [ticket(f"t{i:06d}") for i in range(1_000)])
    present = [f"t{i:06d}" for i in range(10, 100_000)]
    with store.begin() as conn:
        assert mark_missing_deleted(conn, "tickets", "zoho", present, T0) == 10
    with store.connect() as conn:
        gone = conn.execute(
            sa.select(tickets.c.external_id).where(tickets.c.deleted_at.is_not(None))
        ).scalars()
        assert sorted(gone) == [f"t{i:06d}" for i in range(10)]


def test_10k_row_batch(store: Store) -> None:
    rows = [ticket(f"t{i:05d}", T0 + timedelta(seconds=i), owner_id=f"a{i % 7}") for i in range(10_000)]
    assert write(store, rows) == UpsertCounts(inserted=10_000)
    with store.connect() as conn:
        got = conn.execute(sa.select(tickets).order_by(tickets.c.external_id)).all()
    assert [r._asdict() for r in got] == rows
    half_newer = [dict(r, updated_at=r["updated_at"] + timedelta(minutes=i % 2)) for i, r in enumerate(rows)]
    mixed = [*half_newer, ticket("new", T0)]
    assert write(store, mixed) == UpsertCounts(inserted=1, updated=5_000, unchanged=5_000)


def test_duplicates_within_a_batch_keep_the_newest(store: Store) -> None:
    batch = [
        ticket("a", T0 + timedelta(hours=1), status="pending"),
        ticket("a", T0 + timedelta(hours=3), status="resolved"),
        ticket("a", T0 + timedelta(hours=2), status="open"),
        ticket("b", T0, raw='{"first":1}'),
        ticket("b", T0, raw='{"second":2}'),
    ]
    assert write(store, batch) == UpsertCounts(inserted=2, unchanged=3)
    assert stored(store, "a").status == "resolved"
    assert stored(store, "b").raw == '{"second":2}'  # tie: the later row


def test_time_zone_round_trip(store: Store) -> None:
    shanghai = timezone(timedelta(hours=8))
    created = datetime(2026, 10, 1, 9, 30, 15, 123456, tzinfo=shanghai)
    write(store, [ticket("t1", created_at=created)])
    back = stored(store, "t1").created_at
    assert back == created
    assert back.utcoffset() == timedelta(0)
    assert (back.hour, back.day) == (1, 1)


def test_naive_datetime_rejected(store: Store) -> None:
    with pytest.raises(ValueError, match="naive datetime"), store.begin() as conn:
        upsert(conn, "tickets", [ticket("t1", created_at=datetime(2026, 10, 1, 9, 30))])
    with store.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(tickets)).scalar() == 0


def test_rows_must_carry_exactly_the_table_columns(store: Store) -> None:
    incomplete = ticket("t1")
    del incomplete["raw"]
    with pytest.raises(ValueError, match=r"missing columns \['raw'\]"), store.begin() as conn:
        upsert(conn, "tickets", [incomplete])
    renamed = dict(ticket("t1"), rawjson="{}")
    del renamed["raw"]
    with pytest.raises(ValueError, match="lacks column 'raw'"), store.begin() as conn:
        upsert(conn, "tickets", [renamed])
    with pytest.raises(ValueError, match="unknown entity"), store.begin() as conn:
        upsert(conn, "patients", [ticket("t1")])


def test_other_entities_and_empty_batches(store: Store) -> None:
    agent = {
        "source": "zoho", "external_id": "u1", "name": "李医生", "email": "li@clinic.cn", "phone": None,
        "department": "内科", "role": "客户经理", "active": True, "updated_at": T0, "deleted_at": None,
        "synced_at": SYNCED, "raw": '{"id":"u1"}',
    }  # fmt: skip
    assert write(store, [agent], "agents") == UpsertCounts(inserted=1)
    assert write(store, [], "agents") == UpsertCounts()
    with store.connect() as conn:
        assert conn.execute(sa.text("SELECT name, active FROM agents")).one() == ("李医生", True)


def test_float_column_accepts_ints_and_floats(store: Store) -> None:
    rows = [
        {"source": "exam", "external_id": f"e{i}", "agent_id": "u1", "kind": "knowledge", "score": score,
         "assessed_at": T0, "assessor": None, "updated_at": T0, "deleted_at": None, "synced_at": SYNCED,
         "raw": "{}"}
        for i, score in enumerate([90, 87.5, None])
    ]  # fmt: skip
    assert write(store, rows, "assessments") == UpsertCounts(inserted=3)
    with store.connect() as conn:
        scores = conn.exec_driver_sql("SELECT score FROM assessments ORDER BY external_id").scalars().all()
    assert scores == [90.0, 87.5, None]


def test_upsert_joins_the_callers_transaction(store: Store) -> None:
    with pytest.raises(RuntimeError, match="page failed"), store.begin() as conn:
        assert upsert(conn, "tickets", [ticket("t1")]) == UpsertCounts(inserted=1)
        raise RuntimeError("page failed")
    assert write(store, [ticket("t1")]) == UpsertCounts(inserted=1)  # nothing was kept


def test_sqlite_stores_sqlalchemy_datetime_text(sqlite_url: str) -> None:
    """The fast bind path writes exactly what SQLAlchemy's own DATETIME would: SQLite compares text."""
    store = open_store(sqlite_url)
    dialect = store.engine.dialect
    ours = tickets.c.updated_at.type.dialect_impl(dialect).bind_processor(dialect)
    theirs = sqlite_types.DATETIME().bind_processor(dialect)
    plus8 = timezone(timedelta(hours=8))
    values = [
        T0,
        T0,
        None,
        T0,
        datetime(2026, 10, 1, 9, 0, tzinfo=plus8),
        datetime(999, 1, 2, 3, 4, 5, 6, tzinfo=UTC),
        datetime(2026, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
        datetime(2026, 3, 1, 0, 0, 7, 250_000, tzinfo=plus8),
    ]
    expected = [None if v is None else theirs(v.astimezone(UTC).replace(tzinfo=None)) for v in values]
    assert [ours(v) for v in values] == expected
    assert expected[4] == "2026-10-01 01:00:00.000000"
    write(store, [ticket("t1", values[4])])
    with store.begin() as conn:
        conn.execute(sa.insert(tickets).values(ticket("t2", values[4])))  # SQLAlchemy's own path
        texts = conn.exec_driver_sql("SELECT updated_at FROM tickets ORDER BY external_id").scalars().all()
    store.dispose()
    assert texts == [expected[4]] * 2


def test_sqlite_pragmas_allow_reader_and_writer(sqlite_url: str) -> None:
    store = open_store(sqlite_url)
    with store.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 1_000
    store.dispose()


def test_store_repr_and_url_hide_the_password() -> None:
    store = Store(create_store_engine("postgresql://crm:s3cret@db.example/crm"))
    assert "s3cret" not in repr(store)
    assert "s3cret" not in store.url
    assert store.dialect == "postgresql"
    assert store.engine.url.drivername == "postgresql+psycopg"


def test_sql_token_cache(store: Store) -> None:
    cache = SqlTokenCache(store, clock=lambda: T0)
    assert cache.get("zoho") is None
    token = CachedToken("tok-1", T0 + timedelta(hours=1), {"api_domain": "https://www.zohoapis.com.cn"})
    cache.put("zoho", token)
    cache.put("sharecrm", CachedToken("tok-2", T0 + timedelta(hours=2)))
    assert cache.get("zoho") == token
    assert cache.get("sharecrm") == CachedToken("tok-2", T0 + timedelta(hours=2))
    replacement = CachedToken("tok-3", T0 + timedelta(hours=3))
    cache.put("zoho", replacement)
    assert cache.get("zoho") == replacement
    with store.connect() as conn:
        assert (
            conn.execute(sa.select(auth_tokens.c.obtained_at).where(auth_tokens.c.source == "zoho")).scalar()
            == T0
        )
    cache.invalidate("zoho")
    assert cache.get("zoho") is None
    assert cache.get("sharecrm") is not None


def test_token_refresh_lock_excludes_a_second_refresher(store: Store) -> None:
    cache = SqlTokenCache(store)
    with cache.refresh_lock("zoho"):
        with pytest.raises(LockBusy), named_lock(store, "token-refresh:zoho", wait=False):
            pass
        with named_lock(store, "token-refresh:sharecrm", wait=False):
            pass  # other sources refresh independently
    with named_lock(store, "token-refresh:zoho", wait=False):
        pass
