"""How fast ``connector.store.upsert`` writes tickets, against the bare-driver floor.

    .venv/bin/python bench/store_upsert.py [--rows 100000] [--batch 1000] [--repeat 3]

Upserts N realistic ticket rows (every column, a ~600-byte ``raw``) in batches, one transaction per
batch like a sync page: a first pass of inserts, a second of newer versions (updates) and a rerun of
the same versions (unchanged). The floor runs the same rows with the same ON CONFLICT statement
through bare ``sqlite3.executemany`` with the same pragmas and the same background WAL checkpoints,
from driver-ready tuples built before the clock starts — the database's own cost, with no Python
conversion at all.

PostgreSQL uses ``CRM_TEST_PG_URL`` (default: the CI server) and a throwaway database; it is skipped
with a message when unreachable. Every measurement is repeated on fresh databases (``--repeat``)
and the best time kept, so a busy machine disturbs the comparison less.
Target: ≥ 50,000 rows/s on SQLite and within 2x of the floor.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from connector.store import Store, UpsertCounts, open_store, upsert
from connector.store.checkpoint import WRITER_PAGES, WalCheckpointer
from connector.store.engine import _SQLITE_PRAGMAS
from connector.store.schema import tickets
from connector.store.upsert import upsert_sql

PG_URL = os.environ.get("CRM_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:55432/postgres")
TARGET_ROWS_PER_S = 50_000
TARGET_FLOOR_RATIO = 2.0
BASE = datetime(2026, 1, 1, tzinfo=UTC)
Row = dict[str, Any]


def ticket_rows(n: int, version: int) -> list[Row]:
    """Tickets as the mapping engine produces them; ``version`` moves updated_at and the content."""
    synced = BASE + timedelta(days=200, hours=version)
    rows = []
    for i in range(n):
        created = BASE + timedelta(minutes=3 * i)
        updated = created + timedelta(hours=2 + version, microseconds=i % 1000)
        status = ("open", "pending", "resolved", "closed")[(i + version) % 4]
        raw = {
            "id": f"4876876000{i:09d}",
            "Case_Number": f"{i:08d}",
            "Subject": f"Patient {i % 9973} asks about appointment rescheduling for the cardiology clinic",
            "Status": status,
            "Priority": "High" if i % 7 == 0 else "Medium",
            "Case_Origin": "Phone",
            "Type": "Complaint" if i % 5 == 0 else "Consultation",
            "Owner": {"id": f"48768760000{i % 40:08d}", "name": f"Agent {i % 40}", "email": "a@clinic.cn"},
            "Related_To": {"id": f"48768760001{i % 20000:08d}", "name": f"Contact {i % 20000}"},
            "Created_Time": created.isoformat(),
            "Modified_Time": updated.isoformat(),
            "Description": "Called twice about the follow-up visit; prefers a morning slot. " * 2,
            "Satisfaction_Score": 1 + i % 5,
            "version": version,
        }
        rows.append(
            {
                "source": "zoho",
                "external_id": raw["id"],
                "contact_id": raw["Related_To"]["id"],
                "owner_id": raw["Owner"]["id"],
                "subject": raw["Subject"],
                "category": "complaint" if i % 5 == 0 else "consultation",
                "channel": "phone",
                "priority": raw["Priority"].lower(),
                "status": status,
                "created_at": created,
                "first_response_at": created + timedelta(minutes=45),
                "resolved_at": updated if status in ("resolved", "closed") else None,
                "satisfaction": raw["Satisfaction_Score"],
                "updated_at": updated,
                "deleted_at": None,
                "synced_at": synced,
                "raw": json.dumps(raw, sort_keys=True, separators=(",", ":"), ensure_ascii=False),
            }
        )
    return rows


def batches(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


Timing = tuple[float, float]  # (wall seconds, CPU seconds of this process)


def timed(work: Callable[[], Any]) -> tuple[Timing, Any]:
    wall, cpu = time.perf_counter(), time.process_time()
    result = work()
    return (time.perf_counter() - wall, time.process_time() - cpu), result


Pass = tuple[str, list[Row], UpsertCounts]


def sqlite_dialect() -> Any:
    return sa.create_engine("sqlite://").dialect


def upsert_pass(store: Store, rows: list[Row], size: int) -> UpsertCounts:
    total = UpsertCounts()
    for batch in batches(rows, size):
        with store.begin() as conn:
            total += upsert(conn, "tickets", batch)
    return total


def driver_tuple(row: Row) -> tuple[Any, ...]:
    """What SQLite gets: UTC text in SQLAlchemy's DATETIME format, everything else as is."""
    return tuple(
        v.astimezone(UTC).isoformat(" ", "microseconds")[:26] if isinstance(v, datetime) else v
        for v in (row[c.name] for c in tickets.columns)
    )


def floor_pass(db: Path, sql: str, rows: list[tuple[Any, ...]], size: int) -> int:
    """The store's pragmas and its background checkpoints, driven by hand around bare executemany."""
    conn = sqlite3.connect(db)
    checkpointer = WalCheckpointer(str(db))
    try:
        for pragma in _SQLITE_PRAGMAS:
            conn.execute(pragma)
        conn.execute(f"PRAGMA wal_autocheckpoint={WRITER_PAGES}")
        changed = 0
        for batch in batches(rows, size):
            checkpointer.before_transaction()
            changed += conn.executemany(sql, batch).rowcount
            conn.commit()
            checkpointer.notify()
        return changed
    finally:
        checkpointer.stop()
        conn.close()


def check(label: str, got: UpsertCounts, want: UpsertCounts) -> None:
    if got != want:
        raise SystemExit(f"{label}: counts {got} but expected {want}")


def measure_store(url: str, passes: list[Pass], size: int) -> list[Timing]:
    store = open_store(url)
    try:
        seconds = []
        for label, rows, want in passes:
            took, counts = timed(lambda rows=rows: upsert_pass(store, rows, size))
            check(f"{store.dialect} {label}", counts, want)
            seconds.append(took)
        return seconds
    finally:
        store.dispose()


def measure_floor(db: Path, passes: list[Pass], size: int) -> list[Timing]:
    open_store(f"sqlite:///{db}").dispose()  # the same schema, then only bare sqlite3
    sql = upsert_sql(tickets, sqlite_dialect())
    seconds = []
    for _label, rows, _want in passes:
        prepared = [driver_tuple(r) for r in rows]
        seconds.append(timed(lambda prepared=prepared: floor_pass(db, sql, prepared, size))[0])
    return seconds


def best(runs: list[list[Timing]]) -> list[Timing]:
    """Per pass, the best wall and the best CPU time over the runs."""
    return [(min(w for w, _ in times), min(c for _, c in times)) for times in zip(*runs, strict=True)]


def pg_admin() -> sa.Engine | None:
    try:
        admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        return admin
    except Exception as exc:
        print(f"PostgreSQL skipped: unreachable at {sa.make_url(PG_URL)!r} ({type(exc).__name__})\n")
        return None


@contextmanager
def pg_database(admin: sa.Engine) -> Iterator[str]:
    name = f"crm_bench_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield admin.url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    n, size = args.rows, args.batch
    first, second = ticket_rows(n, 0), ticket_rows(n, 1)
    passes = [
        ("insert", first, UpsertCounts(inserted=n)),
        ("update", second, UpsertCounts(updated=n)),
        ("unchanged", second, UpsertCounts(unchanged=n)),
    ]
    raw_bytes = sum(len(r["raw"].encode()) for r in first) // n
    print(f"{n:,} ticket rows, raw ≈ {raw_bytes} bytes, batches of {size:,} (a transaction each)")
    print(f"best of {args.repeat} runs on fresh databases\n")
    admin = pg_admin()
    runs: dict[str, list[list[Timing]]] = {"sqlite upsert": [], "sqlite floor": []}
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            runs["sqlite upsert"].append(measure_store(f"sqlite:///{Path(tmp) / 'upsert.db'}", passes, size))
            runs["sqlite floor"].append(measure_floor(Path(tmp) / "floor.db", passes, size))
        if admin is not None:
            with pg_database(admin) as pg_url:
                runs.setdefault("postgresql upsert", []).append(measure_store(pg_url, passes, size))
    if admin is not None:
        admin.dispose()
    report(n, [label for label, _, _ in passes], {name: best(times) for name, times in runs.items()})


def report(n: int, labels: list[str], results: dict[str, list[Timing]]) -> None:
    print(f"{'rows/s (seconds)':26}" + "".join(f"{label:>20}" for label in labels))
    for name, timings in results.items():
        print(f"{name + ', wall':26}" + "".join(f"{n / w:>12,.0f} ({w:5.2f})" for w, _ in timings))
        if name.startswith("sqlite"):  # SQLite works inside this process, so its CPU time is all of it
            print(f"{name + ', CPU':26}" + "".join(f"{n / c:>12,.0f} ({c:5.2f})" for _, c in timings))
    pairs = list(zip(results["sqlite upsert"], results["sqlite floor"], strict=True))
    wall_ratios = [u[0] / f[0] for u, f in pairs]
    cpu_ratios = [u[1] / f[1] for u, f in pairs]
    print(f"{'upsert / floor, wall':26}" + "".join(f"{r:>19.2f}x" for r in wall_ratios))
    print(f"{'upsert / floor, CPU':26}" + "".join(f"{r:>19.2f}x" for r in cpu_ratios))
    rate_met = min(n / w for w, _ in results["sqlite upsert"][:2]) >= TARGET_ROWS_PER_S
    ratio_met = max(wall_ratios) <= TARGET_FLOOR_RATIO
    verdict = {True: "met", False: "NOT met"}
    print(f"\nSQLite insert and update ≥ {TARGET_ROWS_PER_S:,} rows/s (wall): {verdict[rate_met]}")
    print(f"every pass within {TARGET_FLOOR_RATIO:g}x of the floor (wall): {verdict[ratio_met]}")


if __name__ == "__main__":
    main()
