"""Writing canonical rows: the one upsert every sync and import goes through, appends to the
ticket status log, and deletion marks.

The CRM's modification time decides: a stored row is replaced only by a newer version, or by an
equally new one whose content (``raw``) or deletion mark differs — Zoho formula fields change without
moving ``Modified_Time``, and a record that reappears after being marked deleted must come back.
An older version (a late page, a replayed file) never overwrites a newer one.

Speed matters (a first sync of a clinic is ~10⁵ rows per entity). Rows are converted column by
column with each column type's own bind processor and sent in few statements built once per
dialect and entity — multi-row ``VALUES`` on SQLite (measured: as fast as ``executemany`` of a
one-row statement, faster when most rows are unchanged), one array per column on PostgreSQL
(several times faster than ``executemany``).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import chain
from operator import itemgetter
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Dialect

from connector.store.schema import ENTITY_TABLES

KEY = ("source", "external_id")
_NULL_SAFE_DISTINCT = {"sqlite": "IS NOT", "postgresql": "IS DISTINCT FROM"}
#: Bound-parameter ceilings: SQLite's default (999 before 3.32) and PostgreSQL's protocol limit.
_MAX_PARAMS = {"sqlite": 32_766 if sqlite3.sqlite_version_info >= (3, 32) else 999, "postgresql": 65_535}
_MAX_ROWS_PER_STATEMENT = 500  # beyond this, longer statements stopped paying off in the bench

Row = Mapping[str, Any]


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


def _mark(dialect: Dialect) -> str:
    return "?" if dialect.paramstyle == "qmark" else "%s"


def _id_set(dialect: Dialect, placeholder: str | None = None) -> tuple[str, Callable[[list[str]], Any]]:
    """A set of ids bound as ONE parameter, as a FROM item ``k`` with column ``value``, and how to
    encode the list for it. ``placeholder`` defaults to the driver's own (for ``exec_driver_sql``).

    One parameter has no bound-parameter limit, so 10⁵ ids need neither chunking nor a giant
    ``IN`` list (which PostgreSQL also plans badly once a generic plan is cached, and which
    SQLAlchemy re-renders on every execution).
    """
    if dialect.name == "postgresql":
        return f"unnest(CAST({placeholder or '%b'} AS text[])) AS k(value)", list
    return f"json_each({placeholder or '?'}) AS k", json.dumps


def id_set(dialect: Dialect, name: str = "ids") -> tuple[str, Callable[[list[str]], Any]]:
    """:func:`_id_set` for ``sa.text`` statements: the FROM item binds ``:name``."""
    return _id_set(dialect, f":{name}")


def _rows_source(columns: Sequence[sa.Column], dialect: Dialect, rows: int) -> str:
    """Where the new rows come from: column arrays on PostgreSQL, a multi-row VALUES on SQLite.

    psycopg re-parses any statement longer than 4 kB on every execution (its query cache stops
    there), which made a 500-row VALUES list slower than row-by-row; one array per column keeps the
    statement short and constant and lets the server unpack any number of rows. ``%b`` sends the
    arrays in binary: the text format escapes every element with a regex (the raw JSON is full of
    quotes) and was four times slower.
    """
    if dialect.name == "postgresql":
        arrays = ", ".join(f"CAST(%b AS {c.type.compile(dialect=dialect)}[])" for c in columns)
        return f"SELECT * FROM unnest({arrays})"
    # Numbered column-major parameters (?N): the values go to the driver one column after another,
    # so the rows are never transposed into tuples (a third of what Python cost after conversion).
    width = len(columns)
    values = (", ".join(f"?{column * rows + row + 1}" for column in range(width)) for row in range(rows))
    return "VALUES " + ", ".join(f"({row})" for row in values)


def upsert_sql(table: sa.Table, dialect: Dialect, rows: int = 1) -> str:
    """The upsert statement for ``rows`` rows (SQLite; PostgreSQL takes any number) — public for the bench."""
    try:
        distinct = _NULL_SAFE_DISTINCT[dialect.name]
    except KeyError:
        raise NotImplementedError(f"upsert supports SQLite and PostgreSQL, not {dialect.name}") from None
    quote = dialect.identifier_preparer.quote
    name = quote(table.name)
    columns = ", ".join(quote(c.name) for c in table.columns)
    updates = ", ".join(
        f"{quote(c.name)} = excluded.{quote(c.name)}" for c in table.columns if c.name not in KEY
    )
    return (
        f"INSERT INTO {name} ({columns}) {_rows_source(list(table.columns), dialect, rows)} "
        f"ON CONFLICT (source, external_id) DO UPDATE SET {updates} "
        f"WHERE excluded.updated_at > {name}.updated_at OR (excluded.updated_at = {name}.updated_at AND "
        f"(excluded.raw {distinct} {name}.raw OR excluded.deleted_at {distinct} {name}.deleted_at))"
    )


def _appended_columns(table: sa.Table) -> list[sa.Column]:
    """Every column but a generated integer key (the database numbers appended rows)."""
    return [c for c in table.columns if not (c.primary_key and c.autoincrement is True)]


def insert_sql(table: sa.Table, dialect: Dialect, rows: int = 1) -> str:
    """A plain multi-row INSERT of :func:`_appended_columns` (SQLite; PostgreSQL takes any number)."""
    quote = dialect.identifier_preparer.quote
    columns = _appended_columns(table)
    names = ", ".join(quote(c.name) for c in columns)
    return f"INSERT INTO {quote(table.name)} ({names}) {_rows_source(columns, dialect, rows)}"


def _stored_among_ids(
    table: sa.Table, dialect: Dialect, select: str, marks: tuple[str, str] | None = None
) -> str:
    """``SELECT {select}`` over the stored rows ``t`` of one source whose ids are in an id set.

    The ids drive the join, one primary-key probe each (SQLite takes ``CROSS JOIN`` as a join-order
    rule; left to itself it scanned the whole source per batch). ``marks`` are the placeholders of
    the id set and the source; the driver's own by default (for ``exec_driver_sql``).
    """
    ids_mark, source_mark = marks or (None, _mark(dialect))
    ids, _ = _id_set(dialect, ids_mark)
    name = dialect.identifier_preparer.quote(table.name)
    match = f"t.source = {source_mark} AND t.external_id = k.value"
    return f"SELECT {select} FROM {ids} CROSS JOIN {name} AS t WHERE {match}"


def stored_among_ids_sql(table: sa.Table, dialect: Dialect, select: str) -> str:
    """:func:`_stored_among_ids` for ``sa.text``: binds ``:ids`` (see :func:`id_set`) and ``:source``."""
    return _stored_among_ids(table, dialect, select, (":ids", ":source"))


Render = Callable[[sa.Table, Dialect, int], str]


@dataclass
class _Plan:
    """How one kind of statement (``render``: upsert or append) writes one table on one dialect."""

    table: sa.Table
    dialect: Dialect
    render: Render
    converters: list[tuple[Callable[[Row], Any], Callable[[Any], Any] | None]]
    rows_per_statement: int
    statements: dict[int, str] = field(default_factory=dict)

    def statement(self, rows: int) -> str:
        """The statement for ``rows`` VALUES rows (SQLite); PostgreSQL's one statement ignores it."""
        sql = self.statements.get(rows)
        if sql is None:
            sql = self.statements[rows] = self.render(self.table, self.dialect, rows)
        return sql


_PLANS: dict[tuple[str, str, str, Render], _Plan] = {}


def _as_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _converter(column: sa.Column, dialect: Dialect) -> Callable[[Any], Any] | None:
    process = column.type.dialect_impl(dialect).bind_processor(dialect)
    if dialect.name == "postgresql" and column.type.python_type is float:
        # psycopg refuses an array mixing int and float (a score of 90 next to 87.5).
        assert process is None, "a float column with its own bind processor needs a combined converter"
        return _as_float
    return process


def _plan(dialect: Dialect, table: sa.Table, render: Render, columns: Sequence[sa.Column]) -> _Plan:
    """The cached plan for ``render``'s statements, which write ``columns`` in this order."""
    cache_key = (dialect.name, dialect.driver, table.name, render)
    plan = _PLANS.get(cache_key)
    if plan is None:
        if dialect.name not in _MAX_PARAMS:
            raise NotImplementedError(f"the store supports SQLite and PostgreSQL, not {dialect.name}")
        if dialect.name == "postgresql" and dialect.driver != "psycopg":
            raise NotImplementedError("the store needs psycopg 3 on PostgreSQL: postgresql+psycopg://…")
        plan = _PLANS[cache_key] = _Plan(
            table=table,
            dialect=dialect,
            render=render,
            converters=[(itemgetter(c.name), _converter(c, dialect)) for c in columns],
            rows_per_statement=min(_MAX_ROWS_PER_STATEMENT, _MAX_PARAMS[dialect.name] // len(columns)),
        )
    return plan


def _check_columns(entity: str, table: sa.Table, rows: Sequence[Row]) -> None:
    width = len(table.columns)
    if all(len(row) == width for row in rows):
        return  # with the right count, a missing column surfaces as a KeyError while converting
    bad = next(row for row in rows if len(row) != width)
    missing = sorted(set(table.columns.keys()) - set(bad))
    unknown = sorted(set(bad) - set(table.columns.keys()))
    raise ValueError(f"{entity} row has missing columns {missing} and unknown columns {unknown}")


def _newest_per_key(rows: Sequence[Row]) -> Sequence[Row]:
    """One row per key: the newest ``updated_at``, the later row on a tie."""
    keys = list(zip(map(itemgetter("source"), rows), map(itemgetter("external_id"), rows), strict=True))
    latest = dict(zip(keys, rows, strict=True))
    if len(latest) == len(rows):
        return rows
    latest.clear()
    for key, row in zip(keys, rows, strict=True):
        kept = latest.get(key)
        if kept is None or row["updated_at"] >= kept["updated_at"]:
            latest[key] = row
    return list(latest.values())


def _driver_columns(plan: _Plan, rows: Sequence[Row]) -> list[list[Any]]:
    """Driver-ready values, column by column (C-level loops but for bind processors)."""
    columns = []
    for getter, process in plan.converters:
        values = map(getter, rows)
        columns.append(list(map(process, values) if process else values))
    return columns


def _write(conn: Connection, plan: _Plan, columns: list[list[Any]]) -> int:
    """Send the rows; returns how many were inserted or updated."""
    if plan.dialect.name == "postgresql":
        return conn.exec_driver_sql(plan.statement(0), tuple(columns)).rowcount
    total, step, changed = len(columns[0]), plan.rows_per_statement, 0
    for start in range(0, total, step):
        end = min(start + step, total)
        params = tuple(chain.from_iterable(column[start:end] for column in columns))
        changed += conn.exec_driver_sql(plan.statement(end - start), params).rowcount
    return changed


def _count_existing(conn: Connection, plan: _Plan, rows: Sequence[Row]) -> int:
    """How many of the batch's keys are stored already (built per batch: a few µs against the batch)."""
    ids_by_source: dict[str, list[str]] = {}
    for row in rows:
        ids_by_source.setdefault(row["source"], []).append(row["external_id"])
    count_sql = _stored_among_ids(plan.table, plan.dialect, "count(*)")
    _, encode = _id_set(plan.dialect)
    return sum(
        conn.exec_driver_sql(count_sql, (encode(ids), source)).scalar_one()
        for source, ids in ids_by_source.items()
    )


def upsert(conn: Connection, entity: str, rows: Sequence[Row]) -> UpsertCounts:
    """Insert or update ``rows`` (every column of the entity's table) in the caller's transaction."""
    if not rows:
        return UpsertCounts()
    table = _table(entity)
    plan = _plan(conn.dialect, table, upsert_sql, list(table.columns))
    _check_columns(entity, plan.table, rows)
    try:
        latest = _newest_per_key(rows)
        columns = _driver_columns(plan, latest)
    except KeyError as exc:
        raise ValueError(f"{entity} row lacks column {exc.args[0]!r}") from None
    inserted = len(latest) - _count_existing(conn, plan, latest)
    updated = _write(conn, plan, columns) - inserted
    return UpsertCounts(inserted, updated, len(rows) - inserted - updated)


def append_rows(conn: Connection, table: sa.Table, rows: Sequence[Row]) -> None:
    """Plain INSERT of ``rows`` (every column but a generated key) on the upsert's fast path.

    For append-only logs written once per synced record (ticket status history): SQLAlchemy's
    ``executemany`` of dicts cost more than the record's whole upsert.
    """
    if not rows:
        return
    plan = _plan(conn.dialect, table, insert_sql, _appended_columns(table))
    try:
        columns = _driver_columns(plan, rows)
    except KeyError as exc:
        raise ValueError(f"{table.name} row lacks column {exc.args[0]!r}") from None
    _write(conn, plan, columns)


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

    The ids land in an indexed temporary table (one parameter, see :func:`_id_set`), so the update is
    one primary-key probe per stored row on both dialects whatever the planners think of the id set.
    """
    table = _table(entity)
    # Left over only when an earlier call failed mid-way on SQLite (PostgreSQL rolls DDL back).
    _present.create(conn, checkfirst=True)
    conn.execute(sa.delete(_present))
    ids, encode = _id_set(conn.dialect)
    fill = f"INSERT INTO {_present.name} (external_id) SELECT DISTINCT k.value FROM {ids}"
    conn.exec_driver_sql(fill, (encode(list(present_ids)),))
    still_there = sa.exists().where(_present.c.external_id == table.c.external_id)
    stmt = (
        sa.update(table)
        .where(table.c.source == source, table.c.deleted_at.is_(None), ~still_there)
        .values(deleted_at=deleted_at)
    )
    marked = conn.execute(stmt).rowcount
    _present.drop(conn)
    return marked
