"""SQL building blocks that behave alike on SQLite and PostgreSQL.

* :class:`epoch` — seconds since 1970 of a store timestamp, the unit all duration arithmetic uses.
  SQLite's ``julianday`` is a double with ~40 µs of noise, so it is rounded to milliseconds: an
  answer exactly 24 h after creation must compare equal to a 24 h limit, not 24 h + 40 µs. It
  rounds to whole milliseconds and divides, which gives the same double as ``ROUND(x, 3)`` (SQLite
  keeps instants in whole milliseconds) without that form's detour through text, a tenth of a
  month's ticket statement.
* :class:`least_of` / :class:`greatest_of` — NULL-ignoring minimum/maximum of several values (what
  PostgreSQL's LEAST/GREATEST do; SQLite's scalar MIN/MAX return NULL if any argument is NULL).
* Working time: :func:`work_table` loads the business calendar's working intervals with the working
  seconds accumulated before each, so "working seconds up to instant t" is one indexed lookup and the
  business hours between two instants a subtraction — set-based, for any number of tickets.
* :class:`Scope` — what one computation looks at (period bounds, as_of, settings, agent keys).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement

from connector.calendar import BusinessCalendar
from connector.metrics.settings import Clock, ScorecardSettings
from connector.store.types import UTCDateTime


class epoch(FunctionElement[float]):
    """Seconds since 1970-01-01 UTC of a timestamp expression, as a float."""

    type = sa.Float()
    inherit_cache = True
    name = "epoch"


@compiles(epoch, "sqlite")
def _epoch_sqlite(element: epoch, compiler: SQLCompiler, **kw: Any) -> str:
    instant = compiler.process(element.clauses, **kw)
    return f"(ROUND((julianday({instant}) - 2440587.5) * 86400000.0) / 1000.0)"


@compiles(epoch)
def _epoch_default(element: epoch, compiler: SQLCompiler, **kw: Any) -> str:
    return f"CAST(EXTRACT(EPOCH FROM {compiler.process(element.clauses, **kw)}) AS DOUBLE PRECISION)"


def _typed_like_first(element: FunctionElement[Any]) -> None:
    element.type = element.clauses.clauses[0].type


class least_of(FunctionElement[Any]):
    """NULL-ignoring minimum of its arguments, typed like the first."""

    inherit_cache = True
    name = "least_of"

    def __init__(self, *args: ColumnElement[Any]) -> None:
        super().__init__(*args)
        _typed_like_first(self)


class greatest_of(FunctionElement[Any]):
    """NULL-ignoring maximum of its arguments, typed like the first."""

    inherit_cache = True
    name = "greatest_of"

    def __init__(self, *args: ColumnElement[Any]) -> None:
        super().__init__(*args)
        _typed_like_first(self)


_EXTREMES = {least_of: ("MIN", "LEAST"), greatest_of: ("MAX", "GREATEST")}


@compiles(least_of, "sqlite")
@compiles(greatest_of, "sqlite")
def _extreme_sqlite(element: least_of | greatest_of, compiler: SQLCompiler, **kw: Any) -> str:
    args = [compiler.process(arg, **kw) for arg in element.clauses]
    if len(args) == 1:
        return args[0]
    # COALESCE(a, b, c) is NULL only when all are: MIN over the rotations ignores NULLs.
    rotations = [", ".join(args[i:] + args[:i]) for i in range(len(args))]
    return f"{_EXTREMES[type(element)][0]}({', '.join(f'COALESCE({r})' for r in rotations)})"


@compiles(least_of)
@compiles(greatest_of)
def _extreme_default(element: least_of | greatest_of, compiler: SQLCompiler, **kw: Any) -> str:
    return f"{_EXTREMES[type(element)][1]}({compiler.process(element.clauses, **kw)})"


def materialized(select: sa.Select, name: str) -> sa.CTE:
    """A CTE computed once: later stages may refer to its columns many times without re-running
    the lookups behind them (SQLite would otherwise inline it and repeat them)."""
    return select.cte(name).prefix_with("MATERIALIZED")


def at(value: datetime) -> ColumnElement[datetime]:
    """A bound timestamp typed like the store's columns (so SQLite compares it as stored text)."""
    return sa.literal(value, UTCDateTime())


def seconds(value: float) -> ColumnElement[float]:
    return sa.literal(value, sa.Float())


@contextmanager
def temp_table(
    conn: Connection, name: str, columns: Sequence[sa.Column[Any]], rows: list[dict]
) -> Iterator[sa.Table]:
    """A connection-local temporary table holding ``rows``, dropped on exit."""
    table = sa.Table(name, sa.MetaData(), *columns, prefixes=["TEMPORARY"])
    table.create(conn)
    try:
        if rows:
            conn.execute(table.insert(), rows)
        yield table
    finally:
        table.drop(conn)


@contextmanager
def work_table(
    conn: Connection, calendar: BusinessCalendar, start: datetime, end: datetime
) -> Iterator[sa.Table]:
    """The calendar's working intervals in ``[start, end)`` with cumulative working seconds."""
    rows, total = [], 0.0
    for lo, hi in calendar.intervals(start, end):
        rows.append({"start_s": lo.timestamp(), "end_s": hi.timestamp(), "cum": total})
        total += (hi - lo).total_seconds()
    columns = [
        sa.Column("start_s", sa.Float, primary_key=True),
        sa.Column("end_s", sa.Float, nullable=False),
        sa.Column("cum", sa.Float, nullable=False),
    ]
    with temp_table(conn, "tmp_sc_work", columns, rows) as table:
        yield table


#: The scorecard key columns, agent id first: a GROUP BY sorts on them, and with the source (the
#: same for nearly every row) first each comparison takes SQLite's slower path (5–10% of a statement).
KEY_COLUMNS = ("key_id", "key_source")


@dataclass(frozen=True)
class AgentKeys:
    """Maps an owner ``(source, external_id)`` to its scorecard key; ``table`` holds merged members only."""

    table: sa.Table | None

    def keyed(
        self, frm: sa.FromClause, source: ColumnElement[str], owner: ColumnElement[str]
    ) -> tuple[sa.FromClause, ColumnElement[str], ColumnElement[str]]:
        """``frm`` joined to the agent map, and the key's (source, id) expressions."""
        if self.table is None:
            return frm, source.label("key_source"), owner.label("key_id")
        member = self.table.alias()
        joined = frm.outerjoin(member, sa.and_(member.c.source == source, member.c.external_id == owner))
        return (
            joined,
            sa.func.coalesce(member.c.key_source, source).label("key_source"),
            sa.func.coalesce(member.c.key_id, owner).label("key_id"),
        )


@contextmanager
def agent_keys(conn: Connection, merged: dict[tuple[str, str], tuple[str, str]]) -> Iterator[AgentKeys]:
    """Agent keys for this connection: no join at all when nobody is merged."""
    if not merged:
        yield AgentKeys(None)
        return
    rows = [
        {"source": s, "external_id": e, "key_source": ks, "key_id": kid}
        for (s, e), (ks, kid) in merged.items()
    ]
    columns = [
        sa.Column("source", sa.String(64), primary_key=True),
        sa.Column("external_id", sa.String(128), primary_key=True),
        sa.Column("key_source", sa.String(64), nullable=False),
        sa.Column("key_id", sa.String(128), nullable=False),
    ]
    with temp_table(conn, "tmp_sc_agents", columns, rows) as table:
        yield AgentKeys(table)


@dataclass(frozen=True)
class Scope:
    """One computation: records in ``[start, end)``, judged as of ``as_of``."""

    settings: ScorecardSettings
    start: datetime
    end: datetime
    as_of: datetime
    agents: AgentKeys
    dialect: str  # "sqlite" | "postgresql": the few places SQL differs (median)
    work: sa.Table | None  # working intervals; present when some clock counts business hours

    def working_seconds_until(self, instant_s: ColumnElement[float]) -> ColumnElement[float]:
        """Working seconds from the work table's origin to ``instant_s`` (epoch seconds)."""
        assert self.work is not None, "a business clock needs the work table"
        w = self.work
        found = (
            sa.select(w.c.cum + least_of(instant_s - w.c.start_s, w.c.end_s - w.c.start_s))
            .where(w.c.start_s <= instant_s)
            .order_by(w.c.start_s.desc())
            .limit(1)
            .correlate_except(w)  # the instant's columns belong to whichever query encloses this one
            .scalar_subquery()
        )
        return sa.func.coalesce(found, 0.0)

    def elapsed(
        self, clock: Clock, start_s: ColumnElement[float], end_s: ColumnElement[float]
    ) -> ColumnElement[float]:
        """Seconds from ``start_s`` to ``end_s`` on ``clock`` (epoch-second expressions)."""
        if clock == "calendar":
            return end_s - start_s
        return self.working_seconds_until(end_s) - self.working_seconds_until(start_s)

    def in_period(self, column: ColumnElement[datetime]) -> ColumnElement[bool]:
        return sa.and_(column >= at(self.start), column < at(self.end))
