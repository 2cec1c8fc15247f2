"""Reading Zoho: records by modification time, deletions, users (zoho.md §2.1, §2.4, §4).

Records are read oldest change first (``sort_by=Modified_Time&sort_order=asc``) with
``If-Modified-Since``, so the cursor yielded with a page — the latest ``Modified_Time`` seen so far —
is safe to commit with it: everything older has been read. Past 2,000 rows Zoho needs
``page_token``; after 100,000 (``PAGINATION_LIMIT_EXCEEDED``) or when a token expires, the query is
started again from the latest ``Modified_Time`` minus one second, which re-reads a few records rather
than risk skipping one whether Zoho's comparison is inclusive or not (zoho.md §10.4).

Cursors: records ``{"modified_since": "<ISO-8601 UTC>"}``, deletions ``{"deleted_since": …}``.
The next run asks for changes since the cursor minus ``overlap`` (late commits, clock skew); the
idempotent upsert absorbs what is read twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from adapters.zoho.client import ZohoClient
from connector.adapter import Cursor, DeletedPage, Page
from connector.http import FatalApiError

log = logging.getLogger(__name__)

PER_PAGE = 200
MAX_FIELDS = 50
#: Codes after which the query restarts from the last Modified_Time seen.
RESTART_CODES = frozenset(
    {"PAGINATION_LIMIT_EXCEEDED", "EXPIRED_VALUE", "DISCRETE_PAGINATION_LIMIT_EXCEEDED"}
)
ONE_SECOND = timedelta(seconds=1)


def request_fields(fetch_fields: list[str]) -> list[str]:
    """The ``fields`` parameter: what the mapping reads, plus the cursor's own field.

    ``id`` always comes back and ``$``-keys (``$se_module``) come with their lookups, so neither is
    asked for.
    """
    wanted = {f for f in fetch_fields if f != "id" and not f.startswith("$")}
    wanted.add("Modified_Time")
    return sorted(wanted)


class _Meter:
    """API calls made since the last page was handed out (retries and token calls included)."""

    def __init__(self, client: ZohoClient) -> None:
        self._client = client
        self._mark = client.api_calls

    def take(self) -> int:
        now = self._client.api_calls
        spent, self._mark = now - self._mark, now
        return spent


def _since_header(since: datetime | None) -> dict[str, str]:
    return {"If-Modified-Since": since.astimezone(UTC).isoformat(timespec="seconds")} if since else {}


def _parse_time(value: Any) -> datetime | None:
    """An aware datetime in Zoho's own offset (comparisons need no conversion), else None."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else None


def _iso_utc(at: datetime) -> str:
    return at.astimezone(UTC).isoformat()


def _pages(
    client: ZohoClient, path: str, params: Mapping[str, Any], headers: Mapping[str, str], key: str
) -> Iterator[list[dict[str, Any]]]:
    """Items of every page: ``next_page_token`` when Zoho offers one (params otherwise unchanged,
    as the token requires), else page numbers. 204/304 and an empty page end it."""
    token: str | None = None
    page = 1
    seen_tokens: set[str] = set()
    while True:
        query = dict(params)
        if token:
            query["page_token"] = token
        elif page > 1:
            query["page"] = page
        reply = client.get(path, query, headers)
        body = reply.body if isinstance(reply.body, dict) else {}
        items = body.get(key) or []
        if reply.status in (204, 304) or not items:
            return
        yield items
        info = body.get("info") or {}
        if not info.get("more_records"):
            return
        next_token = info.get("next_page_token")
        if next_token:
            if next_token in seen_tokens:
                raise FatalApiError("PAGINATION_LOOP", f"Zoho repeated page token for {path}", status=200)
            seen_tokens.add(next_token)
            token = next_token
        elif token:
            raise FatalApiError(
                "PAGINATION_LOOP", f"more_records without next_page_token for {path}", status=200
            )
        else:
            page = int(info.get("page") or page) + 1


def _restartable(
    client: ZohoClient,
    path: str,
    params: Mapping[str, Any],
    since: datetime | None,
    restart_from: Callable[[FatalApiError], datetime | None],
) -> Iterator[list[dict[str, Any]]]:
    """:func:`_pages` that, when Zoho ends a page chain (:data:`RESTART_CODES`), queries again from
    ``restart_from(error)`` minus one second; ``None`` ends the reading, an exception fails it."""
    pages = _pages(client, path, params, _since_header(since), "data")
    while True:
        try:
            items = next(pages)
        except StopIteration:
            return
        except FatalApiError as exc:
            if exc.code not in RESTART_CODES:
                raise
            mark = restart_from(exc)
            if mark is None:
                return
            restart = mark - ONE_SECOND
            if since is not None and restart <= since:
                raise FatalApiError(
                    exc.code,
                    f"{path}: a whole page-token chain of changes shares one second; use a Bulk Read export",
                    status=exc.status,
                ) from None
            log.info("%s: %s, querying again from %s", path, exc.code, restart.isoformat())
            since = restart
            pages = _pages(client, path, params, _since_header(since), "data")
            continue
        yield items


def pull_records(
    client: ZohoClient, module: str, fields: list[str], cursor: Cursor | None, overlap: timedelta
) -> Iterator[Page]:
    """Pages of ``module`` records changed since ``cursor``, each with the cursor to commit with it."""
    watermark = _parse_time((cursor or {}).get("modified_since"))
    since = watermark - overlap if watermark else None
    params = {
        "fields": ",".join(fields),
        "per_page": PER_PAGE,
        "sort_by": "Modified_Time",
        "sort_order": "asc",
    }

    def restart_from(exc: FatalApiError) -> datetime:
        if watermark is None:
            raise exc
        return watermark

    meter = _Meter(client)
    for records in _restartable(client, module, params, since, restart_from):
        stamps = [t for t in map(_parse_time, (r.get("Modified_Time") for r in records)) if t is not None]
        newest = max(stamps, default=None)
        if newest is not None and (watermark is None or newest > watermark):
            watermark = newest
        page_cursor = {"modified_since": _iso_utc(watermark)} if watermark else cursor
        yield Page(records=records, cursor=page_cursor, api_calls=meter.take())


def pull_users(client: ZohoClient) -> Iterator[Page]:
    """All users, active or not (``status`` tells), every run: the list is small and has no deletions
    stream, so no cursor is kept."""
    meter = _Meter(client)
    for users in _pages(client, "users", {"type": "AllUsers", "per_page": PER_PAGE}, {}, "users"):
        yield Page(records=users, cursor=None, api_calls=meter.take())


def pull_deleted(
    client: ZohoClient,
    module: str,
    cursor: Cursor | None,
    overlap: timedelta,
    clock: Callable[[], datetime],
) -> Iterator[DeletedPage]:
    """Records deleted since ``cursor`` (recycle bin and permanent).

    The order of ``/deleted`` is not documented, so the new cursor — the latest ``deleted_time`` —
    goes only with the last page (each page is held back until the next one arrives); earlier pages
    carry the old cursor, and re-marking a deletion is harmless. Past a page limit the query restarts
    from the latest time seen if the results came oldest first; otherwise the rest cannot be reached
    (If-Modified-Since is only a lower bound) and is left out with a warning.
    """
    last = _parse_time((cursor or {}).get("deleted_since"))
    newest, previous, ascending = last, None, True

    def restart_from(exc: FatalApiError) -> datetime | None:
        if newest is None or newest == last:
            raise exc
        if not ascending:
            log.warning("%s/deleted: %s on unordered results; older deletions left out", module, exc.code)
            return None
        return newest

    meter = _Meter(client)
    held: list[tuple[str, datetime]] | None = None
    params = {"type": "all", "per_page": PER_PAGE}
    for items in _restartable(
        client, f"{module}/deleted", params, last - overlap if last else None, restart_from
    ):
        if held is not None:
            yield DeletedPage(deleted=held, cursor=cursor, api_calls=meter.take())
        held = []
        for item in items:
            if item.get("id") is None:
                continue
            when = _parse_time(item.get("deleted_time")) or clock()
            held.append((str(item["id"]), when))
            ascending = ascending and (previous is None or when >= previous)
            previous = when
            newest = when if newest is None or when > newest else newest
    if held is not None:
        final = {"deleted_since": _iso_utc(newest)} if newest else cursor
        yield DeletedPage(deleted=held, cursor=final, api_calls=meter.take())
