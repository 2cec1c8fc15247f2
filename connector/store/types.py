"""Column types that make SQLite and PostgreSQL behave alike.

SQLite has no time zone type, so a naive ``DateTime`` would hand back naive values there and aware
ones on PostgreSQL. Every time column in the store goes through :class:`UTCDateTime`, which refuses
naive input (a naive datetime is a bug: we could not tell which clock it came from), stores UTC and
always reads back an aware UTC datetime.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import DateTime
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


def _to_utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r} given to the store; use an aware datetime")
    return value.astimezone(UTC)


_DAY_CACHE_LIMIT = 4096
#: " HH:MM:" for each minute of the day and "SS." for each second: indexing beats formatting.
_MINUTES = tuple(f" {hour:02d}:{minute:02d}:" for hour in range(24) for minute in range(60))
_SECONDS = tuple(f"{second:02d}." for second in range(60))


def _sqlite_text_processor() -> Callable[[datetime | None], str | None]:
    """UTC as SQLAlchemy's SQLite ``DATETIME`` stores it ("YYYY-MM-DD HH:MM:SS.ffffff").

    One fused step instead of SQLAlchemy's two (our conversion, then its %-formatting of a dict):
    the bulk upsert binds several timestamps per row and this was most of its Python cost. Hence a
    one-entry memo (the upsert converts column by column, and a batch shares one ``synced_at``
    object), cached date prefixes (records cluster on few days) and the time of day assembled from
    tables rather than formatted (half the cost again; CRM times mostly have no microseconds). The
    text must stay byte-identical to SQLAlchemy's format: SQLite compares strings.
    """
    last: tuple[datetime | None, str | None] = (None, None)
    days: dict[date, str] = {}

    def process(value: datetime | None, _utc: Any = UTC) -> str | None:
        nonlocal last
        seen = last  # one read of an immutable pair: safe when threads share the processor
        if value is seen[0]:
            return seen[1]
        if value is None:
            return None
        utc = value if value.tzinfo is _utc else _to_utc(value)
        day = utc.date()
        prefix = days.get(day)
        if prefix is None:
            if len(days) >= _DAY_CACHE_LIMIT:
                days.clear()
            prefix = days[day] = day.isoformat()
        micro = utc.microsecond
        text = (
            prefix
            + _MINUTES[utc.hour * 60 + utc.minute]
            + _SECONDS[utc.second]
            + (f"{micro:06d}" if micro else "000000")
        )
        last = (value, text)
        return text

    return process


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored as UTC and always returned time zone aware."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        utc = _to_utc(value)
        # SQLite keeps text; drop the offset so values sort and compare as plain UTC strings.
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        if dialect.name == "sqlite":
            return _sqlite_text_processor()
        return super().bind_processor(dialect)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
