"""Configuration problems: which file, which key, what is wrong — in words a clinic admin can act on.

Pydantic's errors are precise but speak Python ("Input should be a valid integer") and carry the
offending input. Admins edit TOML, and the error text ends up in terminals, logs and support tickets,
so this module rewrites each error as ``<file>: <dotted.key.path>: <what is wrong>``, suggests the
nearest key for typos, and never repeats the value of a secret field.
"""

from __future__ import annotations

import difflib
import json
import re
import types
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, time
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, Secret, SecretBytes, SecretStr, ValidationError
from pydantic_core import ErrorDetails

Loc = tuple[str | int, ...]

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_SECRET_TYPES = (SecretStr, SecretBytes, Secret)
_MASK = "**********"

# What a TOML author wrote wrong, by pydantic error type; the value they wrote is appended.
_EXPECTED = {
    "int_type": "expected an integer",
    "int_parsing": "expected an integer",
    "int_from_float": "expected an integer",
    "float_type": "expected a number",
    "float_parsing": "expected a number",
    "bool_type": "expected true or false",
    "bool_parsing": "expected true or false",
    "string_type": "expected a string",
    "list_type": "expected a list",
    "tuple_type": "expected a list",
    "set_type": "expected a list",
    "dict_type": "expected a table",
    "model_type": "expected a table",
    "model_attributes_type": "expected a table",
    "date_type": "expected an ISO date (YYYY-MM-DD)",
    "date_parsing": "expected an ISO date (YYYY-MM-DD)",
    "time_type": "expected a time (HH:MM)",
    "time_parsing": "expected a time (HH:MM)",
    "datetime_type": "expected an ISO date-time",
    "datetime_parsing": "expected an ISO date-time",
    "path_type": "expected a path",
}


@dataclass(frozen=True)
class ConfigProblem:
    """One thing wrong with a config file; ``key`` is empty when the whole file is at fault."""

    file: Path
    key: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}: {self.key}: {self.message}" if self.key else f"{self.file}: {self.message}"


class ConfigError(Exception):
    """Every problem found in one pass, so an admin fixes the file in one round, not one per run."""

    def __init__(self, problems: Iterable[ConfigProblem]) -> None:
        self.problems = list(problems)
        super().__init__(self.problems)

    def __str__(self) -> str:
        return "\n".join(str(problem) for problem in self.problems)


def key_path(loc: Sequence[str | int]) -> str:
    """``("sources", "zoho", "entities", 1)`` → ``sources.zoho.entities[1]`` (odd keys quoted as in TOML)."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
            continue
        shown = part if _BARE_KEY.fullmatch(part) else json.dumps(part, ensure_ascii=False)
        text = f"{text}.{shown}" if text else shown
    return text


def show(value: object) -> str:
    """A value as the admin wrote it in TOML; containers by kind only, so they cannot leak what they hold."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, Mapping):
        return "a table"
    if isinstance(value, list | tuple):
        return "a list"
    return f"a {type(value).__name__}"


def did_you_mean(value: str, candidates: Iterable[str]) -> str:
    """``"; did you mean 'x'?"`` for the nearest candidate (case-insensitive match first), else ``""``."""
    pool = list(candidates)
    exact = [c for c in pool if c.lower() == value.lower()]
    close = exact or difflib.get_close_matches(value, pool, n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def unknown_key(key: str, known: Iterable[str]) -> str:
    """The message for a key no model accepts: a suggestion if one is close, else the valid keys."""
    names = sorted(set(known))
    hint = did_you_mean(key, names)
    if not hint and names:
        hint = f"; valid keys: {', '.join(names)}"
    return f"unknown key {key!r}{hint}"


def input_names(model: type[BaseModel]) -> list[str]:
    """The TOML keys a model accepts (aliases where a field has one)."""
    return [
        field.validation_alias if isinstance(field.validation_alias, str) else field.alias or name
        for name, field in model.model_fields.items()
    ]


def problems_from(
    exc: ValidationError, model: type[BaseModel], file: Path, prefix: Loc = ()
) -> list[ConfigProblem]:
    """Readable problems for a failed ``model.model_validate``; ``prefix`` locates the model in the file."""
    problems = []
    for error in exc.errors(include_url=False):
        if error["type"] == "default_factory_not_called":
            continue  # a consequence of another field's error, already reported
        field_loc = tuple(part for part in error["loc"] if part != "[key]")
        problems.append(ConfigProblem(file, key_path(prefix + field_loc), _message(error, model, field_loc)))
    return problems


def _message(error: ErrorDetails, model: type[BaseModel], loc: Loc) -> str:
    """What is wrong at ``loc`` (the error's location without pydantic's ``[key]`` marker)."""
    kind, value, ctx = error["type"], error.get("input"), error.get("ctx", {})
    if kind == "missing":
        return "missing required key"
    if kind == "extra_forbidden":
        parent = _unwrap(_annotation_at(model, loc[:-1]))
        return unknown_key(str(loc[-1]), input_names(parent) if _is_model(parent) else [])
    if error["loc"][-1:] == ("[key]",):
        return f"unknown key {value!r}; expected {ctx.get('expected', 'another key')}"
    secret = _holds_secret(_annotation_at(model, loc), set())
    if kind in ("value_error", "assertion_error"):
        text = str(ctx["error"])
    else:
        if kind in ("literal_error", "enum"):
            text = f"expected {ctx['expected']}"
        else:
            text = _EXPECTED.get(kind) or _lower_first(
                error["msg"].replace("Input should be", "should be", 1)
            )
        if not secret:
            text += f", got {show(value)}"
    if secret and isinstance(value, str) and value:
        text = text.replace(value, _MASK)
    return text


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


def _unwrap(annotation: Any) -> Any:
    """Strip ``Annotated[...]`` and ``X | None`` down to the type that decides the shape."""
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
            continue
        if origin in (Union, types.UnionType):
            args = [arg for arg in get_args(annotation) if arg is not type(None)]
            if len(args) == 1:
                annotation = args[0]
                continue
        return annotation


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _annotation_at(model: type[BaseModel], loc: Loc) -> Any:
    """The declared type at ``loc`` inside ``model`` (``None`` where the path leaves known types)."""
    annotation: Any = model
    for part in loc:
        annotation = _unwrap(annotation)
        origin, args = get_origin(annotation), get_args(annotation)
        if _is_model(annotation):
            fields = dict(zip(input_names(annotation), annotation.model_fields.values(), strict=True))
            if part not in fields:
                return None
            annotation = fields[part].annotation
        elif origin is dict or (isinstance(origin, type) and issubclass(origin, Mapping)):
            annotation = args[1]
        elif origin is tuple and isinstance(part, int) and args:
            annotation = args[-2] if args[-1] is Ellipsis else args[min(part, len(args) - 1)]
        elif origin in (list, set, frozenset) or (isinstance(origin, type) and issubclass(origin, Sequence)):
            annotation = args[0]
        else:
            return None
    return annotation


def _holds_secret(annotation: Any, seen: set[type[BaseModel]]) -> bool:
    """Whether a value of this type is, or may contain, a secret — then its input is never shown."""
    annotation = _unwrap(annotation)
    origin = get_origin(annotation) or annotation
    if isinstance(origin, type) and issubclass(origin, _SECRET_TYPES):
        return True
    if _is_model(annotation):
        if annotation in seen:
            return False
        seen.add(annotation)
        return any(_holds_secret(field.annotation, seen) for field in annotation.model_fields.values())
    return any(_holds_secret(arg, seen) for arg in get_args(annotation) if arg is not Ellipsis)
