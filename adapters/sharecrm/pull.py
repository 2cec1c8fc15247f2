"""Reading ShareCRM: objects by ``_id`` cursor under a time watermark, employees, id scans.

**Paging** (sharecrm.md §3.2, §6). Offsets stop at 10,000 and shift when rows change mid-run, so
every query has offset 0 and moves by filter instead: ``last_modified_time GTE (since − overlap)``
AND ``_id GT <last _id seen>``, ordered by ``_id`` ascending, 100 rows, totals off. A page shorter
than the limit is the last one (``total`` is 0 with totals off, so it is never a loop bound).

**Cursor** (records stream), committed with each page::

    {"since_ms": S, "last_id": "<_id>", "next_since_ms": W}   a run in progress
    {"since_ms": W}                                            a finished run

``S`` is the watermark the run reads from (``null`` on a first sync), ``W`` the time the run
started: the injected clock, or the server's ``Date`` on the first reply when that is earlier (a
connector clock running ahead of the server's must not move the watermark past changes the server
stamped earlier; one running behind only makes the next run re-read a little). A run resumed after a
crash keeps ``S`` and ``W`` and continues after ``last_id``; a finished run makes ``W`` the next
``S``. Rows changed during a run behind the ``_id`` cursor are therefore read by the next run, never
skipped; rows read twice are absorbed by the idempotent upsert.

**Deletions.** Invalidated rows (``life_status`` invalid, ``is_deleted``) are marked by the
mapping's ``deleted_if`` when queries return them; hard-deleted rows simply vanish, so a periodic
id-only scan reports every existing ``_id`` and the engine marks the rest deleted (that also covers
tenants whose queries hide invalidated rows). A full pull that started from scratch has seen every
id already, so its ids stand in for the scan at no extra cost.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from adapters.sharecrm.client import ShareCrmClient, data_path
from connector.adapter import Cursor, DeletedPage, Page
from connector.http import AuthError, FatalApiError

log = logging.getLogger(__name__)

USER_LIST_PATH = "/cgi/user/list"
DEPARTMENT_LIST_PATH = "/cgi/department/list"
WHOLE_COMPANY = 999999
ID = "_id"
MODIFIED = "last_modified_time"


def epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def query_body(
    api_name: str, projection: Sequence[str], limit: int, filters: list[dict[str, Any]]
) -> dict[str, Any]:
    """A ``data/query`` body in ShareCRM's mixed snake/camel naming (sharecrm.md §3.2)."""
    return {
        "data": {
            "dataObjectApiName": api_name,
            "find_explicit_total_num": False,
            "search_query_info": {
                "limit": limit,
                "offset": 0,
                "filters": filters,
                "orders": [{"fieldName": ID, "isAsc": True}],
                "fieldProjection": list(projection),
            },
        }
    }


def query_pages(
    client: ShareCrmClient,
    api_name: str,
    projection: Sequence[str],
    *,
    page_size: int,
    since_ms: int | None = None,
    after_id: str | None = None,
) -> Iterator[tuple[list[dict[str, Any]], str | None]]:
    """``(rows, after)`` pages of ``api_name`` ordered by ``_id``, never using an offset: ``after`` is
    the ``_id`` the next page starts after, ``None`` on the last page."""
    last_id = after_id
    while True:
        filters: list[dict[str, Any]] = []
        if since_ms is not None:
            filters.append({"field_name": MODIFIED, "operator": "GTE", "field_values": [since_ms]})
        if last_id is not None:
            filters.append({"field_name": ID, "operator": "GT", "field_values": [last_id]})
        envelope = client.post(
            data_path(api_name, "query"), query_body(api_name, projection, page_size, filters)
        )
        data = envelope.get("data") if isinstance(envelope.get("data"), dict) else {}
        rows = data.get("dataList") or []
        echoed = data.get("limit")
        # A gateway that silently caps the page size echoes the cap; a page is short against that.
        full = echoed if isinstance(echoed, int) and 0 < echoed < page_size else page_size
        if len(rows) < full:
            yield rows, None
            return
        # A row without _id (a malformed record, left to the quarantine) cannot carry the cursor; the
        # last row that has one can, and whatever follows it comes again on the next page.
        new_last = next((str(row[ID]) for row in reversed(rows) if row.get(ID) is not None), None)
        if new_last is None:
            raise FatalApiError("NO_ID", f"{api_name}: no row of a full page has an _id", status=200)
        if new_last == last_id:
            raise FatalApiError("PAGINATION_LOOP", f"{api_name}: the _id filter was ignored", status=200)
        yield rows, new_last
        last_id = new_last


def pull_records(
    client: ShareCrmClient,
    api_name: str,
    projection: Sequence[str],
    cursor: Cursor | None,
    *,
    overlap: timedelta,
    page_size: int,
    clock: Callable[[], datetime],
    seen_ids: set[str] | None = None,
) -> Iterator[Page]:
    """Pages of ``api_name`` changed since ``cursor``, each with the cursor to commit with it.

    ``seen_ids``, when given, collects every ``_id`` read (the caller passes it on full pulls).
    """
    cursor = cursor or {}
    since = cursor.get("since_ms")
    resume_after = cursor.get("last_id")
    next_since = cursor.get("next_since_ms") if resume_after else None
    query_since = since - int(overlap.total_seconds() * 1000) if since is not None else None
    started = clock()
    mark = client.api_calls
    pages = query_pages(
        client, api_name, projection, page_size=page_size, since_ms=query_since, after_id=resume_after
    )
    for rows, after in pages:
        if next_since is None:
            server = client.server_time
            next_since = epoch_ms(min(started, server) if server is not None else started)
        if seen_ids is not None:
            seen_ids.update(str(row[ID]) for row in rows if row.get(ID) is not None)
        if after is None:
            page_cursor: Cursor = {"since_ms": next_since}
        else:
            page_cursor = {"since_ms": since, "last_id": after, "next_since_ms": next_since}
        spent, mark = client.api_calls - mark, client.api_calls
        yield Page(records=rows, cursor=page_cursor, api_calls=spent)


def _digest(record: dict[str, Any]) -> str:
    text = json.dumps(record, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def pull_employees(
    client: ShareCrmClient, cursor: Cursor | None, clock: Callable[[], datetime]
) -> Iterator[Page]:
    """Every employee of the company (department 999999 with children) as one page.

    The directory has no modification time, so each record gets ``_version_ms``: when the connector
    first saw this version of it (a digest per employee is kept in the cursor). It moves only when the
    employee changes, so unchanged employees stay unchanged in the store. ``_department_name`` is the
    name of the main department, when the department list can be read.
    """
    mark = client.api_calls
    users = (
        client.post(USER_LIST_PATH, {"departmentId": WHOLE_COMPANY, "fetchChild": True}).get("userList") or []
    )
    names = _department_names(client)
    known: dict[str, list[Any]] = (cursor or {}).get("versions") or {}
    now_ms = epoch_ms(clock())
    versions: dict[str, list[Any]] = {}
    records = []
    for user in users:
        user_id = user.get("openUserId")
        record = dict(user)
        department = names.get(str(user.get("mainDepartmentId")))
        if department is not None:
            record["_department_name"] = department
        if user_id is not None:
            digest = _digest(record)
            previous = known.get(str(user_id))
            seen_ms = previous[1] if previous and previous[0] == digest else now_ms
            versions[str(user_id)] = [digest, seen_ms]
            record["_version_ms"] = seen_ms
        records.append(record)
    yield Page(records=records, cursor={"versions": versions}, api_calls=client.api_calls - mark)


def _department_names(client: ShareCrmClient) -> dict[str, str]:
    """Department id → name; empty when the app may not read departments (names are a nicety)."""
    try:
        body = client.post(DEPARTMENT_LIST_PATH, {})
    except FatalApiError as exc:
        refused = isinstance(exc.code, str) and exc.code.lstrip("-").isdigit()
        if not refused or isinstance(exc, AuthError):
            raise
        log.warning("department names unavailable (errorCode %s); agents keep department ids", exc.code)
        return {}
    return {str(d["id"]): str(d.get("name")) for d in body.get("departments") or [] if "id" in d}


def pull_deleted(
    client: ShareCrmClient,
    api_name: str,
    cursor: Cursor | None,
    *,
    interval: timedelta,
    page_size: int,
    clock: Callable[[], datetime],
    full_pull_ids: frozenset[str] | None = None,
) -> Iterator[DeletedPage]:
    """Every existing ``_id`` when a scan is due (or a full pull just saw them all), as one page.

    Cursor: ``{"scanned_at": "<ISO-8601 UTC>"}`` of the last scan, by the injected clock.
    """
    now = clock()
    done: Cursor = {"scanned_at": now.astimezone(UTC).isoformat()}
    if full_pull_ids is not None:
        yield DeletedPage(deleted=[], cursor=done, api_calls=0, complete_ids=full_pull_ids)
        return
    last = (cursor or {}).get("scanned_at")
    if last is not None and now - datetime.fromisoformat(last) < interval:
        return
    mark = client.api_calls
    ids: set[str] = set()
    for rows, _ in query_pages(client, api_name, [ID], page_size=page_size):
        ids.update(str(row[ID]) for row in rows if row.get(ID) is not None)
    yield DeletedPage(deleted=[], cursor=done, api_calls=client.api_calls - mark, complete_ids=frozenset(ids))
