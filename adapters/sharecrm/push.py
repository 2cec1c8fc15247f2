"""Writing to ShareCRM: one call per record, one :class:`PushResult` per record (sharecrm.md §3.4, §6.1).

* **update** by ``_id`` through ``…/data/update`` (custom objects through the custom path); updates
  only change the fields sent, so the transport may retry them.
* **upsert** = query the key fields, then update the one match or create. Two live matches are an
  error the admin must resolve (the connector will not guess which record is the scorecard).
* **create** has no idempotency key, so a create whose outcome is unknown (a timeout, a 5xx, a
  dropped connection) is never repeated blindly: the key fields are queried first, and only when
  the record is not there is it created again (once). Without key fields that cannot be checked,
  so the result is ``OUTCOME_UNKNOWN`` and not retryable.

Values are sent the way ShareCRM wants them: numbers as strings, dates as epoch milliseconds (a date
is midnight Asia/Shanghai), employee/department fields as lists of ids. ``triggerWorkFlow`` (and on
create ``triggerApprovalFlow``) is false unless the source enables workflows.

A failed request never raises: its record gets a failed result, retryable when retries ran out or
the daily quota is spent. Only an :class:`~connector.http.AuthError` propagates, because nothing can
be written until an admin fixes the credentials.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from adapters.sharecrm.client import ShareCrmClient, data_path
from adapters.sharecrm.errors import SHANGHAI, QuotaExhausted
from adapters.sharecrm.pull import ID, epoch_ms, query_body
from connector.adapter import PushResult
from connector.http import AuthError, FatalApiError, OutcomeUnknown, RetryExhausted

#: Attempts at a create whose earlier attempt's outcome turned out unknown and absent.
CREATE_ATTEMPTS = 2


def crm_value(value: Any, *, employee: bool = False) -> Any:
    """One field value in ShareCRM's write format."""
    if employee:
        if value is None:
            return []
        return [str(v) for v in value] if isinstance(value, list | tuple) else [str(value)]
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("date-times written to ShareCRM need a time zone")
        return epoch_ms(value)
    if isinstance(value, date):
        return epoch_ms(datetime.combine(value, time(), tzinfo=SHANGHAI))
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float | Decimal):
        number = Decimal(repr(value)) if isinstance(value, float) else value
        if not number.is_finite():
            raise ValueError(f"{value} cannot be written to ShareCRM")
        return format(number, "f")  # plain digits: "0.0000001", never "1e-07"
    return value


@dataclass(frozen=True)
class Writer:
    """Writes records of ShareCRM objects with the source's write settings."""

    client: ShareCrmClient
    employee_fields: frozenset[str]
    trigger_workflow: bool

    def update(self, api_name: str, record: Mapping[str, Any], key: str) -> PushResult:
        """Change the fields sent on the record ``record["_id"]``."""
        return self._guard(key, lambda: self._update(api_name, record, key))

    def create(
        self, api_name: str, record: Mapping[str, Any], key: str, key_fields: Sequence[str]
    ) -> PushResult:
        """Create a record; ``key_fields`` (may be empty) let a create of unknown outcome be checked."""
        return self._guard(key, lambda: self._create(api_name, record, key, key_fields))

    def upsert(
        self, api_name: str, record: Mapping[str, Any], key: str, key_fields: Sequence[str]
    ) -> PushResult:
        """Update the record whose ``key_fields`` match, or create it."""

        def run() -> PushResult:
            found = self.find(api_name, record, key_fields)
            if len(found) > 1:
                matches = f"{len(found)} {api_name} records match {', '.join(key_fields)}: {', '.join(found)}"
                return PushResult(key, ok=False, code="DUPLICATE_KEY", message=matches)
            if found:
                return self._update(api_name, {**record, ID: found[0]}, key)
            return self._create(api_name, record, key, key_fields)

        return self._guard(key, run)

    def find(self, api_name: str, record: Mapping[str, Any], key_fields: Sequence[str]) -> list[str]:
        """``_id`` s of the live records whose key fields equal the record's."""
        filters = []
        for name in key_fields:
            value = crm_value(record.get(name), employee=name in self.employee_fields)
            operator, values = ("IN", value) if isinstance(value, list) else ("EQ", [value])
            filters.append({"field_name": name, "operator": operator, "field_values": values})
        body = query_body(api_name, [ID, "life_status", *key_fields], 10, filters)
        envelope = self.client.post(data_path(api_name, "query"), body)
        rows = (envelope.get("data") or {}).get("dataList") or []
        return [str(r[ID]) for r in rows if r.get(ID) and r.get("life_status") != "invalid"]

    def _object_data(self, api_name: str, record: Mapping[str, Any]) -> dict[str, Any]:
        data = {
            name: crm_value(value, employee=name in self.employee_fields) for name, value in record.items()
        }
        data["dataObjectApiName"] = api_name
        return data

    def _update(self, api_name: str, record: Mapping[str, Any], key: str) -> PushResult:
        record_id = record.get(ID)
        if not record_id:
            return PushResult(key, ok=False, code="MISSING_ID", message="an update needs the record's _id")
        body = {
            "triggerWorkFlow": self.trigger_workflow,
            "data": {"object_data": self._object_data(api_name, record)},
        }
        self.client.post(data_path(api_name, "update"), body)
        return PushResult(key, ok=True, remote_id=str(record_id), action="update", code="0")

    def _create(
        self, api_name: str, record: Mapping[str, Any], key: str, key_fields: Sequence[str]
    ) -> PushResult:
        body = {
            "triggerWorkFlow": self.trigger_workflow,
            "triggerApprovalFlow": self.trigger_workflow,
            "data": {"object_data": self._object_data(api_name, record)},
        }
        for attempt in range(1, CREATE_ATTEMPTS + 1):
            try:
                envelope = self.client.post(data_path(api_name, "create"), body, idempotent=False)
            except OutcomeUnknown as exc:
                if not key_fields:
                    return PushResult(key, ok=False, code="OUTCOME_UNKNOWN", message=str(exc))
                found = self.find(api_name, record, key_fields)
                if found:
                    return PushResult(key, ok=True, remote_id=found[0], action="insert", code="0")
                if attempt == CREATE_ATTEMPTS:
                    return PushResult(key, ok=False, code="OUTCOME_UNKNOWN", message=str(exc), retryable=True)
                continue
            created = _created_id(envelope)
            if created is None and key_fields:
                found = self.find(api_name, record, key_fields)
                created = found[0] if found else None
            return PushResult(key, ok=True, remote_id=created, action="insert", code="0")
        raise AssertionError("unreachable: the last attempt returns")  # pragma: no cover

    def _guard(self, key: str, run: Callable[[], PushResult]) -> PushResult:
        """Turn a request failure into the record's failed result (credentials problems propagate)."""
        try:
            return run()
        except AuthError:
            raise
        except QuotaExhausted as exc:
            return PushResult(key, ok=False, code=exc.code, message=str(exc), retryable=True)
        except RetryExhausted as exc:
            code = "RATE_LIMITED" if exc.rate_limited else "REQUEST_FAILED"
            return PushResult(key, ok=False, code=code, message=str(exc), retryable=True)
        except OutcomeUnknown as exc:  # an update or a lookup whose reply was lost: safe to repeat
            return PushResult(key, ok=False, code="OUTCOME_UNKNOWN", message=str(exc), retryable=True)
        except FatalApiError as exc:
            return PushResult(key, ok=False, code=exc.code, message=str(exc))
        except ValueError as exc:  # a value ShareCRM cannot take (naive date-time, NaN)
            return PushResult(key, ok=False, code="INVALID_VALUE", message=str(exc))


def _created_id(envelope: Mapping[str, Any]) -> str | None:
    """The new record's id: top-level ``dataId`` (documented), or inside ``data`` (custom replies vary)."""
    data = envelope.get("data") if isinstance(envelope.get("data"), dict) else {}
    for value in (envelope.get("dataId"), data.get("dataId"), data.get(ID)):
        if value:
            return str(value)
    return None


def record_key(record: Mapping[str, Any], key_fields: Sequence[str], index: int) -> str:
    """What identifies a record in its result: ``_id``, else its key values, else its position."""
    if record.get(ID):
        return str(record[ID])
    values = [record.get(name) for name in key_fields]
    if values and all(v not in (None, "", []) for v in values):
        return "|".join(",".join(map(str, v)) if isinstance(v, list | tuple) else str(v) for v in values)
    return str(index)
