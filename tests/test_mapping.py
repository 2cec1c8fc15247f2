"""The mapping engine: paths, transforms, conditions, load-time validation and record errors."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from connector.mapping import EntityMapping, MappingError, RecordError, load_mapping

TZ = ZoneInfo("Asia/Shanghai")
UPDATED = "2026-10-08T09:30:00+08:00"
UPDATED_UTC = datetime(2026, 10, 8, 1, 30, tzinfo=UTC)


def write(tmp_path: Path, text: str, name: str = "mapping.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def entity(
    tmp_path: Path, columns: str, *, name: str = "tickets", extra: str = "", maps: str = ""
) -> EntityMapping:
    """A one-entity mapping with the two required columns plus ``columns`` (TOML lines)."""
    text = f"""
[entities.{name}]
object = "Obj"
{extra}
[entities.{name}.columns]
external_id = "id"
updated_at = {{ path = "modified", transform = "iso_datetime" }}
{columns}
{maps}
"""
    return load_mapping(write(tmp_path, text), TZ).entities[name]


def record(**fields: Any) -> dict[str, Any]:
    return {"id": "r1", "modified": UPDATED, **fields}


def column_value(mapping: EntityMapping, column: str, **fields: Any) -> Any:
    return mapping.apply(record(**fields))[column]


# ---- transforms: good values ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entity_name", "column_spec", "raw", "expected"),
    [
        (
            "tickets",
            '{ path = "v", transform = "iso_datetime" }',
            "2026-03-01T08:00:00+08:00",
            datetime(2026, 3, 1, 0, 0, tzinfo=UTC),
        ),
        (
            "tickets",
            '{ path = "v", transform = "iso_datetime" }',
            "2026-03-01T08:00:00Z",
            datetime(2026, 3, 1, 8, 0, tzinfo=UTC),
        ),
        (
            "tickets",
            '{ path = "v", transform = "iso_datetime" }',
            "2026-03-01T08:00:00.250-05:00",
            datetime(2026, 3, 1, 13, 0, 0, 250000, tzinfo=UTC),
        ),
        (
            "tickets",
            '{ path = "v", transform = "epoch_ms" }',
            1767225600000,
            datetime(2026, 1, 1, tzinfo=UTC),
        ),
        (
            "tickets",
            '{ path = "v", transform = "epoch_ms" }',
            "1767225600500",
            datetime(2026, 1, 1, 0, 0, 0, 500000, tzinfo=UTC),
        ),
        # midnight in Shanghai is 16:00 UTC the day before
        (
            "tickets",
            '{ path = "v", transform = "local_date" }',
            "2026-10-01",
            datetime(2026, 9, 30, 16, tzinfo=UTC),
        ),
        # a date-only due date means "by the end of that day": the next local midnight
        (
            "tickets",
            '{ path = "v", transform = ["local_date", "end_of_day"] }',
            "2026-10-01",
            datetime(2026, 10, 1, 16, tzinfo=UTC),
        ),
        (
            "tickets",
            '{ path = "v", transform = ["iso_datetime", "end_of_day"] }',
            "2026-10-01T00:30:00Z",
            datetime(2026, 10, 1, 16, tzinfo=UTC),
        ),
        (
            "tickets",
            '{ path = "v", transform = ["epoch_ms", "end_of_day"] }',
            1790784000000,  # 2026-09-30T16:00Z
            datetime(2026, 10, 1, 16, tzinfo=UTC),
        ),
    ],
)
def test_time_transforms(
    tmp_path: Path, entity_name: str, column_spec: str, raw: Any, expected: datetime
) -> None:
    mapping = entity(tmp_path, f"created_at = {column_spec}", name=entity_name)
    value = column_value(mapping, "created_at", v=raw)
    assert value == expected
    assert value.tzinfo is not None and value.utcoffset().total_seconds() == 0


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("03:25", 205), ("01:02:03", 3723), (" 00:59 ", 59), (95, 95), (95.7, 95), ("95", 95), (0, 0)],
)
def test_duration(tmp_path: Path, raw: Any, expected: int) -> None:
    mapping = entity(tmp_path, 'duration_s = { path = "v", transform = "duration" }', name="calls")
    assert column_value(mapping, "duration_s", v=raw) == expected


@pytest.mark.parametrize(
    ("transform", "raw", "expected"),
    [
        ("strip", "  王医生 \t", "王医生"),
        ("lower", "HIGH", "high"),
        ("str", 42, "42"),
        ('["strip", "lower"]', "  Urgent ", "urgent"),
        ("first", ["a", "b"], "a"),
        ("first", "scalar", "scalar"),
    ],
)
def test_text_transforms(tmp_path: Path, transform: str, raw: Any, expected: str) -> None:
    spec = transform if transform.startswith("[") else f'"{transform}"'
    mapping = entity(tmp_path, f'priority = {{ path = "v", transform = {spec} }}')
    assert column_value(mapping, "priority", v=raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"), [("4", 4), (4, 4), (4.0, 4), (" 5 ", 5), ("-2", -2), ("3.0", 3)]
)
def test_int(tmp_path: Path, raw: Any, expected: int) -> None:
    mapping = entity(tmp_path, 'satisfaction = { path = "v", transform = "int" }')
    assert column_value(mapping, "satisfaction", v=raw) == expected


def test_int_keeps_large_integers_exact(tmp_path: Path) -> None:
    mapping = entity(tmp_path, 'owner_id = { path = "v", transform = ["int", "str"] }')
    big = 2**60 + 1  # not representable as a float
    assert column_value(mapping, "owner_id", v=big) == str(big)
    assert column_value(mapping, "owner_id", v=f"00{big}") == str(big)


def test_numbers_beyond_the_store_columns_range(tmp_path: Path) -> None:
    ints = entity(tmp_path, 'satisfaction = { path = "v", transform = "int" }')
    assert column_value(ints, "satisfaction", v=2**31 - 1) == 2**31 - 1
    with pytest.raises(RecordError, match="integer out of range"):
        ints.apply(record(v=-(2**31) - 1))
    floats = entity(tmp_path, 'score = "v"', name="assessments")
    with pytest.raises(RecordError, match="number out of range"):
        floats.apply(record(v=10**400))


@pytest.mark.parametrize(("raw", "expected"), [("87.5", 87.5), (90, 90.0), ("100", 100.0)])
def test_float(tmp_path: Path, raw: Any, expected: float) -> None:
    mapping = entity(tmp_path, 'score = { path = "v", transform = "float" }', name="assessments")
    value = column_value(mapping, "score", v=raw)
    assert value == expected and isinstance(value, float)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (True, True),
        (False, False),
        ("true", True),
        ("Yes", True),
        ("是", True),
        ("1", True),
        (1, True),
        ("false", False),
        ("no", False),
        ("否", False),
        (0, False),
        ("0", False),
    ],
)
def test_bool(tmp_path: Path, raw: Any, expected: bool) -> None:
    mapping = entity(tmp_path, 'active = { path = "v", transform = "bool" }', name="agents")
    assert column_value(mapping, "active", v=raw) is expected


# ---- transforms: bad values become RecordError naming column, value and reason -----------------------


@pytest.mark.parametrize(
    ("entity_name", "column", "spec", "raw", "reason"),
    [
        ("tickets", "created_at", '"iso_datetime"', "yesterday", "isoformat"),
        ("tickets", "created_at", '"iso_datetime"', "2026-03-01T08:00:00", "no UTC offset"),
        ("tickets", "created_at", '"iso_datetime"', 1767225600, "ISO-8601"),
        ("tickets", "created_at", '"epoch_ms"', "soon", "invalid literal"),
        ("tickets", "created_at", '"epoch_ms"', True, "epoch milliseconds"),
        ("tickets", "created_at", '"epoch_ms"', 10**20, "out of range"),
        ("tickets", "created_at", '"epoch_ms"', {"ms": 1}, "epoch milliseconds"),
        ("tickets", "created_at", '"local_date"', "2026-13-01", "month"),
        ("tickets", "created_at", '"local_date"', 20261001, "YYYY-MM-DD"),
        ("tickets", "created_at", '"end_of_day"', "2026-10-01", "needs a date-time"),
        ("calls", "duration_s", '"duration"', "1:2:3:4", "mm:ss"),
        ("calls", "duration_s", '"duration"', "three minutes", "mm:ss"),
        ("calls", "duration_s", '"duration"', True, "duration"),
        ("calls", "duration_s", '"duration"', "1.5", "mm:ss"),
        ("tickets", "satisfaction", '"int"', "4.5", "whole number"),
        ("tickets", "satisfaction", '"int"', "four", "could not convert"),
        ("tickets", "satisfaction", '"int"', True, "integer"),
        ("tickets", "satisfaction", '"int"', [4], "float()"),
        ("assessments", "score", '"float"', "ninety", "could not convert"),
        ("agents", "active", '"bool"', "maybe", "boolean"),
        ("agents", "active", '"bool"', {"on": 1}, "boolean"),
        ("tickets", "subject", '"first"', [], None),  # an empty list counts as missing: no error
    ],
)
def test_bad_values_raise_record_error(
    tmp_path: Path, entity_name: str, column: str, spec: str, raw: Any, reason: str | None
) -> None:
    mapping = entity(tmp_path, f'{column} = {{ path = "v", transform = {spec} }}', name=entity_name)
    if reason is None:
        assert column_value(mapping, column, v=raw) is None
        return
    with pytest.raises(RecordError) as caught:
        mapping.apply(record(v=raw))
    error = caught.value
    assert error.column == column
    assert error.value == raw
    assert reason in error.reason
    assert column in str(error) and reason in str(error)


def test_record_error_message_shows_value_and_truncates_long_values() -> None:
    error = RecordError("subject", "x" * 500, "too long")
    text = str(error)
    assert text.startswith("subject: too long (value ")
    assert '"xxx' in text and text.endswith("...)")
    assert len(text) < 200
    assert error.value == "x" * 500  # the full value stays available to the quarantine


# ---- value maps ----------------------------------------------------------------------------------

MAPS = """
[value_maps.with_default]
default = "open"
values = { "New" = "open", "已关闭" = "closed", "1" = "pending", "true" = "resolved" }
[value_maps.strict]
values = { "New" = "open", "已关闭" = "closed" }
"""


@pytest.mark.parametrize(
    ("map_name", "raw", "expected"),
    [
        ("with_default", "New", "open"),
        ("with_default", "已关闭", "closed"),
        ("with_default", " 已关闭 ", "closed"),  # surrounding blanks are forgiven
        ("with_default", 1, "pending"),  # non-string values are looked up by their JSON text
        ("with_default", True, "resolved"),
        ("with_default", "Escalated", "open"),  # unmapped → default
        ("strict", "New", "open"),
        ("strict", "已关闭", "closed"),
    ],
)
def test_value_map(tmp_path: Path, map_name: str, raw: Any, expected: str) -> None:
    mapping = entity(
        tmp_path, f'status = {{ path = "v", transform = "value_map", map = "{map_name}" }}', maps=MAPS
    )
    assert column_value(mapping, "status", v=raw) == expected


def test_value_map_without_default_rejects_unmapped_values(tmp_path: Path) -> None:
    mapping = entity(tmp_path, 'status = { path = "v", transform = "value_map", map = "strict" }', maps=MAPS)
    with pytest.raises(RecordError) as caught:
        mapping.apply(record(v="Escalated"))
    assert (caught.value.column, caught.value.value) == ("status", "Escalated")
    assert "no default" in caught.value.reason


def test_value_map_in_a_chain(tmp_path: Path) -> None:
    mapping = entity(
        tmp_path,
        'status = { path = "v", transform = ["first", "strip", "value_map"], map = "strict" }',
        maps=MAPS,
    )
    assert column_value(mapping, "status", v=[" New ", "x"]) == "open"


def test_value_map_can_produce_non_text_values(tmp_path: Path) -> None:
    maps = '[value_maps.stars]\nvalues = { "非常满意" = 5, "满意" = 4, "不满意" = 1 }'
    mapping = entity(
        tmp_path, 'satisfaction = { path = "v", transform = "value_map", map = "stars" }', maps=maps
    )
    assert column_value(mapping, "satisfaction", v="满意") == 4


# ---- paths ---------------------------------------------------------------------------------------

LINKS = [
    {"describe_api_name": "AccountObj", "id": "acc-1"},
    {"describe_api_name": "ContactObj", "id": "con-7", "n": 2, "name": "a.b"},
]


@pytest.mark.parametrize(
    ("path", "raw", "expected"),
    [
        ("owner.name", {"owner": {"name": "李娜", "id": "u1"}}, "李娜"),
        ("owner.0", {"owner": ["u9", "u8"]}, "u9"),
        ("owner.1", {"owner": ["u9", "u8"]}, "u8"),
        ("owner.2", {"owner": ["u9", "u8"]}, None),  # index past the end → missing
        ("owner.0.id", {"owner": [{"id": "u3"}]}, "u3"),
        ("owner.0", {"owner": {"id": "u3"}}, None),  # an index into a dict → missing
        ("owner.id", {"owner": ["u3"]}, None),  # a key into a list → missing
        ("links[describe_api_name=ContactObj].id", {"links": LINKS}, "con-7"),
        ("links[describe_api_name=AccountObj].id", {"links": LINKS}, "acc-1"),
        ("links[describe_api_name=LeadObj].id", {"links": LINKS}, None),  # no element matches
        ("links[n=2].id", {"links": LINKS}, "con-7"),  # the field is compared as text
        ("links[name=a.b].id", {"links": LINKS}, "con-7"),  # a dot inside the selector value
        ("links[describe_api_name=ContactObj].id", {"links": {"id": "x"}}, None),  # not a list
        ("deep.links[describe_api_name=ContactObj].id", {"deep": {"links": LINKS}}, "con-7"),
        ("$se_module", {"$se_module": "Cases"}, "Cases"),
        ("missing.path", {}, None),
    ],
)
def test_paths(tmp_path: Path, path: str, raw: dict[str, Any], expected: Any) -> None:
    mapping = entity(tmp_path, f'contact_id = "{path}"')
    assert column_value(mapping, "contact_id", **raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"a": "first", "b": "second"}, "first"),
        ({"a": "", "b": "second"}, "second"),  # empty string counts as empty
        ({"a": None, "b": "second"}, "second"),
        ({"a": [], "b": "second"}, "second"),
        ({"b": "second", "c": "third"}, "second"),
        ({"c": "third"}, "third"),
        ({}, None),
    ],
)
def test_fallback_paths_take_the_first_non_empty(tmp_path: Path, raw: dict[str, Any], expected: Any) -> None:
    mapping = entity(tmp_path, 'owner_id = { path = ["a", "b", "c.0"] }')
    raw = {key: ([value] if key == "c" else value) for key, value in raw.items()}
    assert column_value(mapping, "owner_id", **raw) == expected


def test_zero_and_false_are_values_not_empty(tmp_path: Path) -> None:
    mapping = entity(tmp_path, 'satisfaction = { path = ["a", "b"], transform = "int" }')
    assert column_value(mapping, "satisfaction", a=0, b=5) == 0


# ---- const, when, required ------------------------------------------------------------------------


def test_const(tmp_path: Path) -> None:
    mapping = entity(tmp_path, 'kind = { const = "revisit" }', name="follow_ups")
    assert column_value(mapping, "kind") == "revisit"
    assert column_value(mapping, "kind", kind="callback") == "revisit"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"$se_module": "Cases", "What_Id": {"id": "case-1"}}, "case-1"),
        ({"$se_module": "Deals", "What_Id": {"id": "deal-1"}}, None),
        ({"What_Id": {"id": "case-1"}}, None),  # condition path missing → condition false
        ({"$se_module": "Cases"}, None),
    ],
)
def test_when(tmp_path: Path, raw: dict[str, Any], expected: Any) -> None:
    mapping = entity(
        tmp_path,
        'ticket_id = { path = "What_Id.id", when = { path = "$se_module", in = ["Cases"] } }',
        name="calls",
    )
    assert column_value(mapping, "ticket_id", **raw) == expected


def test_when_false_skips_even_a_required_column(tmp_path: Path) -> None:
    mapping = entity(
        tmp_path,
        'ticket_id = { path = "t", required = true, when = { path = "m", in = ["Cases"] } }',
        name="calls",
    )
    assert column_value(mapping, "ticket_id", m="Deals") is None
    with pytest.raises(RecordError) as caught:
        mapping.apply(record(m="Cases"))
    assert caught.value.column == "ticket_id"


def test_required_column_missing(tmp_path: Path) -> None:
    mapping = entity(tmp_path, 'owner_id = { path = ["owner.0", "created_by.0"], required = true }')
    assert column_value(mapping, "owner_id", created_by=["u2"]) == "u2"
    with pytest.raises(RecordError) as caught:
        mapping.apply(record(owner=[]))
    error = caught.value
    assert error.column == "owner_id" and error.value is None
    assert "required" in error.reason and "owner.0 | created_by.0" in error.reason


def test_optional_column_missing_is_none(tmp_path: Path) -> None:
    mapping = entity(tmp_path, 'owner_id = { path = "owner", required = false }')
    assert column_value(mapping, "owner_id") is None


@pytest.mark.parametrize(("raw", "column"), [({"id": None}, "external_id"), ({"modified": ""}, "updated_at")])
def test_external_id_and_updated_at_are_required(tmp_path: Path, raw: dict[str, Any], column: str) -> None:
    mapping = entity(tmp_path, "")
    with pytest.raises(RecordError) as caught:
        mapping.apply(record(**raw))
    assert caught.value.column == column


def test_numeric_external_id_becomes_text(tmp_path: Path) -> None:
    mapping = entity(tmp_path, "")
    row = mapping.apply({"id": 4250001, "modified": UPDATED})
    assert row["external_id"] == "4250001"
    assert row["updated_at"] == UPDATED_UTC


def test_apply_returns_every_mapped_column_and_deleted_at(tmp_path: Path) -> None:
    mapping = entity(tmp_path, 'subject = "s"\nowner_id = "o"')
    assert mapping.apply(record(s="Refund", o="u1")) == {
        "external_id": "r1",
        "updated_at": UPDATED_UTC,
        "subject": "Refund",
        "owner_id": "u1",
        "deleted_at": None,
    }


# ---- values must fit the store column -------------------------------------------------------------


@pytest.mark.parametrize(
    ("column", "raw", "reason"),
    [
        ("subject", {"nested": "object"}, "expected text"),
        ("subject", ["a", "b"], "expected text"),
        ("subject", True, "boolean"),
        ("subject", "bad\x00byte", "NUL"),
        ("priority", "x" * 33, "32 characters"),
        ("satisfaction", "5", "expected an integer"),  # no int transform
        ("satisfaction", 4.5, "expected an integer"),
        ("satisfaction", 2**31, "out of range"),  # PostgreSQL's INTEGER is 32-bit
    ],
)
def test_values_that_do_not_fit_the_store_column_are_record_errors(
    tmp_path: Path, column: str, raw: Any, reason: str
) -> None:
    mapping = entity(tmp_path, f'{column} = "v"')
    with pytest.raises(RecordError) as caught:
        mapping.apply(record(v=raw))
    assert caught.value.column == column and reason in caught.value.reason


def test_half_an_emoji_becomes_a_replacement_character(tmp_path: Path) -> None:
    cut = json.loads('"王\\ud83d"')  # a CRM that cut a surrogate pair in two
    mapping = entity(tmp_path, 'subject = "v"\nsatisfaction = { path = "n", transform = "int" }')
    assert column_value(mapping, "subject", v=cut) == "王\ufffd"
    with pytest.raises(RecordError) as caught:
        mapping.apply(record(n=cut))
    str(caught.value).encode("utf-8")  # the quarantine reason can be stored
    assert caught.value.value == cut


def test_numbers_in_text_columns_become_text(tmp_path: Path) -> None:
    mapping = entity(tmp_path, 'owner_id = "o"\npriority = "p"')
    row = mapping.apply(record(o=1000123, p=2.5))
    assert (row["owner_id"], row["priority"]) == ("1000123", "2.5")


def test_const_of_the_wrong_type_is_a_record_error(tmp_path: Path) -> None:
    mapping = entity(tmp_path, 'active = { const = "yes" }', name="agents")
    with pytest.raises(RecordError) as caught:
        mapping.apply(record())
    assert caught.value.column == "active"


# ---- deleted_if ----------------------------------------------------------------------------------

DELETED_IF = (
    'deleted_if = [{ path = "life_status", in = ["invalid", "作废"] }, '
    '{ path = ["is_deleted", "gone"], in = [true] }]'
)


@pytest.mark.parametrize(
    ("raw", "deleted"),
    [
        ({"life_status": "invalid"}, True),
        ({"life_status": "作废"}, True),
        ({"life_status": "normal"}, False),
        ({"is_deleted": True}, True),
        ({"is_deleted": False}, False),
        ({"gone": True}, True),  # fallback path of the second condition
        ({"is_deleted": False, "gone": True}, False),  # the first non-empty path decides
        ({}, False),
    ],
)
def test_deleted_if(tmp_path: Path, raw: dict[str, Any], deleted: bool) -> None:
    mapping = entity(tmp_path, "", extra=DELETED_IF)
    assert column_value(mapping, "deleted_at", **raw) == (UPDATED_UTC if deleted else None)


# ---- fetch fields and options ---------------------------------------------------------------------


def test_fetch_fields_and_options(tmp_path: Path) -> None:
    mapping = entity(
        tmp_path,
        'contact_id = "links[describe_api_name=ContactObj].id"\n'
        'owner_id = { path = ["owner.0", "created_by.0"] }\n'
        'subject = { path = "Subject", when = { path = "$se_module", in = ["Cases"] } }\n'
        'priority = { const = "x" }\n',
        extra='fields = ["Case_Number"]\n'
        + DELETED_IF
        + "\n[entities.tickets.options]\ncustom = true\nlimit = 50",
    )
    assert mapping.fetch_fields == sorted(
        [
            "id",
            "modified",
            "links",
            "owner",
            "created_by",
            "Subject",
            "$se_module",
            "Case_Number",
            "life_status",
            "is_deleted",
            "gone",
        ]
    )
    assert mapping.options == {"custom": True, "limit": 50}
    assert (mapping.entity, mapping.object) == ("tickets", "Obj")


# ---- bundled mappings and `extends` ---------------------------------------------------------------


@pytest.mark.parametrize("name", ["jsonl", "jsonl.toml"])
def test_bundled_mapping_by_name(name: str) -> None:
    mappings = load_mapping(name, TZ).entities
    assert set(mappings) == {"agents", "contacts", "tickets", "follow_ups", "calls", "surveys"}
    assert mappings["tickets"].object == "tickets"


def test_a_file_path_wins_over_a_bundled_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(
        tmp_path,
        '[entities.agents]\nobject = "People"\n[entities.agents.columns]\nexternal_id = "id"\n'
        'updated_at = { path = "m", transform = "epoch_ms" }\n',
        name="jsonl.toml",
    )
    monkeypatch.chdir(tmp_path)
    assert set(load_mapping("jsonl.toml", TZ).entities) == {"agents"}


def test_extends_deep_merges_over_a_bundled_mapping(tmp_path: Path) -> None:
    override = write(
        tmp_path,
        """
extends = "jsonl"
[entities.tickets.columns]
status = { path = "state" }           # only the path changes; transform and map stay

[value_maps.status]
default = "pending"                   # added to the bundled map; its values stay
""",
    )
    bundled = load_mapping("jsonl", TZ).entities["tickets"]
    merged_file = load_mapping(override, TZ)
    merged = merged_file.entities["tickets"]
    ticket = {"id": "t1", "updated_at": UPDATED, "owner_id": "u1", "created_at": UPDATED, "status": "open"}

    assert merged.apply({**ticket, "status": "closed", "state": "resolved"})["status"] == "resolved"
    assert merged.apply({**ticket, "state": "escalated"})["status"] == "pending"  # the new default
    assert merged.apply({**ticket, "state": "open"})["owner_id"] == "u1"  # other columns untouched
    assert "state" in merged.fetch_fields and "status" not in merged.fetch_fields
    assert set(merged_file.entities) == set(load_mapping("jsonl", TZ).entities)  # other entities kept
    assert merged_file.file == str(override)
    with pytest.raises(RecordError):  # the bundled mapping itself is not changed
        bundled.apply({**ticket, "status": "escalated"})


def test_extends_unknown_bundled_mapping(tmp_path: Path) -> None:
    path = write(tmp_path, 'extends = "nosuchcrm"\n')
    with pytest.raises(MappingError) as caught:
        load_mapping(path, TZ)
    assert (caught.value.file, caught.value.key) == (str(path), "extends")
    assert "nosuchcrm" in str(caught.value)


# ---- load errors name the file and the key ---------------------------------------------------------

HEAD = '[entities.tickets]\nobject = "Cases"\n[entities.tickets.columns]\nexternal_id = "id"\n'
UPD = 'updated_at = { path = "m", transform = "iso_datetime" }\n'


@pytest.mark.parametrize(
    ("text", "key", "fragment"),
    [
        (
            HEAD + UPD + 'status = { path = "s", transform = "titlecase" }',
            "entities.tickets.columns.status.transform",
            "unknown transform 'titlecase'",
        ),
        (
            HEAD + UPD + 'status = { path = "s", transform = [["int"]] }',
            "entities.tickets.columns.status.transform",
            "unknown transform",
        ),
        (HEAD + UPD + 'mood = "m"', "entities.tickets.columns.mood", "unknown canonical column"),
        (HEAD + UPD + 'raw = "r"', "entities.tickets.columns.raw", "unknown canonical column"),
        (HEAD + UPD + 'deleted_at = "d"', "entities.tickets.columns.deleted_at", "unknown canonical column"),
        (HEAD.replace("tickets", "widgets") + UPD, "entities.widgets", "unknown entity"),
        (HEAD + "status = = 1\n" + UPD, "(syntax)", "line 5"),
        (
            HEAD + UPD + 'status = { path = "s", transform = "value_map", map = "nope" }',
            "entities.tickets.columns.status.map",
            "'nope' is not defined",
        ),
        (
            HEAD + UPD + 'status = { path = "s", transform = "value_map" }',
            "entities.tickets.columns.status.map",
            "not defined",
        ),
        (
            HEAD + UPD + 'status = { path = "s", map = "m" }\n[value_maps.m]\nvalues = {}',
            "entities.tickets.columns.status.map",
            "needs transform",
        ),
        (HEAD, "entities.tickets.columns.updated_at", "is required"),
        (
            HEAD.replace('external_id = "id"\n', "") + UPD,
            "entities.tickets.columns.external_id",
            "is required",
        ),
        (
            HEAD + 'updated_at = { path = "m", transform = "iso_datetime", required = false }',
            "entities.tickets.columns.updated_at.required",
            "always required",
        ),
        (
            HEAD + UPD + 'owner_id = { path = "o", required = "yes" }',
            "entities.tickets.columns.owner_id.required",
            "true or false",
        ),
        (HEAD + 'updated_at = "m"', "entities.tickets.columns.updated_at.transform", "time column"),
        (
            HEAD + UPD + 'created_at = { path = "c", transform = ["iso_datetime", "str"] }',
            "entities.tickets.columns.created_at.transform",
            "time column",
        ),
        (
            HEAD + UPD + 'owner_id = { path = "o", transfrom = "int" }',
            "entities.tickets.columns.owner_id.transfrom",
            "unknown key",
        ),
        (HEAD + UPD + 'owner_id = { const = "x", path = "o" }', "entities.tickets.columns.owner_id", "const"),
        (HEAD + UPD + "owner_id = {}", "entities.tickets.columns.owner_id", "needs `path` or `const`"),
        (HEAD + UPD + "owner_id = 7", "entities.tickets.columns.owner_id", "path string or a table"),
        (HEAD + UPD + 'owner_id = "a..b"', "entities.tickets.columns.owner_id.path", "empty segment"),
        (HEAD + UPD + 'owner_id = "a[b].c"', "entities.tickets.columns.owner_id.path", "malformed selector"),
        (HEAD + UPD + "owner_id = { path = [] }", "entities.tickets.columns.owner_id.path", "non-empty"),
        (
            HEAD + UPD + 'ticket_id = { path = "t", when = { path = "m" } }',
            "entities.tickets.columns.ticket_id",
            "unknown canonical column",
        ),
        (
            HEAD + UPD + 'subject = { path = "t", when = { path = "m" } }',
            "entities.tickets.columns.subject.when",
            "a condition is",
        ),
        (
            HEAD.replace('object = "Cases"\n', 'object = "Cases"\ncolums = 1\n') + UPD,
            "entities.tickets.colums",
            "unknown key",
        ),
        (HEAD.replace('object = "Cases"\n', "") + UPD, "entities.tickets.object", "required"),
        (
            HEAD.replace('object = "Cases"\n', 'object = "Cases"\nfields = "Case_Number"\n') + UPD,
            "entities.tickets.fields",
            "list of field names",
        ),
        (
            HEAD.replace('object = "Cases"\n', 'object = "Cases"\ndeleted_if = [{ path = "x" }]\n') + UPD,
            "entities.tickets.deleted_if[0]",
            "a condition is",
        ),
        (
            HEAD.replace('object = "Cases"\n', 'object = "Cases"\ndeleted_if = { path = "x", in = [1] }\n')
            + UPD,
            "entities.tickets.deleted_if",
            "list",
        ),
        ("entitys = 1\n" + HEAD + UPD, "entitys", "unknown top-level key"),
        ('[meta]\ncrm = "x"\n', "entities", "at least one"),
        (HEAD + UPD + '[value_maps.m]\nvalues = {}\ndefualt = "x"', "value_maps.m.defualt", "unknown key"),
        (HEAD + UPD + "[value_maps]\nm = 3", "value_maps.m", "values"),
        ("value_maps = 3\n" + HEAD + UPD, "value_maps", "must be a table"),
    ],
)
def test_load_errors_name_file_and_key(tmp_path: Path, text: str, key: str, fragment: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(MappingError) as caught:
        load_mapping(path, TZ)
    error = caught.value
    assert error.file == str(path)
    assert error.key == key
    assert fragment in error.problem
    assert str(error).startswith(f"{path}: {key}: ")


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"
    with pytest.raises(MappingError) as caught:
        load_mapping(path, TZ)
    assert caught.value.file == str(path) and "not found" in str(caught.value)


def test_extends_can_drop_a_column_with_false(tmp_path: Path) -> None:
    """An org without a custom field removes it from the bundled mapping (and from `fields`)."""
    override = tmp_path / "no-satisfaction.toml"
    override.write_text(
        'extends = "jsonl"\n[entities.tickets.columns]\nsatisfaction = false\n', encoding="utf-8"
    )
    tickets = load_mapping(override, ZoneInfo("Asia/Shanghai")).entities["tickets"]
    assert "satisfaction" not in tickets.maps_column and "satisfaction" not in tickets.fetch_fields
    assert "status" in tickets.maps_column


def test_required_column_cannot_be_dropped(tmp_path: Path) -> None:
    override = tmp_path / "bad.toml"
    override.write_text(
        'extends = "jsonl"\n[entities.tickets.columns]\nupdated_at = false\n', encoding="utf-8"
    )
    with pytest.raises(MappingError) as error:
        load_mapping(override, ZoneInfo("Asia/Shanghai"))
    assert error.value.key == "entities.tickets.columns.updated_at"
