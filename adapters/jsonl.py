"""The ``jsonl`` kind: one JSON-lines file per entity in a folder.

Clinics on CRMs we do not support yet export to this format, and the foundation demo uses it. Files
are ``<folder>/<entity>.jsonl`` (records, one JSON object a line) and optionally
``<folder>/<entity>.deleted.jsonl`` (``{"id": …, "deleted_at": "<ISO-8601>"}`` a line). Exports only
grow or are replaced whole, so the cursor is the number of lines already committed plus a hash of
those lines; a file that no longer starts with them (shorter, or replaced by a new export of any
length) is read again from the top, and the idempotent upsert absorbs the overlap.
A line that is not JSON is passed on as ``{"_unparsable_line": …}`` so it lands in the quarantine
with its line number and text rather than stopping the sync. A deletion line that cannot be read
fails the run with its file and line: a deletion has no quarantine, and skipping it would lose it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from itertools import islice
from pathlib import Path
from typing import IO, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from connector.adapter import (
    AdapterContext,
    AdapterKind,
    CheckResult,
    Cursor,
    DeletedPage,
    Page,
    PushResult,
    register,
)
from connector.store.schema import SYNCED_ENTITIES

_PageT = TypeVar("_PageT")
#: Longest slice of an unparsable line kept for the quarantine.
_SHOWN_LINE = 500


class JsonlOptions(BaseModel):
    """``[sources.<name>]`` keys of the jsonl kind."""

    model_config = ConfigDict(extra="forbid")
    path: Path = Field(description="Folder holding <entity>.jsonl files (relative to the config file).")
    page_size: int = Field(500, ge=1, le=100_000, description="Records committed per transaction.")


class JsonlAdapter:
    def __init__(self, context: AdapterContext) -> None:
        options: JsonlOptions = context.config.options  # type: ignore[assignment]
        self.folder = options.path if options.path.is_absolute() else context.base_dir / options.path
        self.page_size = options.page_size
        self.mappings = context.mappings
        self._reads = 0

    @property
    def api_calls(self) -> int:
        """File reads stand in for API calls, so run rows stay comparable across kinds."""
        return self._reads

    def entities(self) -> Sequence[str]:
        return [e for e in SYNCED_ENTITIES if e in self.mappings and self._file(e).exists()]

    def _file(self, entity: str, suffix: str = ".jsonl") -> Path:
        return self.folder / f"{self.mappings[entity].object}{suffix}"

    def pull(self, entity: str, cursor: Cursor | None) -> Iterator[Page]:
        def page(lines: list[tuple[int, str]], next_cursor: Cursor) -> Page:
            return Page(records=[_parse_line(text, number) for number, text in lines], cursor=next_cursor)

        yield from self._pages(self._file(entity), cursor, page)

    def deleted(self, entity: str, cursor: Cursor | None) -> Iterator[DeletedPage]:
        path = self._file(entity, ".deleted.jsonl")
        if not path.exists():
            return

        def page(lines: list[tuple[int, str]], next_cursor: Cursor) -> DeletedPage:
            items = [_parse_deletion(text, path, number) for number, text in lines]
            return DeletedPage(deleted=items, cursor=next_cursor)

        yield from self._pages(path, cursor, page)

    def _pages(
        self, path: Path, cursor: Cursor | None, build: Callable[[list[tuple[int, str]], Cursor], _PageT]
    ) -> Iterator[_PageT]:
        """Pages of (line number, text) for the non-blank lines after the committed ones."""
        self._reads += 1
        start = int((cursor or {}).get("line", 0))
        with _open(path) as handle:
            prefix = _skip_committed(handle, start, (cursor or {}).get("sha1"))
            if prefix is None:  # replaced since the cursor was stored: read it all again
                handle.seek(0)
                start, prefix = 0, hashlib.sha1()
            line_no = start
            while chunk := list(islice(handle, self.page_size)):
                lines = []
                for line in chunk:
                    line_no += 1
                    prefix.update(line.encode("utf-8"))
                    if line.strip():
                        lines.append((line_no, line))
                yield build(lines, {"line": line_no, "sha1": prefix.hexdigest()})

    def push(self, target: str, records: Sequence[Mapping[str, Any]]) -> list[PushResult]:
        """A folder of exports cannot be written back; every record is reported, none dropped."""
        return [
            PushResult(
                key=str(r.get("key", i)), ok=False, code="UNSUPPORTED", message="the jsonl kind is read-only"
            )
            for i, r in enumerate(records)
        ]

    def check(self) -> CheckResult:
        if not self.folder.is_dir():
            return CheckResult(ok=False, detail=f"folder not found: {self.folder}")
        found = {e: self._file(e).name for e in self.entities()}
        return CheckResult(ok=bool(found), detail=f"{len(found)} entity files in {self.folder}", facts=found)


def _open(path: Path) -> IO[str]:
    """Exports from Windows tools often start with a BOM; a stray invalid byte must spoil one line only."""
    return path.open(encoding="utf-8-sig", errors="replace")


def _skip_committed(handle: IO[str], start: int, digest: str | None) -> hashlib._Hash | None:
    """Read past the ``start`` committed lines; their running hash, or None if the file changed under them.

    Cursors stored before the hash existed carry no digest and are trusted on their line count.
    """
    prefix = hashlib.sha1()
    count = 0
    for line in islice(handle, start):
        prefix.update(line.encode("utf-8"))
        count += 1
    if count < start or (digest is not None and prefix.hexdigest() != digest):
        return None
    return prefix


def _parse_line(line: str, line_no: int) -> dict[str, Any]:
    try:
        value = json.loads(line)
    except json.JSONDecodeError as exc:
        error = str(exc)
    else:
        if isinstance(value, dict):
            return value
        error = "not a JSON object"
    return {"_unparsable_line": line_no, "_error": error, "_text": line.strip()[:_SHOWN_LINE]}


def _parse_deletion(line: str, path: Path, line_no: int) -> tuple[str, datetime]:
    try:
        item = json.loads(line)
        when = datetime.fromisoformat(item["deleted_at"])
        if when.tzinfo is None:
            raise ValueError("deleted_at has no UTC offset")
        return str(item["id"]), when
    except (ValueError, KeyError, TypeError) as exc:
        detail = f"missing {exc}" if isinstance(exc, KeyError) else str(exc)
        expected = '{"id": …, "deleted_at": "<ISO-8601 with offset>"}'
        raise ValueError(f"{path.name} line {line_no}: expected {expected} ({detail})") from None


register("jsonl", AdapterKind(factory=JsonlAdapter, options=JsonlOptions, bundled_mapping="jsonl.toml"))
