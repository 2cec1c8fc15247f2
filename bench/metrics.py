"""Benchmark: scorecards over a year of a large clinic group, on SQLite and PostgreSQL.

Generates 1,000,000 tickets, 300,000 follow-ups and 500,000 calls (plus ticket status history,
surveys and assessments) for 200 agents over the 12 months 2025-11 … 2026-10, bulk-loads them
(SQLite executemany on the raw driver, PostgreSQL COPY), then times computing and storing one
month's scorecards (with the previous month, for the trend) and all twelve months, each in a fresh
process so its peak RSS is the computation's own.

    .venv/bin/python bench/metrics.py                 # full size, both databases
    .venv/bin/python bench/metrics.py --scale 0.1     # a tenth, for a quick run
    .venv/bin/python bench/metrics.py --only sqlite

PostgreSQL comes from ``CRM_TEST_PG_URL`` (default: the test server on port 55432); the bench
creates and drops its own database there. Target (issue 5): one month <= 2 s and twelve <= 15 s on
SQLite on a 2-core machine, memory flat.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import resource
import sys
import tempfile
import time as clock
import uuid
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from connector.calendar import BusinessCalendar  # noqa: E402
from connector.metrics import ScorecardSettings, compute_series, parse_period, store_scorecards  # noqa: E402
from connector.metrics.periods import Period, periods_between  # noqa: E402
from connector.store import open_store  # noqa: E402

PG_URL = os.environ.get("CRM_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:55432/postgres")
SOURCE = "zoho"
AGENTS = 200
START = datetime(2025, 10, 31, 16, tzinfo=UTC)  # 2025-11-01 00:00 Asia/Shanghai
DAYS = 365
AS_OF = datetime(2026, 11, 3, 2, tzinfo=UTC)
Row = tuple[object, ...]

COLUMNS = {
    "agents": ("external_id", "name", "email", "phone", "active"),
    "tickets": (
        "external_id", "contact_id", "owner_id", "category", "channel", "status",
        "created_at", "first_response_at", "resolved_at", "satisfaction",
    ),
    "ticket_status_history": ("ticket_id", "from_status", "to_status", "changed_at"),
    "calls": ("external_id", "contact_id", "ticket_id", "owner_id", "direction", "purpose", "started_at", "duration_s"),
    "follow_ups": ("external_id", "contact_id", "ticket_id", "owner_id", "kind", "due_at", "completed_at", "status"),
    "surveys": ("external_id", "contact_id", "owner_id", "score", "submitted_at"),
    "assessments": ("external_id", "agent_id", "kind", "score", "assessed_at"),
}  # fmt: skip


def _calendar() -> BusinessCalendar:
    from zoneinfo import ZoneInfo

    hours = [(datetime.strptime(a, "%H:%M").time(), datetime.strptime(b, "%H:%M").time())
             for a, b in (("08:00", "12:00"), ("14:00", "17:30"))]  # fmt: skip
    return BusinessCalendar.build(
        ZoneInfo("Asia/Shanghai"), {d: hours for d in ("mon", "tue", "wed", "thu", "fri")}, statutory="CN"
    )


class Dataset:
    """Deterministic synthetic rows; each table is a generator so memory stays small while loading."""

    def __init__(self, scale: float, seed: int = 7) -> None:
        self.scale, self.seed = scale, seed
        self.tickets = int(1_000_000 * scale)
        self.contacts = max(1000, int(100_000 * scale))

    def _rng(self, salt: int) -> random.Random:
        return random.Random(self.seed * 1000 + salt)

    def _at(self, rng: random.Random) -> datetime:
        return START + timedelta(seconds=rng.randrange(DAYS * 86400))

    def _owner(self, contact: int) -> str:
        return f"a{contact % AGENTS:03d}"

    def agents(self) -> Iterator[Row]:
        for i in range(AGENTS):
            yield (f"a{i:03d}", f"Agent {i}", f"agent{i}@clinic.example", f"138{i:08d}", True)

    def tickets_and_history(self) -> tuple[Iterator[Row], Iterator[Row]]:
        """Tickets, and their status history — filled while the tickets are generated, so read it after."""
        rng, history = self._rng(1), []

        def tickets() -> Iterator[Row]:
            for i in range(self.tickets):
                contact = rng.randrange(self.contacts)
                created = self._at(rng)
                category = rng.choices(
                    ["complaint", "consultation", "appointment", "other"], [25, 40, 25, 10]
                )[0]
                resolved = created + timedelta(hours=rng.expovariate(1 / 30)) if rng.random() < 0.85 else None
                status = (
                    "open" if resolved is None or resolved > AS_OF else rng.choice(["resolved", "closed"])
                )
                resolved = resolved if status != "open" else None
                mapped = created + timedelta(hours=rng.expovariate(1 / 12)) if rng.random() < 0.3 else None
                if resolved is not None and rng.random() < 0.3:
                    history.extend([(f"t{i}", None, "open", created), (f"t{i}", "open", status, resolved)])
                    if rng.random() < 0.15:
                        history.append((f"t{i}", status, "open", resolved + timedelta(hours=5)))
                yield (
                    f"t{i}", f"c{contact}", self._owner(contact), category, rng.choice(["phone", "online", "wechat"]),
                    status, created, mapped, resolved, rng.randint(1, 5) if rng.random() < 0.4 else None,
                )  # fmt: skip

        return tickets(), iter(history)

    def calls(self) -> Iterator[Row]:
        rng = self._rng(2)
        for i in range(int(500_000 * self.scale)):
            contact = rng.randrange(self.contacts)
            linked = f"t{rng.randrange(self.tickets)}" if rng.random() < 0.3 else None
            yield (
                f"k{i}", f"c{contact}", linked, self._owner(contact),
                rng.choices(["outbound", "inbound", "missed"], [60, 35, 5])[0],
                rng.choice(["booking", "consultation", "complaint", "other"]), self._at(rng), rng.randint(20, 900),
            )  # fmt: skip

    def follow_ups(self) -> Iterator[Row]:
        rng = self._rng(3)
        for i in range(int(300_000 * self.scale)):
            contact = rng.randrange(self.contacts)
            due = self._at(rng)
            done = due + timedelta(hours=rng.uniform(-48, 24)) if rng.random() < 0.85 else None
            linked = f"t{rng.randrange(self.tickets)}" if rng.random() < 0.3 else None
            status = "done" if done else "planned"
            yield (f"f{i}", f"c{contact}", linked, self._owner(contact), "revisit", due, done, status)

    def surveys(self) -> Iterator[Row]:
        rng = self._rng(4)
        for i in range(int(50_000 * self.scale)):
            contact = rng.randrange(self.contacts)
            yield (f"s{i}", f"c{contact}", self._owner(contact), rng.randint(1, 5), self._at(rng))

    def assessments(self) -> Iterator[Row]:
        rng = self._rng(5)
        kinds = ("knowledge_exam", "policy_exam", "accuracy_audit", "politeness_audit")
        for month in range(12):
            for agent in range(AGENTS):
                for kind in kinds:
                    at = START + timedelta(days=month * 30 + rng.randrange(28))
                    yield (f"x{month}-{agent}-{kind}", f"a{agent:03d}", kind, rng.uniform(60, 100), at)


def _rows(table: str, rows: Iterable[Row], now: datetime) -> Iterator[Row]:
    """Adds the common synced columns: source first, then updated_at, synced_at, raw (history: observed_at)."""
    if table == "ticket_status_history":
        for row in rows:
            yield (SOURCE, *row, now)
        return
    for row in rows:
        yield (SOURCE, *row, now, now, "{}")


def _columns(table: str) -> tuple[str, ...]:
    tail = ("observed_at",) if table == "ticket_status_history" else ("updated_at", "synced_at", "raw")
    return ("source", *COLUMNS[table], *tail)


def _sqlite_value(value: object) -> object:
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    return value


def load_sqlite(engine: sa.Engine, table: str, rows: Iterable[Row]) -> None:
    columns = _columns(table)
    sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
    raw = engine.raw_connection()
    try:
        cursor, chunk = raw.cursor(), []
        for row in _rows(table, rows, AS_OF):
            chunk.append(tuple(_sqlite_value(v) for v in row))
            if len(chunk) == 50_000:
                cursor.executemany(sql, chunk)
                chunk.clear()
        cursor.executemany(sql, chunk)
        raw.commit()
    finally:
        raw.close()


def load_postgres(engine: sa.Engine, table: str, rows: Iterable[Row]) -> None:
    raw = engine.raw_connection()
    try:
        with (
            raw.cursor() as cursor,
            cursor.copy(f"COPY {table} ({', '.join(_columns(table))}) FROM STDIN") as copy,
        ):
            for row in _rows(table, rows, AS_OF):
                copy.write_row(row)
        raw.commit()
    finally:
        raw.close()


def generate(url: str, scale: float) -> None:
    store = open_store(url)
    loader: Callable[[sa.Engine, str, Iterable[Row]], None] = (
        load_sqlite if store.dialect == "sqlite" else load_postgres
    )
    data = Dataset(scale)
    tickets, history = data.tickets_and_history()
    began = clock.perf_counter()
    loader(store.engine, "agents", data.agents())
    loader(store.engine, "tickets", tickets)
    for table, rows in (
        ("ticket_status_history", history),
        ("calls", data.calls()),
        ("follow_ups", data.follow_ups()),
        ("surveys", data.surveys()),
        ("assessments", data.assessments()),
    ):
        loader(store.engine, table, rows)
    with store.begin() as conn:
        conn.exec_driver_sql("ANALYZE")
    print(f"  generated and loaded in {clock.perf_counter() - began:.1f} s", flush=True)
    store.dispose()


def _time_periods(url: str, labels: list[str], queue: multiprocessing.Queue) -> None:
    """Runs in a fresh process: compute + store ``labels``; report seconds and peak RSS (MiB)."""
    calendar = _calendar()
    periods: list[Period] = [parse_period(label, calendar.tz) for label in labels]
    store = open_store(url, upgrade=False)
    began = clock.perf_counter()
    series = compute_series(store, ScorecardSettings(), calendar, calendar.tz, periods, as_of=AS_OF)
    for period, cards in zip(periods, series, strict=True):
        store_scorecards(store, period, cards, computed_at=AS_OF)
    seconds = clock.perf_counter() - began
    queue.put((seconds, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, sum(map(len, series))))


def timed(url: str, labels: list[str]) -> tuple[float, float, int]:
    ctx = multiprocessing.get_context("spawn")
    queue: multiprocessing.Queue = ctx.Queue()
    process = ctx.Process(target=_time_periods, args=(url, labels, queue))
    process.start()
    result = queue.get()
    process.join()
    return result


def run(name: str, url: str, scale: float, cleanup: Callable[[], None]) -> None:
    print(f"{name}: scale {scale}", flush=True)
    try:
        generate(url, scale)
        tz = _calendar().tz
        months = [p.label for p in periods_between(date(2025, 11, 1), date(2026, 10, 31), "month", tz)]
        for label, wanted in (("one month (2026-10)", [months[-1]]), ("twelve months", months)):
            seconds, rss, cards = timed(url, wanted)
            print(
                f"  {label:<22} {seconds:6.2f} s   peak RSS {rss:6.0f} MiB   {cards} scorecards", flush=True
            )
    finally:
        cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the full data set (default 1)")
    parser.add_argument("--only", choices=["sqlite", "postgres"], help="run one database only")
    args = parser.parse_args()
    if args.only != "postgres":
        folder = tempfile.mkdtemp(prefix="crm-bench-")
        path = Path(folder) / "bench.db"

        def remove_sqlite() -> None:
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
            os.rmdir(folder)

        run("SQLite", f"sqlite:///{path}", args.scale, remove_sqlite)
    if args.only != "sqlite":
        admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
        database = f"crm_bench_{uuid.uuid4().hex[:8]}"
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{database}"')

        def drop_postgres() -> None:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')

        run(
            "PostgreSQL",
            admin.url.set(database=database).render_as_string(hide_password=False),
            args.scale,
            drop_postgres,
        )


if __name__ == "__main__":
    main()
