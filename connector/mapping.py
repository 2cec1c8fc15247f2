"""Mapping files: how one CRM's objects and fields become canonical rows.

Mappings are data, not code, so a clinic with custom fields edits a TOML file rather than Python.
The language is deliberately tiny — paths, a closed set of named pure transforms, value maps,
constants and conditions — so every mistake is caught when the file is loaded (naming the file and
the key), and a record that does not fit raises :class:`RecordError` naming column, value and reason,
which the sync engine turns into a quarantine entry.

Path syntax: dotted keys with list indexes (``owner.0``) and list selection by key
(``related_object_data[describe_api_name=ContactObj].id``). A list of paths means "first non-empty".
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from importlib import resources
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Boolean, Float, Integer, String
from sqlalchemy.types import TypeEngine

from connector.store.schema import ENTITY_TABLES
from connector.store.types import UTCDateTime

#: Columns every synced table has that a mapping must not set (the engine fills them).
ENGINE_COLUMNS = frozenset({"source", "synced_at", "raw", "deleted_at"})
REQUIRED_COLUMNS = ("external_id", "updated_at")


class MappingError(ValueError):
    """A mapping file that cannot be used; raised at load time."""

    def __init__(self, file: str, key: str, problem: str) -> None:
        super().__init__(f"{file}: {key}: {problem}")
        self.file, self.key, self.problem = file, key, problem


#: Half of a UTF-16 surrogate pair: what is left when a CRM cuts an emoji in two. Python holds it, but
#: it cannot be encoded as UTF-8, so neither SQLite nor PostgreSQL will take text containing it.
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _storable_text(text: str) -> str:
    """``text`` with lone surrogates replaced by U+FFFD, so that the store can encode it."""
    return text if text.isascii() else _LONE_SURROGATE.sub("\ufffd", text)


class RecordError(ValueError):
    """A raw record that does not fit its mapping; the sync engine quarantines it."""

    def __init__(self, column: str, value: Any, reason: str) -> None:
        shown = json.dumps(value, ensure_ascii=False, default=str)
        if len(shown) > 120:
            shown = shown[:117] + "..."
        super().__init__(
            _storable_text(f"{column}: {reason} (value {shown})")
        )  # it becomes a quarantine reason
        self.column, self.value, self.reason = column, value, reason


# ---- paths ---------------------------------------------------------------------------------------

_SEGMENT_DOT = re.compile(r"\.(?![^\[]*\])")  # a dot outside [field=value], which may hold dots itself
_SELECTOR = re.compile(r"^(?P<key>[^\[\]]*)\[(?P<field>[^=\]]+)=(?P<value>[^\]]*)\]$")
_MISSING = object()


@dataclass(frozen=True)
class _Step:
    key: str | int
    select: tuple[str, str] | None = None  # pick the list element whose field equals value


def _parse_path(text: str) -> tuple[_Step, ...]:
    steps: list[_Step] = []
    for part in _SEGMENT_DOT.split(text):
        if not part:
            raise ValueError(f"empty segment in path {text!r}")
        selector = _SELECTOR.match(part)
        if selector:
            if selector["key"]:
                steps.append(_Step(selector["key"]))
            steps.append(_Step("", (selector["field"], selector["value"])))
        elif "[" in part or "]" in part:
            raise ValueError(f"malformed selector {part!r}; expected key[field=value]")
        elif part.isdigit():
            steps.append(_Step(int(part)))
        else:
            steps.append(_Step(part))
    return tuple(steps)


def _resolve(record: Any, steps: tuple[_Step, ...]) -> Any:
    current = record
    for step in steps:
        if step.select is not None:
            if not isinstance(current, list):
                return _MISSING
            wanted_field, wanted = step.select
            current = next(
                (
                    item
                    for item in current
                    if isinstance(item, dict) and str(item.get(wanted_field)) == wanted
                ),
                _MISSING,
            )
        elif isinstance(step.key, int):
            if not isinstance(current, list) or step.key >= len(current):
                return _MISSING
            current = current[step.key]
        else:
            if not isinstance(current, dict) or step.key not in current:
                return _MISSING
            current = current[step.key]
        if current is _MISSING:
            return _MISSING
    return current


def _empty(value: Any) -> bool:
    return value is _MISSING or value is None or value == "" or value == []


# ---- transforms ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _TransformContext:
    tz: ZoneInfo
    value_map: Mapping[str, Any] | None = None
    map_default: Any = _MISSING


def _iso_datetime(value: Any, ctx: _TransformContext) -> datetime:
    if not isinstance(value, str):
        raise ValueError("expected an ISO-8601 date-time string")
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        raise ValueError("ISO-8601 date-time has no UTC offset")
    return parsed.astimezone(UTC)


def _epoch_ms(value: Any, ctx: _TransformContext) -> datetime:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError("expected epoch milliseconds")
    try:
        return datetime.fromtimestamp(int(value) / 1000, tz=UTC)
    except (OverflowError, OSError):  # the platform's time_t cannot hold it: a garbage value, not a crash
        raise ValueError("epoch milliseconds out of range") from None


def _local_date(value: Any, ctx: _TransformContext) -> datetime:
    if not isinstance(value, str):
        raise ValueError("expected a YYYY-MM-DD date")
    day = date.fromisoformat(value)
    return datetime.combine(day, time(), tzinfo=ctx.tz).astimezone(UTC)


def _end_of_day(value: Any, ctx: _TransformContext) -> datetime:
    """Date-only due dates mean "by the end of that day" locally: the next local midnight."""
    if not isinstance(value, datetime):
        raise ValueError("end_of_day needs a date-time (use after local_date or epoch_ms)")
    local_day = value.astimezone(ctx.tz).date()
    return datetime.combine(local_day + timedelta(days=1), time(), tzinfo=ctx.tz).astimezone(UTC)


def _duration(value: Any, ctx: _TransformContext) -> int:
    if isinstance(value, bool):
        raise ValueError("expected a duration")
    if isinstance(value, int | float):
        return int(value)
    if isinstance(value, str):
        parts = value.strip().split(":")
        if 1 <= len(parts) <= 3 and all(p.strip().isdigit() for p in parts):
            seconds = 0
            for part in parts:
                seconds = seconds * 60 + int(part)
            return seconds
    raise ValueError("expected seconds or mm:ss / hh:mm:ss")


def _value_map(value: Any, ctx: _TransformContext) -> Any:
    assert ctx.value_map is not None
    key = value if isinstance(value, str) else json.dumps(value)
    if key in ctx.value_map:
        return ctx.value_map[key]
    if isinstance(key, str) and key.strip() in ctx.value_map:
        return ctx.value_map[key.strip()]
    if ctx.map_default is not _MISSING:
        return ctx.map_default
    raise ValueError("value not in the value map and the map has no default")


def _first(value: Any, ctx: _TransformContext) -> Any:
    if isinstance(value, list):
        if not value:
            raise ValueError("empty list")
        return value[0]
    return value


def _to_bool(value: Any, ctx: _TransformContext) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value != 0
    if isinstance(value, str) and value.strip().lower() in {"true", "1", "yes", "y", "是"}:
        return True
    if isinstance(value, str) and value.strip().lower() in {"false", "0", "no", "n", "否"}:
        return False
    raise ValueError("expected a boolean")


def _to_int(value: Any, ctx: _TransformContext) -> int:
    if isinstance(value, bool):
        raise ValueError("expected an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("+-").isdigit():
        return int(value)  # exact: a float round trip would corrupt integers above 2**53
    number = float(value)
    if not number.is_integer():
        raise ValueError("expected a whole number")
    return int(number)


TRANSFORMS: dict[str, Callable[[Any, _TransformContext], Any]] = {
    "iso_datetime": _iso_datetime,
    "epoch_ms": _epoch_ms,
    "local_date": _local_date,
    "end_of_day": _end_of_day,
    "duration": _duration,
    "value_map": _value_map,
    "first": _first,
    "strip": lambda v, ctx: str(v).strip(),
    "lower": lambda v, ctx: str(v).lower(),
    "int": _to_int,
    "float": lambda v, ctx: float(v),
    "bool": _to_bool,
    "str": lambda v, ctx: str(v),
}


#: Transforms whose result is an aware UTC datetime; a time column's chain must end in one of them.
DATETIME_TRANSFORMS = frozenset({"iso_datetime", "epoch_ms", "local_date", "end_of_day"})
_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1


Fitter = Callable[[str, Any], Any]


def _fit_datetime(column: str, value: Any) -> Any:
    if value is None or (type(value) is datetime and value.tzinfo is UTC):
        return value
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC)
    raise RecordError(column, value, "expected a date-time with a time zone")


def _fit_bool(column: str, value: Any) -> Any:
    if value is None or isinstance(value, bool):
        return value
    raise RecordError(column, value, "expected true or false")


def _fit_int(column: str, value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise RecordError(column, value, "expected an integer")
    if not _INT32_MIN <= value <= _INT32_MAX:  # PostgreSQL's INTEGER; SQLite would take it
        raise RecordError(column, value, "integer out of range")
    return value


def _fit_float(column: str, value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise RecordError(column, value, "expected a number")
    try:
        return float(value)
    except OverflowError:
        raise RecordError(column, value, "number out of range") from None


def _text_fitter(length: int | None) -> Fitter:
    def fit(column: str, value: Any) -> Any:
        if value is None:
            return None
        if type(value) is not str:
            if isinstance(value, bool):
                raise RecordError(column, value, "a boolean does not fit this column")
            if not isinstance(value, int | float):
                raise RecordError(column, value, "expected text")
            value = str(value)  # CRM ids and codes often arrive as JSON numbers
        if "\x00" in value:
            raise RecordError(column, value, "text contains a NUL character")
        if length is not None and len(value) > length:
            raise RecordError(column, value, f"longer than the column's {length} characters")
        return _storable_text(value)

    return fit


def _fitter(sql_type: TypeEngine[Any]) -> Fitter:
    """The check for values bound for a store column of ``sql_type``, chosen once at load time.

    A value the store cannot take (a dict in a text column, a string in a time column, a name longer
    than the column, a NUL byte PostgreSQL refuses) would make the whole page's transaction fail on
    every run and wedge the sync; caught here, it only sends its record to the quarantine.
    """
    if isinstance(sql_type, UTCDateTime):
        return _fit_datetime
    if isinstance(sql_type, Boolean):
        return _fit_bool
    if isinstance(sql_type, Integer):
        return _fit_int
    if isinstance(sql_type, Float):
        return _fit_float
    if isinstance(sql_type, String):
        return _text_fitter(sql_type.length)
    raise TypeError(f"no store type check for {sql_type!r}")  # a new column type needs a rule above


Getter = Callable[[Any], Any]


def _getter(steps: tuple[_Step, ...]) -> Getter:
    """A reader for one path; plain key paths (the common case) become direct dict look-ups."""
    if len(steps) == 1 and type(steps[0].key) is str and steps[0].select is None:
        key = steps[0].key
        return lambda record: record.get(key, _MISSING) if type(record) is dict else _resolve(record, steps)
    if len(steps) == 2 and all(type(st.key) is str and st.select is None for st in steps):
        outer, inner = steps[0].key, steps[1].key

        def two_keys(record: Any) -> Any:
            value = record.get(outer, _MISSING) if type(record) is dict else _MISSING
            return value.get(inner, _MISSING) if type(value) is dict else _resolve(record, steps)

        return two_keys
    return lambda record: _resolve(record, steps)


# ---- compiled mapping ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Condition:
    paths: tuple[tuple[_Step, ...], ...]
    values: tuple[Any, ...]

    def holds(self, record: Mapping[str, Any]) -> bool:
        for steps in self.paths:
            value = _resolve(record, steps)
            if not _empty(value):
                return value in self.values
        return False


@dataclass(frozen=True)
class _Column:
    name: str
    paths: tuple[tuple[_Step, ...], ...]
    path_texts: tuple[str, ...]
    transforms: tuple[tuple[Callable[[Any, _TransformContext], Any], _TransformContext], ...]
    sql_type: TypeEngine[Any]
    const: Any = _MISSING
    required: bool = False
    when: _Condition | None = None
    getters: tuple[Getter, ...] = field(init=False, repr=False)
    fit: Fitter = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # Compiled once here because this runs for every column of every synced record.
        object.__setattr__(self, "getters", tuple(_getter(steps) for steps in self.paths))
        object.__setattr__(self, "fit", _fitter(self.sql_type))

    def value(self, record: Mapping[str, Any]) -> Any:
        """The column's value for ``record``, checked against the store column's type."""
        if self.const is not _MISSING:
            return self.fit(self.name, self.const)
        if self.when is not None and not self.when.holds(record):
            return None
        raw: Any = _MISSING
        for get in self.getters:
            raw = get(record)
            if raw is not _MISSING and raw is not None and raw != "" and raw != []:
                break
        else:
            if self.required:
                raise RecordError(self.name, None, f"required field {' | '.join(self.path_texts)} is missing")
            return None
        value = raw
        for transform, ctx in self.transforms:
            try:
                value = transform(value, ctx)
            except (ValueError, TypeError, OverflowError) as exc:
                raise RecordError(self.name, raw, str(exc)) from None
        return self.fit(self.name, value)


@dataclass(frozen=True)
class EntityMapping:
    """How one CRM object feeds one canonical entity."""

    entity: str
    object: str
    fetch_fields: list[str]
    options: dict[str, Any]
    columns: tuple[_Column, ...]
    deleted_if: tuple[_Condition, ...] = ()
    maps_column: frozenset[str] = field(default_factory=frozenset)

    def apply(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        """Canonical column values for ``raw`` (no source/synced_at/raw); raises RecordError."""
        row = {column.name: column.value(raw) for column in self.columns}
        for name in REQUIRED_COLUMNS:  # `when` or `const` could leave them empty; the store cannot
            if row[name] is None:
                raise RecordError(name, None, "is missing")
        deleted = any(condition.holds(raw) for condition in self.deleted_if)
        row["deleted_at"] = row["updated_at"] if deleted else None
        return row


@dataclass(frozen=True)
class MappingFile:
    file: str
    entities: dict[str, EntityMapping]


def bundled_mapping_path(name: str) -> Path:
    """The bundled mapping ``name`` (e.g. "zoho") shipped in the ``mappings`` package."""
    resource = resources.files("mappings").joinpath(f"{name.removesuffix('.toml')}.toml")
    return Path(str(resource))


def deep_merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """``override`` laid over ``base`` table by table: what ``extends = "<bundled>"`` means."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise MappingError(str(path), "(file)", "mapping file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise MappingError(str(path), "(syntax)", str(exc)) from None


def load_mapping(path_or_name: str | Path, tz: ZoneInfo) -> MappingFile:
    """Load and validate a mapping file (a path, or the name of a bundled mapping)."""
    path = Path(path_or_name)
    if path.parent == Path(".") and not path.is_file():  # "zoho" or "zoho.toml": a bundled mapping
        path = bundled_mapping_path(path.name)
    document = _read_toml(path)
    if "extends" in document:
        base_name = document.pop("extends")
        if not isinstance(base_name, str):
            raise MappingError(str(path), "extends", "must be the name of a bundled mapping")
        base = bundled_mapping_path(base_name)
        if not base.is_file():
            raise MappingError(str(path), "extends", f"no bundled mapping named {base_name!r}")
        document = deep_merge(_read_toml(base), document)
    return _compile(str(path), document, tz)


def _compile(file: str, document: Mapping[str, Any], tz: ZoneInfo) -> MappingFile:
    unknown = set(document) - {"entities", "value_maps", "meta"}
    if unknown:
        raise MappingError(
            file, sorted(unknown)[0], "unknown top-level key (expected entities, value_maps, meta)"
        )
    value_maps = document.get("value_maps", {})
    if not isinstance(value_maps, Mapping):
        raise MappingError(file, "value_maps", "must be a table of [value_maps.<name>] tables")
    for name, spec in value_maps.items():
        if not isinstance(spec, Mapping) or not isinstance(spec.get("values", {}), Mapping):
            raise MappingError(file, f"value_maps.{name}", "must be a table with a `values` table")
        extra = set(spec) - {"values", "default"}
        if extra:
            raise MappingError(file, f"value_maps.{name}.{sorted(extra)[0]}", "unknown key")
    entities = document.get("entities")
    if not isinstance(entities, Mapping) or not entities:
        raise MappingError(file, "entities", "a mapping needs at least one [entities.<name>] table")
    compiled = {name: _compile_entity(file, name, spec, value_maps, tz) for name, spec in entities.items()}
    return MappingFile(file=file, entities=compiled)


_ENTITY_KEYS = {"object", "fields", "options", "columns", "deleted_if"}
_COLUMN_KEYS = {"path", "transform", "map", "const", "required", "when"}


def _compile_entity(
    file: str, name: str, spec: Any, value_maps: Mapping[str, Any], tz: ZoneInfo
) -> EntityMapping:
    where = f"entities.{name}"
    if name not in ENTITY_TABLES:
        raise MappingError(file, where, f"unknown entity; expected one of {', '.join(ENTITY_TABLES)}")
    if not isinstance(spec, Mapping):
        raise MappingError(file, where, "must be a table")
    extra = set(spec) - _ENTITY_KEYS
    if extra:
        raise MappingError(
            file, f"{where}.{sorted(extra)[0]}", f"unknown key; expected {sorted(_ENTITY_KEYS)}"
        )
    obj = spec.get("object")
    if not isinstance(obj, str) or not obj:
        raise MappingError(file, f"{where}.object", "the CRM object/module name is required")
    table_columns = set(ENTITY_TABLES[name].columns.keys()) - ENGINE_COLUMNS
    columns_spec = spec.get("columns")
    if not isinstance(columns_spec, Mapping):
        raise MappingError(file, f"{where}.columns", "a [columns] table is required")
    for required in REQUIRED_COLUMNS:
        if columns_spec.get(required, False) is False:
            raise MappingError(file, f"{where}.columns.{required}", "is required")
    # `column = false` drops a column a base mapping defines (e.g. a custom field this org lacks),
    # since an `extends` override can only add or replace keys.
    columns_spec = {k: v for k, v in columns_spec.items() if v is not False}
    columns = []
    for column_name, column_spec in columns_spec.items():
        key = f"{where}.columns.{column_name}"
        if column_name not in table_columns:
            raise MappingError(file, key, f"unknown canonical column of {name}: {sorted(table_columns)}")
        sql_type = ENTITY_TABLES[name].columns[column_name].type
        columns.append(_compile_column(file, key, column_name, column_spec, sql_type, value_maps, tz))
    deleted_if_spec = spec.get("deleted_if", [])
    if not isinstance(deleted_if_spec, list):
        raise MappingError(file, f"{where}.deleted_if", 'must be a list of { path = "…", in = [values] }')
    deleted_if = tuple(
        _compile_condition(file, f"{where}.deleted_if[{i}]", cond) for i, cond in enumerate(deleted_if_spec)
    )
    extra_fields = spec.get("fields", [])
    if not isinstance(extra_fields, list) or not all(isinstance(f, str) for f in extra_fields):
        raise MappingError(file, f"{where}.fields", "must be a list of field names")
    fetch: set[str] = set(extra_fields)
    for column in columns:
        fetch.update(text.split(".")[0].split("[")[0] for text in column.path_texts)
    for condition_spec in deleted_if_spec:
        fetch.update(p.split(".")[0].split("[")[0] for p in _as_list(condition_spec["path"]))
    for column_spec in columns_spec.values():
        if isinstance(column_spec, Mapping) and "when" in column_spec:
            fetch.update(p.split(".")[0].split("[")[0] for p in _as_list(column_spec["when"]["path"]))
    options = spec.get("options", {})
    if not isinstance(options, Mapping):
        raise MappingError(file, f"{where}.options", "must be a table")
    return EntityMapping(
        entity=name,
        object=obj,
        fetch_fields=sorted(fetch),
        options=dict(options),
        columns=tuple(columns),
        deleted_if=deleted_if,
        maps_column=frozenset(c.name for c in columns),
    )


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _compile_paths(file: str, key: str, value: Any) -> tuple[tuple[tuple[_Step, ...], ...], tuple[str, ...]]:
    texts = _as_list(value)
    if not texts or not all(isinstance(t, str) and t for t in texts):
        raise MappingError(file, key, "a path is a non-empty string or a list of them")
    try:
        return tuple(_parse_path(t) for t in texts), tuple(texts)
    except ValueError as exc:
        raise MappingError(file, key, str(exc)) from None


def _compile_condition(file: str, key: str, spec: Any) -> _Condition:
    if not isinstance(spec, Mapping) or set(spec) != {"path", "in"} or not isinstance(spec["in"], list):
        raise MappingError(file, key, 'a condition is { path = "…", in = [values] }')
    paths, _ = _compile_paths(file, f"{key}.path", spec["path"])
    return _Condition(paths=paths, values=tuple(spec["in"]))


def _compile_column(
    file: str,
    key: str,
    name: str,
    spec: Any,
    sql_type: TypeEngine[Any],
    value_maps: Mapping[str, Any],
    tz: ZoneInfo,
) -> _Column:
    if isinstance(spec, str):
        spec = {"path": spec}
    if not isinstance(spec, Mapping):
        raise MappingError(file, key, "a column is a path string or a table")
    extra = set(spec) - _COLUMN_KEYS
    if extra:
        raise MappingError(file, f"{key}.{sorted(extra)[0]}", f"unknown key; expected {sorted(_COLUMN_KEYS)}")
    required = spec.get("required", name in REQUIRED_COLUMNS)
    if not isinstance(required, bool):
        raise MappingError(file, f"{key}.required", "must be true or false")
    if name in REQUIRED_COLUMNS and not required:
        raise MappingError(file, f"{key}.required", f"{name} is always required")
    if "const" in spec:
        if set(spec) - {"const"}:
            raise MappingError(file, key, "`const` cannot be combined with other keys")
        return _Column(
            name=name, paths=(), path_texts=(), transforms=(), sql_type=sql_type, const=spec["const"]
        )
    if "path" not in spec:
        raise MappingError(file, key, "needs `path` or `const`")
    paths, texts = _compile_paths(file, f"{key}.path", spec["path"])
    transforms = []
    transform_names = _as_list(spec.get("transform", []))
    for transform_name in transform_names:
        if not isinstance(transform_name, str) or transform_name not in TRANSFORMS:
            raise MappingError(
                file,
                f"{key}.transform",
                f"unknown transform {transform_name!r}; known: {', '.join(TRANSFORMS)}",
            )
        ctx = _TransformContext(tz=tz)
        if transform_name == "value_map":
            map_name = spec.get("map")
            if map_name not in value_maps:
                raise MappingError(
                    file, f"{key}.map", f"value map {map_name!r} is not defined under [value_maps]"
                )
            value_map = value_maps[map_name]
            ctx = _TransformContext(
                tz=tz, value_map=value_map.get("values", {}), map_default=value_map.get("default", _MISSING)
            )
        transforms.append((TRANSFORMS[transform_name], ctx))
    if "map" in spec and "value_map" not in transform_names:
        raise MappingError(file, f"{key}.map", '`map` needs transform = "value_map"')
    if isinstance(sql_type, UTCDateTime) and (
        not transform_names or transform_names[-1] not in DATETIME_TRANSFORMS
    ):
        raise MappingError(
            file,
            f"{key}.transform",
            f"a time column must end with one of {', '.join(sorted(DATETIME_TRANSFORMS))}",
        )
    when = _compile_condition(file, f"{key}.when", spec["when"]) if "when" in spec else None
    return _Column(
        name=name,
        paths=paths,
        path_texts=texts,
        transforms=tuple(transforms),
        sql_type=sql_type,
        required=required,
        when=when,
    )
