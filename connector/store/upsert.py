"""Writing canonical rows: the one upsert every sync and import goes through, and deletion marks.

The CRM's modification time decides: a stored row is replaced only by a newer version, or by an
equally new one whose content (``raw``) or deletion mark differs — Zoho formula fields change without
moving ``Modified_Time``, and a record that reappears after being marked deleted must come back.
An older version (a late page, a replayed file) never overwrites a newer one.

Speed matters (a first sync of a clinic is ~10⁵ rows per entity), so the statement is built once per
dialect and entity and rows go to the driver's ``executemany`` as tuples, converted column by column
with each column type's own bind processor.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from operator import itemgetter
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Dialect

from connector.store.schema import ENTITY_TABLES

KEY = ("source", "external_id")
_NULL_SAFE_DISTINCT = {"sqlite": "IS NOT", "postgresql": "IS DISTINCT FROM"}


@dataclass(frozen=True)
class UpsertCounts:
    """Outcome per input row; superseded in-batch duplicates count as unchanged."""

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0

    def __add__(self, other: UpsertCounts) -> UpsertCounts:
        return UpsertCounts(
            self.inserted + other.inserted, self.updated + other.updated, self.unchanged + other.unchanged
        )


def _table(entity: str) -> sa.Table:
    try:
        return ENTITY_TABLES[entity]
    except KeyError:
        raise ValueError(f"unknown entity {entity!r}; known: {', '.join(ENTITY_TABLES)}") from None


@dataclass(frozen=True)
class _Plan:
    sql: str
    existing: tuple[str, Callable[[list[str]], Any]]
    columns: tuple[str, ...]
    converters: tuple[tuple[Callable[[Mapping[str, Any]], Any], Callable[[Any], Any] | None], ...]


_PLANS: dict[tuple[str, str, str], _Plan] = {}


def upsert_sql(table: sa.Table, dialect: Dialect) -> str:
    """The single-row upsert statement in the driver's own parameter style (public for the bench)."""
    try:
        distinct = _NULL_SAFE_DISTINCT[dialect.name]
    except KeyError:
        raise NotImplementedError(f"upsert supports SQLite and PostgreSQL, not {dialect.name}") from None
    quote = dialect.identifier_preparer.quote
    name = quote(table.name)
    columns = [quote(c.name) for c in table.columns]
    mark = "?" if dialect.paramstyle == "qmark" else "%s"
    updates = ", ".join(
        f"{quote(c.name)} = excluded.{quote(c.name)}" for c in table.columns if c.name not in KEY
    )
    return (
        f"INSERT INTO {name} ({', '.join(columns)}) VALUES ({', '.join([mark] * len(columns))}) "
        f"ON CONFLICT (source, external_id) DO UPDATE SET {updates} "
        f"WHERE excluded.updated_at > {name}.updated_at OR (excluded.updated_at = {name}.updated_at AND "
        f"(excluded.raw {distinct} {name}.raw OR excluded.deleted_at {distinct} {name}.deleted_at))"
    )


def _plan(dialect: Dialect, entity: str) -> _Plan:
    cache_key = (dialect.name, dialect.driver, entity)
    plan = _PLANS.get(cache_key)
    if plan is None:
        table = _table(entity)
        converters = tuple(
            (itemgetter(c.name), c.type.dialect_impl(dialect).bind_processor(dialect)) for c in table.columns
        )
        plan = _Plan(
            upsert_sql(table, dialect),
            _existing_sql(table, dialect),
            tuple(c.name for c in table.columns),
            converters,
        )
        _PLANS[cache_key] = plan
    return plan


def _newest_per_key(rows: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """One row per key: the newest ``updated_at``, the later row on a tie."""
    keys = list(zip(map(itemgetter("source"), rows), map(itemgetter("external_id"), rows), strict=True))
    latest = dict(zip(keys, rows, strict=True))
    if len(latest) == len(rows):
        return list(rows)
    latest.clear()
    for key, row in zip(keys, rows, strict=True):
        kept = latest.get(key)
        if kept is None or row["updated_at"] >= kept["updated_at"]:
            latest[key] = row
    return list(latest.values())


def _check_columns(entity: str, plan: _Plan, rows: Sequence[Mapping[str, Any]]) -> None:
    width = len(plan.columns)
    if all(len(row) == width for row in rows):
        return  # with the right count, a missing column surfaces as a KeyError while converting
    bad = next(row for row in rows if len(row) != width)
    missing = sorted(set(plan.columns) - set(bad))
    unknown = sorted(set(bad) - set(plan.columns))
    raise ValueError(f"{entity} row has missing columns {missing} and unknown columns {unknown}")


def _driver_rows(plan: _Plan, rows: Sequence[Mapping[str, Any]]) -> list[tuple[Any, ...]]:
    """Rows as driver-ready tuples, built column by column (C-level loops but for bind processors)."""
    columns = []
    for getter, process in plan.converters:
        values = map(getter, rows)
        columns.append(list(map(process, values) if process else values))
    return list(zip(*columns, strict=True))


def _existing_sql(table: sa.Table, dialect: Dialect) -> tuple[str, Callable[[list[str]], Any]]:
    """Count stored keys of a batch: the ids as ONE parameter, joined to the primary key.

    One parameter means no bound-parameter limit and no chunking; the join (ids outside, index
    lookups inside) keeps PostgreSQL on the primary key even with a cached generic plan made while
    the table was still small, where ``IN (…)`` drifted into scanning every row of the source.
    """
    name = dialect.identifier_preparer.quote(table.name)
    if dialect.name == "postgresql":
        ids, encode = "unnest(CAST(%s AS text[])) AS k(value)", list
    else:
        ids, encode = "json_each(?) AS k", json.dumps
    mark = "?" if dialect.paramstyle == "qmark" else "%s"
    sql = f"SELECT count(*) FROM {ids} JOIN {name} AS t ON t.source = {mark} AND t.external_id = k.value"
    return sql, encode


def _count_existing(conn: Connection, plan: _Plan, rows: Sequence[Mapping[str, Any]]) -> int:
    ids_by_source: dict[str, list[str]] = {}
    for row in rows:
        ids_by_source.setdefault(row["source"], []).append(row["external_id"])
    sql, encode = plan.existing
    return sum(
        conn.exec_driver_sql(sql, (encode(ids), source)).scalar_one() for source, ids in ids_by_source.items()
    )


def upsert(conn: Connection, entity: str, rows: Sequence[Mapping[str, Any]]) -> UpsertCounts:
    """Insert or update ``rows`` (every column of the entity's table) in the caller's transaction."""
    if not rows:
        return UpsertCounts()
    plan = _plan(conn.dialect, entity)
    _check_columns(entity, plan, rows)
    try:
        latest = _newest_per_key(rows)
        params = _driver_rows(plan, latest)
    except KeyError as exc:
        raise ValueError(f"{entity} row lacks column {exc.args[0]!r}") from None
    inserted = len(latest) - _count_existing(conn, plan, latest)
    changed = conn.exec_driver_sql(plan.sql, params).rowcount
    updated = changed - inserted
    return UpsertCounts(inserted, updated, len(rows) - inserted - updated)


def mark_deleted(conn: Connection, entity: str, source: str, items: Sequence[tuple[str, datetime]]) -> int:
    """Set ``deleted_at`` on stored rows not yet marked; returns how many were newly marked."""
    if not items:
        return 0
    table = _table(entity)
    stmt = (
        sa.update(table)
        .where(
            table.c.source == source,
            table.c.external_id == sa.bindparam("b_id"),
            table.c.deleted_at.is_(None),
        )
        .values(deleted_at=sa.bindparam("b_at"))
    )
    return conn.execute(stmt, [{"b_id": external_id, "b_at": at} for external_id, at in items]).rowcount


_present = sa.Table(
    "crm_present_ids",
    sa.MetaData(),
    sa.Column("external_id", sa.String(128), primary_key=True),
    prefixes=["TEMPORARY"],
)


def mark_missing_deleted(
    conn: Connection, entity: str, source: str, present_ids: Collection[str], deleted_at: datetime
) -> int:
    """Mark every live row of ``source`` whose id a complete id scan did not return.

    The ids go into a temporary table (indexed, one per connection) rather than a ``NOT IN`` list:
    a clinic has ~10⁵ ids, beyond SQLite's bound-parameter limit and slow as a PostgreSQL array scan.
    """
    table = _table(entity)
    # Left over only when an earlier call failed mid-way on SQLite (PostgreSQL rolls DDL back).
    _present.create(conn, checkfirst=True)
    conn.execute(sa.delete(_present))
    if present_ids:
        conn.execute(sa.insert(_present), [{"external_id": i} for i in set(present_ids)])
    still_there = sa.exists().where(_present.c.external_id == table.c.external_id)
    stmt = (
        sa.update(table)
        .where(table.c.source == source, table.c.deleted_at.is_(None), ~still_there)
        .values(deleted_at=deleted_at)
    )
    marked = conn.execute(stmt).rowcount
    _present.drop(conn)
    return marked
