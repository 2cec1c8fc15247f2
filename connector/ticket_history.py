"""Ticket status transitions and the resolution time derived from them.

Zoho Cases (and many ShareCRM tenants' work orders) keep no resolution time. The connector records
every status change it observes in ``ticket_status_history`` and sets ``resolved_at`` to the CRM
modification time of the first synced version that is resolved or closed (design.md, "What the
numbers rest on"). A first sync of an old closed case thus gets its last modification time, never
the time of the sync; a resolved → closed step keeps the earlier resolution; a reopened ticket has no
``resolved_at`` until it is resolved again. The metrics engine replays the history for the
first-vs-last-resolution and pause-status choices.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from connector.store.schema import ticket_status_history, tickets
from connector.store.upsert import append_rows, id_set, stored_among_ids_sql

RESOLVED_STATUSES = frozenset({"resolved", "closed"})


def derive_resolution(conn: Connection, source: str, rows: Sequence[dict[str, Any]], now: datetime) -> None:
    """Fill ``resolved_at`` on ``rows`` (in place) and record their status transitions."""
    if not rows:
        return
    _, encode = id_set(conn.dialect)
    select = "t.external_id, t.status, t.resolved_at, t.updated_at"
    query = sa.text(stored_among_ids_sql(tickets, conn.dialect, select)).columns(
        tickets.c.external_id, tickets.c.status, tickets.c.resolved_at, tickets.c.updated_at
    )
    ids = sorted({row["external_id"] for row in rows})
    latest: dict[str, tuple[str | None, datetime | None, datetime]] = {
        r.external_id: (r.status, r.resolved_at, r.updated_at)
        for r in conn.execute(query, {"ids": encode(ids), "source": source})
    }
    transitions = []
    for row in sorted(rows, key=lambda r: r["updated_at"]):
        previous = latest.get(row["external_id"])
        if previous is not None and row["updated_at"] < previous[2]:
            continue  # an older version: the upsert ignores it, and so do we
        before_status, before_resolved = (previous[0], previous[1]) if previous else (None, None)
        if row["status"] in RESOLVED_STATUSES:
            keep = before_status in RESOLVED_STATUSES and before_resolved is not None
            row["resolved_at"] = before_resolved if keep else row["updated_at"]
        else:
            row["resolved_at"] = None
        # A version without a status says nothing about one: no step (and no NULL to_status row).
        if row["status"] is not None and row["status"] != before_status:
            transitions.append(
                {
                    "source": source,
                    "ticket_id": row["external_id"],
                    "from_status": before_status,
                    "to_status": row["status"],
                    "changed_at": row["updated_at"],
                    "observed_at": now,
                }
            )
        latest[row["external_id"]] = (row["status"], row["resolved_at"], row["updated_at"])
    append_rows(conn, ticket_status_history, transitions)
