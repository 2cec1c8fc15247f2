"""The jsonl kind: pages and line cursors, resume, replaced files, deletions, check, sync through it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from adapters.jsonl import JsonlAdapter, JsonlOptions
from connector.adapter import AdapterContext, Cursor, adapter_kinds, create_adapter
from connector.clock import fixed_clock
from connector.mapping import load_mapping
from connector.store import Store, open_store
from connector.store.schema import quarantine, tickets
from connector.store.tokens import MemoryTokenCache
from connector.sync import sync_entity, sync_source

TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 1, 4, 0, tzinfo=UTC)
MAPPINGS = load_mapping("jsonl", TZ).entities


def make_context(folder: Path, *, page_size: int = 2, base_dir: Path | None = None) -> AdapterContext:
    return AdapterContext(
        name="export",
        config=SimpleNamespace(options=JsonlOptions(path=folder, page_size=page_size)),  # type: ignore[arg-type]
        base_dir=base_dir or folder.parent,
        mappings=MAPPINGS,
        tokens=MemoryTokenCache(),
        clock=fixed_clock(NOW),
        sleep=lambda seconds: None,
    )


def make_adapter(folder: Path, *, page_size: int = 2, base_dir: Path | None = None) -> JsonlAdapter:
    return JsonlAdapter(make_context(folder, page_size=page_size, base_dir=base_dir))


def ticket(n: int, status: str = "open", minutes: int = 0) -> dict[str, Any]:
    return {
        "id": f"t{n}",
        "updated_at": f"2026-10-0{1 + minutes // 60}T08:{minutes % 60:02d}:00+08:00",
        "owner_id": "u1",
        "status": status,
        "created_at": "2026-10-01T08:00:00+08:00",
    }


def write_lines(path: Path, lines: list[Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(
        (line if isinstance(line, str) else json.dumps(line, ensure_ascii=False)) + "\n" for line in lines
    )
    path.write_text(text, encoding="utf-8")


def append_lines(path: Path, lines: list[Any]) -> None:
    with path.open("a", encoding="utf-8") as handle:
        for line in lines:
            handle.write(json.dumps(line) + "\n")


def ids(pages: list[Any]) -> list[list[str]]:
    return [[r.get("id", "?") for r in page.records] for page in pages]


def last_cursor(pages: list[Any]) -> Cursor:
    return pages[-1].cursor


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    path = tmp_path / "export"
    path.mkdir()
    return path


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    opened = open_store(db_url)
    yield opened
    opened.dispose()


# ---- pages and cursors ---------------------------------------------------------------------------


def test_pages_and_line_cursor(folder: Path) -> None:
    write_lines(folder / "tickets.jsonl", [ticket(1), ticket(2), "", ticket(3), "   ", ticket(4), ticket(5)])
    adapter = make_adapter(folder)

    pages = list(adapter.pull("tickets", None))

    # a page is page_size lines; blank lines count as lines and yield nothing
    assert ids(pages) == [["t1", "t2"], ["t3"], ["t4"], ["t5"]]
    assert [p.cursor["line"] for p in pages] == [2, 4, 6, 7]
    assert pages[0].records[0] == ticket(1)
    assert adapter.api_calls == 1


def test_resume_from_a_cursor_reads_only_the_rest(folder: Path) -> None:
    write_lines(folder / "tickets.jsonl", [ticket(n) for n in range(1, 6)])
    adapter = make_adapter(folder)
    first = list(adapter.pull("tickets", None))

    assert ids(list(adapter.pull("tickets", first[0].cursor))) == [["t3", "t4"], ["t5"]]
    assert list(adapter.pull("tickets", last_cursor(first))) == []

    append_lines(folder / "tickets.jsonl", [ticket(6), ticket(7, "closed")])
    appended = list(adapter.pull("tickets", last_cursor(first)))
    assert ids(appended) == [["t6", "t7"]]
    assert last_cursor(appended)["line"] == 7
    assert adapter.api_calls == 4  # one file read per pull


def test_a_replaced_shorter_file_is_read_from_the_top(folder: Path) -> None:
    path = folder / "tickets.jsonl"
    write_lines(path, [ticket(n) for n in range(1, 6)])
    adapter = make_adapter(folder)
    cursor = last_cursor(list(adapter.pull("tickets", None)))

    write_lines(path, [ticket(8), ticket(9)])
    assert ids(list(adapter.pull("tickets", cursor))) == [["t8", "t9"]]


def test_a_replaced_longer_file_is_read_from_the_top(folder: Path) -> None:
    path = folder / "tickets.jsonl"
    write_lines(path, [ticket(1), ticket(2)])
    adapter = make_adapter(folder)
    cursor = last_cursor(list(adapter.pull("tickets", None)))

    # a new full export: the first lines changed, and there are more of them
    write_lines(path, [ticket(1, "closed", 5), ticket(2, "resolved", 6), ticket(3)])
    pages = list(adapter.pull("tickets", cursor))
    assert ids(pages) == [["t1", "t2"], ["t3"]]
    assert pages[0].records[0]["status"] == "closed"


def test_a_cursor_without_hash_is_trusted_on_its_line_count(folder: Path) -> None:
    write_lines(folder / "tickets.jsonl", [ticket(n) for n in range(1, 5)])
    assert ids(list(make_adapter(folder).pull("tickets", {"line": 3}))) == [["t4"]]


def test_relative_folder_resolves_against_the_config_folder(tmp_path: Path) -> None:
    write_lines(tmp_path / "exports" / "tickets.jsonl", [ticket(1)])
    adapter = make_adapter(Path("exports"), base_dir=tmp_path)
    assert adapter.entities() == ["tickets"]
    assert ids(list(adapter.pull("tickets", None))) == [["t1"]]


def test_byte_order_mark_and_invalid_bytes(folder: Path) -> None:
    path = folder / "tickets.jsonl"
    path.write_bytes(
        b"\xef\xbb\xbf"
        + json.dumps(ticket(1)).encode()
        + b"\n"
        + b'{"id": "t2", "name": "\xff\xfe"}\n'
        + json.dumps(ticket(3)).encode()
        + b"\n"
    )
    pages = list(make_adapter(folder, page_size=10).pull("tickets", None))
    assert ids(pages) == [["t1", "t2", "t3"]]
    assert "\ufffd" in pages[0].records[1]["name"]


def test_unparsable_lines_are_passed_on_with_line_number_and_text(folder: Path) -> None:
    write_lines(folder / "tickets.jsonl", [ticket(1), "{not json", "[1, 2]", ticket(4)])
    records = [r for page in make_adapter(folder, page_size=10).pull("tickets", None) for r in page.records]
    assert records[1]["_unparsable_line"] == 2 and records[1]["_text"] == "{not json" and records[1]["_error"]
    assert records[2] == {"_unparsable_line": 3, "_error": "not a JSON object", "_text": "[1, 2]"}


# ---- entities, deletions, check, push -------------------------------------------------------------


def test_entities_are_those_with_a_file_in_sync_order(folder: Path) -> None:
    for name in ("surveys", "agents", "tickets"):
        write_lines(folder / f"{name}.jsonl", [])
    write_lines(folder / "unrelated.jsonl", [])
    assert make_adapter(folder).entities() == ["agents", "tickets", "surveys"]


def test_deleted_file(folder: Path) -> None:
    write_lines(folder / "tickets.jsonl", [ticket(1)])
    write_lines(
        folder / "tickets.deleted.jsonl",
        [
            {"id": "t1", "deleted_at": "2026-10-05T09:00:00+08:00"},
            {"id": 42, "deleted_at": "2026-10-06T00:00:00Z"},
            {"id": "t3", "deleted_at": "2026-10-07T00:00:00+00:00"},
        ],
    )
    adapter = make_adapter(folder)
    pages = list(adapter.deleted("tickets", None))
    assert [p.deleted for p in pages] == [
        [("t1", datetime(2026, 10, 5, 1, tzinfo=UTC)), ("42", datetime(2026, 10, 6, tzinfo=UTC))],
        [("t3", datetime(2026, 10, 7, tzinfo=UTC))],
    ]
    assert all(p.complete_ids is None for p in pages)
    [rest] = adapter.deleted("tickets", pages[0].cursor)
    assert rest.deleted == [("t3", datetime(2026, 10, 7, tzinfo=UTC))]
    assert list(adapter.deleted("contacts", None)) == []  # no file: nothing deleted


@pytest.mark.parametrize(
    ("line", "detail"),
    [
        ("{broken", "Expecting property name"),
        ({"id": "t1"}, "missing 'deleted_at'"),
        ({"deleted_at": "2026-10-05T09:00:00+08:00"}, "missing 'id'"),
        ({"id": "t1", "deleted_at": "2026-10-05T09:00:00"}, "no UTC offset"),
        ({"id": "t1", "deleted_at": "last week"}, "Invalid isoformat"),
    ],
)
def test_an_unreadable_deletion_line_names_file_and_line(folder: Path, line: Any, detail: str) -> None:
    write_lines(folder / "tickets.deleted.jsonl", [{"id": "t0", "deleted_at": "2026-10-05T09:00:00Z"}, line])
    with pytest.raises(ValueError, match=r"^tickets\.deleted\.jsonl line 2: ") as caught:
        list(make_adapter(folder).deleted("tickets", None))
    assert detail in str(caught.value)


def test_check(tmp_path: Path, folder: Path) -> None:
    missing = make_adapter(tmp_path / "nowhere").check()
    assert not missing.ok and "nowhere" in missing.detail

    empty = make_adapter(folder).check()
    assert not empty.ok and empty.facts == {}

    write_lines(folder / "tickets.jsonl", [ticket(1)])
    write_lines(folder / "calls.jsonl", [])
    found = make_adapter(folder).check()
    assert found.ok
    assert found.facts == {"tickets": "tickets.jsonl", "calls": "calls.jsonl"}
    assert "2 entity files" in found.detail


def test_push_is_refused_for_every_record(folder: Path) -> None:
    results = make_adapter(folder).push("Scorecards", [{"key": "a1|2026-10"}, {"value": 1}])
    assert [(r.key, r.ok, r.code) for r in results] == [
        ("a1|2026-10", False, "UNSUPPORTED"),
        ("1", False, "UNSUPPORTED"),
    ]


def test_the_kind_is_registered(folder: Path) -> None:
    kind = adapter_kinds()["jsonl"]
    assert kind.options is JsonlOptions and kind.bundled_mapping == "jsonl.toml"
    assert set(load_mapping(kind.bundled_mapping, TZ).entities) == set(MAPPINGS)
    adapter = create_adapter("jsonl", make_context(folder, page_size=7))
    assert isinstance(adapter, JsonlAdapter) and adapter.page_size == 7


# ---- through the sync engine -----------------------------------------------------------------------


def test_sync_through_the_jsonl_kind(store: Store, folder: Path) -> None:
    path = folder / "tickets.jsonl"
    write_lines(path, [ticket(1), "{oops", ticket(2, "bogus"), ticket(3), "", ticket(4, "closed")])
    write_lines(folder / "tickets.deleted.jsonl", [{"id": "t3", "deleted_at": "2026-10-09T00:00:00Z"}])
    adapter = make_adapter(folder)

    [run] = sync_source(store, "export", adapter, MAPPINGS, clock=fixed_clock(NOW))

    assert run.status == "success", run.error
    assert (run.counts.fetched, run.counts.inserted, run.counts.quarantined, run.counts.deleted) == (
        5,
        3,
        2,
        1,
    )
    assert run.counts.api_calls == 2  # one read of each file
    with store.connect() as conn:
        rows = {r.external_id: r for r in conn.execute(sa.select(tickets))}
        entries = conn.execute(sa.select(quarantine)).all()
    assert set(rows) == {"t1", "t3", "t4"}
    assert rows["t3"].deleted_at == datetime(2026, 10, 9, tzinfo=UTC)
    assert rows["t4"].status == "closed"
    unparsable = next(e for e in entries if json.loads(e.raw).get("_unparsable_line") == 2)
    assert json.loads(unparsable.raw)["_text"] == "{oops"
    assert unparsable.external_id.startswith("sha1:") and "external_id" in unparsable.reason
    bogus = next(e for e in entries if e.external_id == "t2")
    assert "status" in bogus.reason and "bogus" in bogus.reason

    # the export grows: only the new lines are read; t2 fixed leaves the quarantine
    append_lines(path, [ticket(2, "open", 30)])
    again = sync_entity(
        store, "export", adapter, MAPPINGS["tickets"], full=False, clock=fixed_clock(NOW + timedelta(hours=1))
    )
    assert (again.counts.fetched, again.counts.inserted, again.counts.deleted) == (1, 1, 0)
    with store.connect() as conn:
        left = conn.execute(sa.select(quarantine.c.external_id)).scalars().all()
    assert left == [unparsable.external_id]


def test_a_bad_deletion_line_fails_the_run_after_the_records_are_in(store: Store, folder: Path) -> None:
    write_lines(folder / "tickets.jsonl", [ticket(1)])
    write_lines(folder / "tickets.deleted.jsonl", [{"id": "t1"}])
    run = sync_entity(
        store, "export", make_adapter(folder), MAPPINGS["tickets"], full=False, clock=fixed_clock(NOW)
    )
    assert run.status == "failed"
    assert "tickets.deleted.jsonl line 1" in (run.error or "")
    assert run.counts.inserted == 1
