"""Benchmark: scorecards over a year of a large clinic group, on SQLite and PostgreSQL.

Generates 1,000,000 tickets, 300,000 follow-ups and 500,000 calls (plus ticket status history,
surveys and assessments) for 200 agents over the 12 months 2025-11 … 2026-10, bulk-loads them
(SQLite executemany on the raw driver, PostgreSQL COPY), then times computing and storing one
month's scorecards and all twelve months, each in a fresh process so its peak RSS is the
computation's own. "One month, cold" also computes the previous month (for the trend); the later
"one month" finds it stored and final, as a routine recomputation of the current month does.
Wall and CPU seconds are both printed: CPU is this process's (all threads; SQLite works inside it,
PostgreSQL's work is the server's), and is the figure to compare on a machine shared with others.

    .venv/bin/python bench/metrics.py                 # full size, both databases
    .venv/bin/python bench/metrics.py --scale 0.1     # a tenth, for a quick run
    .venv/bin/python bench/metrics.py --only sqlite

PostgreSQL comes from ``CRM_TEST_PG_URL`` (default: the test server on port 55432); the bench
creates and drops its own database there. Target (issue 5): one month <= 2 s and twelve <= 15 s on
SQLite on a 2-core machine, memory flat.
"""

from __future__ import annotations

import argparse
import itertools
import multiprocessing
import os
import random
import resource
import shutil
import tempfile
import time as clock
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import sqlalchemy as sa

from connector.calendar import BusinessCalendar
from connector.metrics import ScorecardSettings, compute_series, parse_period, store_scorecards
from connector.metrics.periods import Period, periods_between
from connector.store import open_store

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
    "calls": (
        "external_id", "contact_id", "ticket_id", "owner_id", "direction", "purpose",
        "started_at", "duration_s",
    ),
    "follow_ups": (
        "external_id", "contact_id", "ticket_id", "owner_id", "kind", "due_at", "completed_at", "status",
    ),
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
    """Deterministic synthetic rows, generated day by day in time order (as syncs store them).

    Each table is a generator, so memory stays small while loading; timestamps are epoch seconds
    rendered by ``stamp`` into the text each database loads fastest.
    """

    def __init__(self, scale: float, stamp: Callable[[int], str], seed: int = 7) -> None:
        self.scale, self.stamp, self.seed = scale, stamp, seed
        self.tickets_total = int(1_000_000 * scale)
        self.contacts = max(1000, int(100_000 * scale))

    def _rng(self, salt: int) -> random.Random:
        return random.Random(self.seed * 1000 + salt)

    def _times(self, rng: random.Random, total: int) -> Iterator[int]:
        """``total`` instants spread over the year, in order."""
        start = int(START.timestamp())
        for day in range(DAYS):
            count = int((day + 1) * total / DAYS) - int(day * total / DAYS)
            yield from sorted(start + day * 86400 + rng.randrange(86400) for _ in range(count))

    def _recent_ticket(self, rng: random.Random, at: int) -> str:
        """A ticket created shortly before ``at`` (ticket numbers follow creation time)."""
        position = int((at - START.timestamp()) / (DAYS * 86400) * self.tickets_total)
        return f"t{max(0, position - rng.randrange(3000))}"

    def _owner(self, contact: int) -> str:
        return f"a{contact % AGENTS:03d}"

    def agents(self) -> Iterator[Row]:
        for i in range(AGENTS):
            yield (f"a{i:03d}", f"Agent {i}", f"agent{i}@clinic.example", f"138{i:08d}", True)

    def _tickets(self) -> Iterator[tuple[Row, list[Row]]]:
        rng, as_of, stamp = self._rng(1), int(AS_OF.timestamp()), self.stamp
        for i, created in enumerate(self._times(rng, self.tickets_total)):
            contact = rng.randrange(self.contacts)
            category = rng.choices(["complaint", "consultation", "appointment", "other"], [25, 40, 25, 10])[0]
            resolved = created + int(rng.expovariate(1 / 30) * 3600) if rng.random() < 0.85 else None
            status = "open" if resolved is None or resolved > as_of else rng.choice(["resolved", "closed"])
            resolved = resolved if status != "open" else None
            mapped = created + int(rng.expovariate(1 / 12) * 3600) if rng.random() < 0.3 else None
            history: list[Row] = []
            if resolved is not None and rng.random() < 0.3:
                history = [
                    (f"t{i}", None, "open", stamp(created)),
                    (f"t{i}", "open", status, stamp(resolved)),
                ]
                if rng.random() < 0.15:
                    history.append((f"t{i}", status, "open", stamp(resolved + 5 * 3600)))
            row = (
                f"t{i}", f"c{contact}", self._owner(contact), category,
                rng.choice(["phone", "online", "wechat"]), status, stamp(created),
                mapped and stamp(mapped), resolved and stamp(resolved),
                rng.randint(1, 5) if rng.random() < 0.4 else None,
            )  # fmt: skip
            yield row, history

    def tickets(self) -> Iterator[Row]:
        return (row for row, _ in self._tickets())

    def history(self) -> Iterator[Row]:
        """Status changes of the tickets (the same draws as :meth:`tickets`, replayed)."""
        return (change for _, changes in self._tickets() for change in changes)

    def calls(self) -> Iterator[Row]:
        rng = self._rng(2)
        for i, started in enumerate(self._times(rng, int(500_000 * self.scale))):
            contact = rng.randrange(self.contacts)
            linked = self._recent_ticket(rng, started) if rng.random() < 0.3 else None
            yield (
                f"k{i}", f"c{contact}", linked, self._owner(contact),
                rng.choices(["outbound", "inbound", "missed"], [60, 35, 5])[0],
                rng.choice(["booking", "consultation", "complaint", "other"]), self.stamp(started),
                rng.randint(20, 900),
            )  # fmt: skip

    def follow_ups(self) -> Iterator[Row]:
        rng = self._rng(3)
        for i, due in enumerate(self._times(rng, int(300_000 * self.scale))):
            contact = rng.randrange(self.contacts)
            done = due + int(rng.uniform(-48, 24) * 3600) if rng.random() < 0.85 else None
            linked = self._recent_ticket(rng, due) if rng.random() < 0.3 else None
            status = "done" if done else "planned"
            yield (
                f"f{i}", f"c{contact}", linked, self._owner(contact), "revisit", self.stamp(due),
                done and self.stamp(done), status,
            )  # fmt: skip

    def surveys(self) -> Iterator[Row]:
        rng = self._rng(4)
        for i, submitted in enumerate(self._times(rng, int(50_000 * self.scale))):
            contact = rng.randrange(self.contacts)
            yield (f"s{i}", f"c{contact}", self._owner(contact), rng.randint(1, 5), self.stamp(submitted))

    def assessments(self) -> Iterator[Row]:
        rng, start = self._rng(5), int(START.timestamp())
        kinds = ("knowledge_exam", "policy_exam", "accuracy_audit", "politeness_audit")
        for month in range(12):
            for agent in range(AGENTS):
                for kind in kinds:
                    at = self.stamp(start + (month * 30 + rng.randrange(28)) * 86400)
                    yield (f"x{month}-{agent}-{kind}", f"a{agent:03d}", kind, rng.uniform(60, 100), at)


def _rows(table: str, rows: Iterable[Row], now: str) -> Iterator[Row]:
    """Adds the common columns: source first; updated_at, synced_at, raw last (history: observed_at)."""
    if table == "ticket_status_history":
        for row in rows:
            yield (SOURCE, *row, now)
        return
    for row in rows:
        yield (SOURCE, *row, now, now, "{}")


def _columns(table: str) -> tuple[str, ...]:
    tail = ("observed_at",) if table == "ticket_status_history" else ("updated_at", "synced_at", "raw")
    return ("source", *COLUMNS[table], *tail)


def _utc_text(seconds: int) -> str:
    return clock.strftime("%Y-%m-%d %H:%M:%S", clock.gmtime(seconds))


def load_sqlite(engine: sa.Engine, table: str, rows: Iterable[Row], now: str) -> None:
    columns = _columns(table)
    sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        batch = iter(_rows(table, rows, now))
        while chunk := list(itertools.islice(batch, 50_000)):
            cursor.executemany(sql, chunk)
        raw.commit()
    finally:
        raw.close()


def load_postgres(engine: sa.Engine, table: str, rows: Iterable[Row], now: str) -> None:
    raw = engine.raw_connection()
    try:
        with (
            raw.cursor() as cursor,
            cursor.copy(f"COPY {table} ({', '.join(_columns(table))}) FROM STDIN") as copy,
        ):
            for row in _rows(table, rows, now):
                copy.write_row(row)
        raw.commit()
    finally:
        raw.close()


def generate(url: str, scale: float) -> None:
    store = open_store(url)
    sqlite = store.dialect == "sqlite"
    # The store's own text form of a UTC instant (SQLite), or a timestamptz literal (PostgreSQL).
    suffix = ".000000" if sqlite else "+00"
    data = Dataset(scale, lambda seconds: _utc_text(seconds) + suffix)
    loader = load_sqlite if sqlite else load_postgres
    now = data.stamp(int(AS_OF.timestamp()))
    began = clock.perf_counter()
    for table, rows in (
        ("agents", data.agents()),
        ("tickets", data.tickets()),
        ("ticket_status_history", data.history()),
        ("calls", data.calls()),
        ("follow_ups", data.follow_ups()),
        ("surveys", data.surveys()),
        ("assessments", data.assessments()),
    ):
        loader(store.engine, table, rows, now)
    with store.begin() as conn:
        conn.exec_driver_sql("ANALYZE")
    print(f"  generated and loaded in {clock.perf_counter() - began:.1f} s", flush=True)
    store.dispose()


def _time_periods(url: str, labels: list[str], queue: multiprocessing.Queue) -> None:
    """Runs in a fresh process: compute + store ``labels``; report wall and CPU seconds, peak RSS."""
    calendar = _calendar()
    periods: list[Period] = [parse_period(label, calendar.tz) for label in labels]
    store = open_store(url, upgrade=False)
    began, cpu = clock.perf_counter(), clock.process_time()
    series = compute_series(store, ScorecardSettings(), calendar, calendar.tz, periods, as_of=AS_OF)
    with store.begin() as conn:
        for period, cards in zip(periods, series, strict=True):
            store_scorecards(conn, period, cards, computed_at=AS_OF)
    wall, cpu = clock.perf_counter() - began, clock.process_time() - cpu
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    queue.put(Timing(wall, cpu, rss, sum(map(len, series))))


@dataclass(frozen=True)
class Timing:
    wall: float
    cpu: float  # this process, all threads (SQLite runs inside it; PostgreSQL's work is the server's)
    rss_mib: float
    scorecards: int


def timed(url: str, labels: list[str]) -> Timing:
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
        runs = (
            ("one month, cold", [months[-1]]),  # the previous month is computed too, for the trend
            ("twelve months", months),
            ("one month", [months[-1]]),  # the previous month's final scorecards are stored now
        )
        for label, wanted in runs:
            t = timed(url, wanted)
            print(
                f"  {label:<16} {t.wall:6.2f} s wall  {t.cpu:6.2f} s CPU  peak RSS {t.rss_mib:4.0f} MiB  "
                f"{t.scorecards} scorecards",
                flush=True,
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
            shutil.rmtree(folder, ignore_errors=True)

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
