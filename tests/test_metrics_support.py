"""Hand-built canonical rows for the metrics tests (no tests here; imported by test_metrics_*).

Times are written in the clinic's zone (Asia/Shanghai, UTC+8) because that is how the golden
datasets are reasoned about; the store keeps UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from connector.calendar import BusinessCalendar
from connector.store import Store
from connector.store.schema import (
    agents,
    assessments,
    calls,
    follow_ups,
    surveys,
    ticket_status_history,
    tickets,
)

TZ = ZoneInfo("Asia/Shanghai")
SYNCED = datetime(2027, 1, 1, tzinfo=UTC)
WEEKDAY = [(time(8, 0), time(12, 0)), (time(14, 0), time(17, 30))]  # 7.5 working hours


def local(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=TZ)


def weekday_calendar(statutory: str = "") -> BusinessCalendar:
    """Mon–Fri 08:00–12:00 and 14:00–17:30, weekends closed."""
    hours = {day: WEEKDAY for day in ("mon", "tue", "wed", "thu", "fri")}
    return BusinessCalendar.build(TZ, hours, statutory=statutory)


class Rows:
    """Collects rows per table and writes them in one go (plain inserts, as if synced)."""

    def __init__(self) -> None:
        self.pending: dict[sa.Table, list[dict[str, Any]]] = {}
        self._history_id = 0

    def _add(self, table: sa.Table, external_id: str, source: str, deleted: bool, **values: Any) -> None:
        row = {
            "source": source,
            "external_id": external_id,
            "updated_at": values.pop("updated_at", None) or SYNCED,
            "deleted_at": SYNCED if deleted else None,
            "synced_at": SYNCED,
            "raw": "{}",
            **values,
        }
        self.pending.setdefault(table, []).append(row)

    def agent(
        self,
        agent_id: str,
        name: str,
        *,
        source: str = "zoho",
        email: str | None = None,
        phone: str | None = None,
        deleted: bool = False,
    ) -> None:
        self._add(agents, agent_id, source, deleted, name=name, email=email, phone=phone, active=True)

    def ticket(
        self,
        ticket_id: str,
        owner: str,
        created: datetime,
        *,
        source: str = "zoho",
        category: str = "consultation",
        contact: str | None = None,
        status: str = "open",
        first_response: datetime | None = None,
        resolved: datetime | None = None,
        satisfaction: int | None = None,
        channel: str = "online",
        deleted: bool = False,
        updated: datetime | None = None,
    ) -> None:
        self._add(
            tickets,
            ticket_id,
            source,
            deleted,
            owner_id=owner,
            created_at=created,
            category=category,
            contact_id=contact,
            status=status,
            first_response_at=first_response,
            resolved_at=resolved,
            satisfaction=satisfaction,
            channel=channel,
            updated_at=updated,
        )

    def call(
        self,
        call_id: str,
        owner: str,
        started: datetime,
        *,
        source: str = "zoho",
        contact: str | None = None,
        ticket: str | None = None,
        direction: str = "outbound",
        purpose: str = "other",
        duration: int | None = 60,
        deleted: bool = False,
    ) -> None:
        self._add(
            calls,
            call_id,
            source,
            deleted,
            owner_id=owner,
            started_at=started,
            contact_id=contact,
            ticket_id=ticket,
            direction=direction,
            purpose=purpose,
            duration_s=duration,
        )

    def follow_up(
        self,
        follow_up_id: str,
        owner: str,
        due: datetime | None,
        *,
        source: str = "zoho",
        completed: datetime | None = None,
        contact: str | None = None,
        ticket: str | None = None,
        status: str | None = None,
        deleted: bool = False,
    ) -> None:
        status = status or ("done" if completed else "planned")
        self._add(
            follow_ups,
            follow_up_id,
            source,
            deleted,
            owner_id=owner,
            due_at=due,
            completed_at=completed,
            contact_id=contact,
            ticket_id=ticket,
            status=status,
            kind="revisit",
        )

    def survey(
        self,
        survey_id: str,
        owner: str | None,
        submitted: datetime,
        score: int,
        *,
        source: str = "zoho",
        ticket: str | None = None,
        deleted: bool = False,
    ) -> None:
        self._add(
            surveys,
            survey_id,
            source,
            deleted,
            owner_id=owner,
            submitted_at=submitted,
            score=score,
            ticket_id=ticket,
        )

    def assessment(
        self,
        assessment_id: str,
        agent: str,
        kind: str,
        score: float,
        assessed: datetime,
        *,
        source: str = "zoho",
        deleted: bool = False,
    ) -> None:
        self._add(
            assessments,
            assessment_id,
            source,
            deleted,
            agent_id=agent,
            kind=kind,
            score=score,
            assessed_at=assessed,
        )

    def status(
        self, ticket_id: str, from_status: str | None, to_status: str, at: datetime, *, source: str = "zoho"
    ) -> None:
        self._history_id += 1
        self.pending.setdefault(ticket_status_history, []).append(
            {
                "id": self._history_id,
                "source": source,
                "ticket_id": ticket_id,
                "from_status": from_status,
                "to_status": to_status,
                "changed_at": at,
                "observed_at": SYNCED,
            }
        )

    def write(self, store: Store) -> None:
        with store.begin() as conn:
            for table, rows in self.pending.items():
                conn.execute(table.insert(), rows)
        self.pending.clear()
