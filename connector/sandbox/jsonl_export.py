"""Render the synthetic clinic as canonical JSON-lines files (the ``jsonl`` kind's input).

This is how the bundled sample clinic in ``connector/samples/clinic`` was made (``python -m
connector.sandbox.jsonl_export DIR``; a test checks the bundled files are exactly what it writes),
and it lets an admin hand-edit a realistic dataset. A few deliberately malformed records per entity
show the quarantine at work in the demo: a missing owner, an unparsable time, an unknown status, a
line that is not JSON.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from connector.sandbox.clinic import Clinic, generate_clinic

SAMPLE_SEED = 20261031
SAMPLE_NOW = datetime(2026, 10, 31, 10, 0, tzinfo=UTC)
CLINIC_TZ = ZoneInfo("Asia/Shanghai")


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _rows(clinic: Clinic, entity: str) -> Iterator[dict[str, Any]]:
    for r in clinic.records(entity):
        if r.deleted:
            continue
        base = {"id": f"{entity[:2]}-{r.key}", "updated_at": _iso(r.modified)}
        if entity == "agents":
            yield {
                **base,
                "name": r.name,
                "email": r.email,
                "phone": r.mobile,
                "department": r.department,
                "role": r.role,
                "active": r.active,
            }
        elif entity == "contacts":
            yield {
                **base,
                "name": r.name,
                "phone": r.phone,
                "mobile": r.mobile,
                "email": r.email,
                "owner_id": f"ag-{r.owner}",
                "created_at": _iso(r.created),
            }
        elif entity == "tickets":
            yield {
                **base,
                "contact_id": f"co-{r.contact}",
                "owner_id": f"ag-{r.owner}",
                "subject": r.subject,
                "category": r.category,
                "channel": r.channel,
                "priority": r.priority,
                "status": r.status,
                "created_at": _iso(r.created),
                "first_response_at": _iso(r.first_response),
                "resolved_at": _iso(r.resolved),
                "satisfaction": r.satisfaction,
            }
        elif entity == "follow_ups":
            due_end = datetime.combine(
                r.due + timedelta(days=1), time(), tzinfo=CLINIC_TZ
            )  # end of local day
            yield {
                **base,
                "contact_id": f"co-{r.contact}",
                "ticket_id": r.ticket and f"ti-{r.ticket}",
                "owner_id": f"ag-{r.owner}",
                "kind": r.kind,
                "due_at": _iso(due_end),
                "completed_at": _iso(r.completed),
                "status": r.status,
                "outcome": r.outcome,
            }
        elif entity == "calls":
            yield {
                **base,
                "contact_id": r.contact and f"co-{r.contact}",
                "ticket_id": r.ticket and f"ti-{r.ticket}",
                "owner_id": f"ag-{r.owner}",
                "direction": r.direction,
                "purpose": r.purpose,
                "started_at": _iso(r.started),
                "duration_s": r.duration_s,
            }
        elif entity == "surveys":
            yield {
                **base,
                "contact_id": f"co-{r.contact}",
                "ticket_id": r.ticket and f"ti-{r.ticket}",
                "owner_id": f"ag-{r.owner}",
                "score": r.score,
                "submitted_at": _iso(r.submitted),
                "comment": r.comment,
            }


def _malform(entity: str, rows: list[dict[str, Any]]) -> list[str]:
    """Lines for the file: every row as JSON, with a few rows broken in documented ways."""
    lines = [json.dumps(row, ensure_ascii=False) for row in rows]
    if entity in ("agents", "contacts") or len(rows) < 40:
        return lines
    broken = dict(rows[7], updated_at="31/10/2026 10:00")  # not ISO-8601
    lines[7] = json.dumps(broken, ensure_ascii=False)
    missing = {k: v for k, v in rows[19].items() if k != "owner_id"}  # required owner missing
    lines[19] = json.dumps(missing, ensure_ascii=False)
    if entity == "tickets":
        lines[29] = json.dumps(dict(rows[29], status="escalated?"), ensure_ascii=False)  # unknown status
    lines[37] = lines[37][: len(lines[37]) // 2]  # a truncated line: not JSON
    return lines


def export_jsonl(clinic: Clinic, folder: Path) -> dict[str, int]:
    """Write ``<entity>.jsonl`` per entity into ``folder``; returns lines written per entity."""
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for entity in ("agents", "contacts", "tickets", "follow_ups", "calls", "surveys"):
        lines = _malform(entity, list(_rows(clinic, entity)))
        (folder / f"{entity}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
        written[entity] = len(lines)
    return written


def sample_clinic() -> Clinic:
    """The clinic behind the bundled sample (deterministic)."""
    return generate_clinic(SAMPLE_SEED, "small", now=SAMPLE_NOW)


if __name__ == "__main__":
    print(export_jsonl(sample_clinic(), Path(sys.argv[1])))
