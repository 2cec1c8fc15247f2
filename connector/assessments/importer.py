"""Importing a file of assessments: validate everything, then write all of it or (on request) the good part.

All-or-nothing by default because an admin who fixes three rows and re-imports should not have to
work out which of the others already went in. Validation, the write and the ``sync_runs`` record
happen in one transaction, against the agents as they are at that moment.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, tzinfo
from pathlib import Path

import sqlalchemy as sa

from connector.assessments.errors import RowError
from connector.assessments.rows import AgentDirectory, parse_rows
from connector.assessments.sheet import read_sheet
from connector.store import Store, upsert
from connector.store.schema import sync_runs


@dataclass(frozen=True)
class ImportResult:
    """What an import did. ``written`` is False when invalid rows stopped it (nothing was stored)."""

    file: str
    rows: int
    valid: int
    inserted: int
    updated: int
    unchanged: int
    errors: list[RowError]
    written: bool
    run_id: int

    @property
    def invalid_rows(self) -> int:
        return len({error.row for error in self.errors})


def import_assessments(
    store: Store,
    path: Path,
    *,
    tz: tzinfo,
    now: datetime,
    skip_invalid: bool = False,
    source: str | None = None,
) -> ImportResult:
    """Validate ``path`` and store its assessments; agents are looked up in ``source`` only if given.

    Raises :class:`~connector.assessments.errors.ImportFileError` when the file as a whole is
    unusable (type, encoding, missing columns); bad rows are returned in ``errors``, never raised.
    """
    sheet = read_sheet(path)
    with store.begin() as conn:
        good, errors = parse_rows(sheet, AgentDirectory.load(conn, source), tz, now)
        written = not errors or skip_invalid
        inserted = updated = unchanged = 0
        if written and good:
            counts = upsert(conn, "assessments", [assessment.as_store_row(now) for assessment in good])
            inserted, updated, unchanged = counts.inserted, counts.updated, counts.unchanged
        invalid = len({error.row for error in errors})
        status = "success" if not errors else "partial" if written else "failed"
        run_id = conn.execute(
            sa.insert(sync_runs).values(
                job="import",
                source=source,
                entity="assessments",
                started_at=now,
                finished_at=now,
                status=status,
                fetched=len(sheet.rows),
                inserted=inserted,
                updated=updated,
                unchanged=unchanged,
                deleted=0,
                quarantined=invalid,
                api_calls=0,
                error=f"{path.name}: {invalid} invalid row(s)" if errors else None,
            )
        ).inserted_primary_key[0]
    return ImportResult(
        file=str(path),
        rows=len(sheet.rows),
        valid=len(good),
        inserted=inserted,
        updated=updated,
        unchanged=unchanged,
        errors=errors,
        written=written,
        run_id=run_id,
    )
