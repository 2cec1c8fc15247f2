"""Comparing a store with a CRM sandbox's truth, record by record (shared by the end-to-end tests).

CRM-neutral: the sandbox app's ``truth(entity)`` already keys each record by the id its CRM shows,
which is the ``external_id`` a faithful sync stores. A sync is faithful when, for every entity, the
store holds exactly the sandbox's ids, each with the record's modification time as ``updated_at``,
and ``deleted_at`` set exactly on the deleted ones.

One allowance: the store keeps the first deletion it saw (``mark_deleted`` never moves a mark), so
a record that sat in the recycle bin at one check and was purged before the next keeps its earlier
mark while the truth reports the purge time. :class:`TruthCheck` remembers the marks it confirmed
and accepts exactly those.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa

from connector.sandbox.clinic import TruthRow
from connector.sandbox.server import RunningSandbox
from connector.store import open_store
from connector.store.schema import ENTITY_TABLES


@dataclass(frozen=True)
class StoredRow:
    updated_at: datetime
    deleted_at: datetime | None


def stored_rows(store_url: str, entity: str, source: str) -> dict[str, StoredRow]:
    """``external_id`` → (updated_at, deleted_at) of one source's rows of ``entity``."""
    table = ENTITY_TABLES[entity]
    store = open_store(store_url, upgrade=False)
    try:
        with store.connect() as conn:
            rows = conn.execute(
                sa.select(table.c.external_id, table.c.updated_at, table.c.deleted_at).where(
                    table.c.source == source
                )
            ).all()
    finally:
        store.dispose()
    return {row.external_id: StoredRow(row.updated_at, row.deleted_at) for row in rows}


def truth_mismatches(
    stored: Mapping[str, StoredRow],
    truth: Mapping[str, TruthRow],
    *,
    marked_before: Mapping[str, datetime] | None = None,
    exact_deleted_at: bool = True,
) -> list[str]:
    """Every way ``stored`` differs from ``truth``, one line per record (empty: they agree).

    ``marked_before``: deletion marks confirmed at an earlier check, accepted where the truth has
    since moved (a purge after a soft delete). ``exact_deleted_at=False`` only checks that deleted
    records are marked, for CRMs whose deletion time the sync cannot see exactly.
    """
    earlier = marked_before or {}
    problems = [f"{i}: missing from the store" for i in sorted(truth.keys() - stored.keys())]
    problems += [f"{i}: in the store but not in the CRM" for i in sorted(stored.keys() - truth.keys())]
    for record_id in sorted(truth.keys() & stored.keys()):
        want, have = truth[record_id], stored[record_id]
        if have.updated_at != want.modified:
            problems.append(f"{record_id}: updated_at {have.updated_at} != modified {want.modified}")
        if want.deleted is None:
            if have.deleted_at is not None:
                problems.append(f"{record_id}: marked deleted at {have.deleted_at} but live")
        elif have.deleted_at is None:
            problems.append(f"{record_id}: {want.deleted}-deleted at {want.deleted_at} but not marked")
        elif exact_deleted_at and have.deleted_at not in (want.deleted_at, earlier.get(record_id)):
            problems.append(f"{record_id}: deleted_at {have.deleted_at} != {want.deleted_at}")
    return problems


@dataclass
class TruthCheck:
    """Checks one source's store rows against a running sandbox after each sync."""

    sandbox: RunningSandbox
    store_url: str
    source: str
    entities: tuple[str, ...]
    exact_deleted_at: bool = True
    _marks: dict[str, dict[str, datetime]] = field(default_factory=dict)

    def mismatches(self) -> tuple[dict[str, list[str]], dict[str, int]]:
        """(entity → its mismatching records, only for entities that differ; entity → records
        compared). Remembers the deletion marks of entities that agree."""
        out: dict[str, list[str]] = {}
        compared: dict[str, int] = {}
        for entity in self.entities:
            stored = stored_rows(self.store_url, entity, self.source)
            marks = self._marks.setdefault(entity, {})
            problems = truth_mismatches(
                stored,
                self.sandbox.truth(entity),
                marked_before=marks,
                exact_deleted_at=self.exact_deleted_at,
            )
            compared[entity] = len(stored)
            if problems:
                out[entity] = problems
                continue
            for record_id, row in stored.items():
                if row.deleted_at is not None:
                    marks.setdefault(record_id, row.deleted_at)
        return out, compared

    def assert_equal(self) -> dict[str, int]:
        """Fail with the first mismatches of each entity; return how many records were compared."""
        problems, compared = self.mismatches()
        assert not problems, {
            entity: [*lines[:5], f"… {len(lines)} in all"] for entity, lines in problems.items()
        }
        return compared
