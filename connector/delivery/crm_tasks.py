"""Alert tasks in the CRMs: create, update, close — and find one whose creation was interrupted.

A create is not idempotent in either CRM, so it is only ever repeated after a lookup by the task's
unique key (:func:`connector.delivery.content.task_key`):

* **ShareCRM**: the key is its own field (``key_field``), found by an EQ query
  (the adapter's writer, the same query its upsert uses).
* **Zoho**: the key ends the Subject (no custom field needed on the standard Tasks module). Tasks
  are read newest first (``sort_by=Created_Time``) until one created before the alert's occurrence
  (less a day for clock skew) — a handful of rows, since only tasks created since then can match.
  Zoho's search API is not used: its index lags behind fresh records, exactly the ones looked for.
  At most :data:`ZOHO_LOOKUP_PAGES` pages are read.

Updates go by the CRM's record id and only change the fields sent, so they are safe to repeat.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any, Protocol

from connector.adapter import PushResult
from connector.push.fieldmap import TaskLayout

ZOHO_LOOKUP_PAGES = 10
ZOHO_PAGE = 200


class TaskBackend(Protocol):
    """What delivery needs from one CRM source to keep alert tasks."""

    layout: TaskLayout

    def create(self, record: Mapping[str, Any]) -> PushResult: ...

    def update(self, remote_id: str, record: Mapping[str, Any]) -> PushResult: ...

    def find(self, key: str, *, since: datetime) -> str | None:
        """The id of the task whose key is ``key``, created at or after ``since``; None if none."""
        ...

    def owner(self, agent_id: str) -> Any: ...

    def due(self, day: date) -> Any: ...


class ZohoTasks:
    def __init__(self, adapter: Any, layout: TaskLayout) -> None:
        self.adapter = adapter
        self.layout = layout

    def create(self, record: Mapping[str, Any]) -> PushResult:
        return self.adapter.create_records(self.layout.object, [record])[0]

    def update(self, remote_id: str, record: Mapping[str, Any]) -> PushResult:
        return self.adapter.update_records(self.layout.object, [{"id": remote_id, **record}])[0]

    def find(self, key: str, *, since: datetime) -> str | None:
        layout = self.layout
        fields = [layout.subject, "Created_Time", *([layout.key_field] if layout.key_field else [])]
        params: dict[str, Any] = {
            "fields": ",".join(fields),
            "sort_by": "Created_Time",
            "sort_order": "desc",
            "per_page": ZOHO_PAGE,
        }
        for _ in range(ZOHO_LOOKUP_PAGES):
            body = self.adapter.client.get(layout.object, params).body
            body = body if isinstance(body, dict) else {}
            for row in body.get("data") or []:
                if self._matches(row, key):
                    return str(row["id"])
                created = _zoho_time(row.get("Created_Time"))
                if created is not None and created < since:
                    return None
            info = body.get("info") or {}
            if not info.get("more_records") or not info.get("next_page_token"):
                return None
            params = {**params, "page_token": info["next_page_token"]}
        return None

    def _matches(self, row: Mapping[str, Any], key: str) -> bool:
        if self.layout.key_field:
            return row.get(self.layout.key_field) == key
        subject = row.get(self.layout.subject)
        return isinstance(subject, str) and subject.endswith(f"[{key}]")

    def owner(self, agent_id: str) -> Any:
        return {"id": agent_id}

    def due(self, day: date) -> Any:
        return day.isoformat()


class ShareCrmTasks:
    def __init__(self, adapter: Any, layout: TaskLayout) -> None:
        if not layout.key_field:
            raise ValueError(f"ShareCRM alert tasks ({layout.object}) need tasks.key_field in the field map")
        self.adapter = adapter
        self.layout = layout
        self._key_fields = [layout.key_field]

    def create(self, record: Mapping[str, Any]) -> PushResult:
        return self.adapter.create_records(self.layout.object, [record], self._key_fields)[0]

    def update(self, remote_id: str, record: Mapping[str, Any]) -> PushResult:
        return self.adapter.update_records(self.layout.object, [{"_id": remote_id, **record}])[0]

    def find(self, key: str, *, since: datetime) -> str | None:
        found = self.adapter.writer.find(self.layout.object, {self._key_fields[0]: key}, self._key_fields)
        return found[0] if found else None

    def owner(self, agent_id: str) -> Any:
        return agent_id  # an employee field: the adapter sends it as a list of ids

    def due(self, day: date) -> Any:
        return day  # the adapter sends dates as epoch milliseconds


#: CRM kind → the backend class for its alert tasks.
BACKENDS: dict[str, type[ZohoTasks] | type[ShareCrmTasks]] = {"zoho": ZohoTasks, "sharecrm": ShareCrmTasks}


def _zoho_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None
