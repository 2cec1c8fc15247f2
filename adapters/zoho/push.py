"""Writing to Zoho: at most 100 records a call, one :class:`PushResult` per record (zoho.md §3).

Upserts and updates are idempotent, so the transport may retry them; plain creates are not, so a
failure that may have created the records (a 5xx, a dropped connection) is reported as
``OUTCOME_UNKNOWN`` and not retryable. A request-level failure never raises: every record of its
batch gets a failed result — retryable when the retries ran out (429, 5xx), so the planner tries
again next run. Only an :class:`~connector.http.AuthError` propagates, because nothing can be
written until an admin fixes the credentials or scopes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from adapters.zoho.client import ZohoClient
from connector.adapter import PushResult
from connector.http import AuthError, FatalApiError, OutcomeUnknown, RetryExhausted

MAX_BATCH = 100
#: Per-record codes that may succeed unchanged on a later try.
RETRYABLE_CODES = frozenset({"ALREADY_MODIFIED", "RECORD_LOCKED", "INTERNAL_ERROR", "TOO_MANY_REQUESTS"})


@dataclass(frozen=True)
class WriteCall:
    """One kind of write: HTTP method, path suffix, extra body keys and the action a success means."""

    method: str
    suffix: str
    extra: Mapping[str, Any]
    key_fields: tuple[str, ...]
    action: str | None  # None: Zoho says (upsert answers insert or update)
    idempotent: bool


def upsert_call(duplicate_check_fields: Sequence[str], trigger: Sequence[str]) -> WriteCall:
    extra: dict[str, Any] = {"trigger": list(trigger)}
    if duplicate_check_fields:
        extra["duplicate_check_fields"] = list(duplicate_check_fields)
    return WriteCall("POST", "/upsert", extra, tuple(duplicate_check_fields), None, True)


def create_call(trigger: Sequence[str]) -> WriteCall:
    return WriteCall("POST", "", {"trigger": list(trigger)}, (), "insert", False)


def update_call(trigger: Sequence[str]) -> WriteCall:
    return WriteCall("PUT", "", {"trigger": list(trigger)}, (), "update", True)


def write_records(
    client: ZohoClient,
    module: str,
    records: Sequence[Mapping[str, Any]],
    call: WriteCall,
    *,
    concurrency: int = 1,
) -> list[PushResult]:
    """Write ``records`` in batches of :data:`MAX_BATCH`; results in input order."""
    starts = range(0, len(records), MAX_BATCH)

    def run(start: int) -> list[PushResult]:
        return _write_batch(client, module, records[start : start + MAX_BATCH], start, call)

    if concurrency > 1 and len(starts) > 1:
        with ThreadPoolExecutor(max_workers=min(concurrency, len(starts))) as pool:
            batches = list(pool.map(run, starts))
    else:
        batches = [run(start) for start in starts]
    return [result for batch in batches for result in batch]


def record_key(record: Mapping[str, Any], key_fields: Sequence[str], index: int) -> str:
    """What identifies a record in its result: its id, else its duplicate-check value, else its index."""
    for name in ("id", *key_fields):
        value = record.get(name)
        if value not in (None, ""):
            return str(value)
    return str(index)


def _write_batch(
    client: ZohoClient, module: str, batch: Sequence[Mapping[str, Any]], offset: int, call: WriteCall
) -> list[PushResult]:
    keys = [record_key(record, call.key_fields, offset + i) for i, record in enumerate(batch)]
    body = {"data": [dict(record) for record in batch], **call.extra}
    try:
        reply = client.write(call.method, f"{module}{call.suffix}", body, idempotent=call.idempotent)
    except AuthError:
        raise
    except RetryExhausted as exc:
        code = "RATE_LIMITED" if exc.rate_limited else "REQUEST_FAILED"
        return [PushResult(key, ok=False, code=code, message=str(exc), retryable=True) for key in keys]
    except OutcomeUnknown as exc:
        return [PushResult(key, ok=False, code="OUTCOME_UNKNOWN", message=str(exc)) for key in keys]
    except FatalApiError as exc:
        return [PushResult(key, ok=False, code=exc.code, message=str(exc)) for key in keys]
    items = reply.body.get("data") if isinstance(reply.body, dict) else None
    items = items if isinstance(items, list) else []
    results = [_result(key, item, call.action) for key, item in zip(keys, items, strict=False)]
    missing = "Zoho returned no result for this record"
    results += [
        PushResult(key, ok=False, code="MISSING_RESULT", message=missing, retryable=True)
        for key in keys[len(results) :]
    ]
    return results


def _result(key: str, item: Any, action: str | None) -> PushResult:
    if not isinstance(item, dict):
        return PushResult(key, ok=False, code="MALFORMED_RESULT", message=repr(item)[:200], retryable=True)
    code = item.get("code")
    details = item.get("details") if isinstance(item.get("details"), dict) else {}
    if item.get("status") == "success" or code == "SUCCESS":
        remote_id = details.get("id")
        return PushResult(
            key,
            ok=True,
            remote_id=str(remote_id) if remote_id is not None else None,
            action=item.get("action") or action,
            code=code,
            message=item.get("message"),
        )
    message = str(item.get("message") or code)
    if details:
        message += " " + json.dumps(details, ensure_ascii=False, default=str)
    return PushResult(key, ok=False, code=code, message=message, retryable=code in RETRYABLE_CODES)
