"""The connector's TOML config: load, substitute ``${ENV}`` secrets, validate, report every problem at once.

Loading runs in stages, each collecting problems instead of stopping at the first: TOML syntax
(line and column), ``${NAME}`` substitution from the environment, each ``[sources.<name>]`` (common
keys by :class:`SourceConfig`, the rest by its kind's ``options`` model from the adapter registry),
then the remaining sections by :class:`Config`. Only when nothing is wrong is a :class:`Config`
returned; otherwise :class:`ConfigError` lists every problem as ``<file>: <key.path>: <message>``.

Option models are validated with context ``{"base_dir": <config folder>}``, so an adapter can type a
path field as :data:`ConfigPath` and get it resolved like ``mapping`` is.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from connector.adapter import adapter_kinds
from connector.config.models import (
    SECTION_CONFIG,
    WEEKDAYS,
    CalendarConfig,
    ClinicConfig,
    Config,
    ConfigPath,
    SourceConfig,
    StoreConfig,
    TimeRange,
    Weekday,
)
from connector.config.problems import (
    ConfigError,
    ConfigProblem,
    Loc,
    input_names,
    key_path,
    problems_from,
    show,
)
from connector.config.problems import unknown_key as _unknown_key
from connector.config.references import reference_problems

__all__ = [
    "SECTION_CONFIG",
    "WEEKDAYS",
    "CalendarConfig",
    "ClinicConfig",
    "Config",
    "ConfigError",
    "ConfigPath",
    "ConfigProblem",
    "SourceConfig",
    "StoreConfig",
    "TimeRange",
    "Weekday",
    "load_config",
    "parse_config",
    "starter_config",
]

_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_SOURCE_KEYS = ("kind", "mapping", "entities")
_SOURCE_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")


class _Unchecked(BaseModel):
    """Stands in for options that could not be built, so a source's common keys are still checked."""


_NO_OPTIONS = _Unchecked()


def load_config(path: Path, *, environ: Mapping[str, str] | None = None) -> Config:
    """The validated config in ``path``; ``${NAME}`` values come from ``environ`` (default ``os.environ``)."""
    try:
        text = path.read_text(encoding="utf-8-sig")  # tolerate the BOM Windows editors add
    except FileNotFoundError:
        message = f"config file not found (looked at {path.absolute()}); create one with `crm-connector init`"
        raise ConfigError([ConfigProblem(path, "", message)]) from None
    except UnicodeDecodeError as exc:
        raise ConfigError([ConfigProblem(path, "", f"not UTF-8 text (byte {exc.start})")]) from None
    except OSError as exc:
        raise ConfigError([ConfigProblem(path, "", f"cannot read the file: {exc.strerror}")]) from None
    return parse_config(text, path, environ=environ)


def parse_config(text: str, path: Path, *, environ: Mapping[str, str] | None = None) -> Config:
    """Like :func:`load_config` for TOML ``text`` that belongs at ``path`` (relative paths, messages)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([ConfigProblem(path, "", f"TOML syntax error: {exc}")]) from None

    env_problems: list[ConfigProblem] = []
    data = _substitute(data, (), os.environ if environ is None else environ, path, env_problems)
    context = {"base_dir": path.absolute().parent, "path": path}
    sources, problems = _sources(data.get("sources", {}), context, path)
    try:
        config = Config.model_validate({**data, "sources": sources}, context=context)
    except ValidationError as exc:
        problems += problems_from(exc, Config, path)
    else:
        named = data.get("sources")
        problems += reference_problems(config, path, list(named) if isinstance(named, dict) else [])

    # A key whose ${VAR} is missing still holds the reference; its other complaints would be noise.
    blocked = {problem.key for problem in env_problems}
    problems = env_problems + [p for p in problems if not any(_within(p.key, key) for key in blocked)]
    if problems:
        raise ConfigError(sorted(problems, key=lambda problem: problem.key))
    return config


def starter_config() -> str:
    """The documented example config that ``crm-connector init`` writes."""
    return (resources.files("connector") / "data" / "config.example.toml").read_text(encoding="utf-8")


def _within(key: str, outer: str) -> bool:
    return key == outer or key.startswith((f"{outer}.", f"{outer}["))


def _substitute(
    value: Any, loc: Loc, environ: Mapping[str, str], file: Path, problems: list[ConfigProblem]
) -> Any:
    """``value`` with every ``${NAME}`` in its strings replaced; a missing variable becomes a problem."""
    if isinstance(value, dict):
        return {key: _substitute(item, (*loc, key), environ, file, problems) for key, item in value.items()}
    if isinstance(value, list):
        return [_substitute(item, (*loc, index), environ, file, problems) for index, item in enumerate(value)]
    if not isinstance(value, str):
        return value

    def replace(match: re.Match[str]) -> str:
        found = environ.get(match[1])
        if found:
            return found
        state = "is not set" if found is None else "is empty"
        problems.append(ConfigProblem(file, key_path(loc), f"environment variable {match[1]} {state}"))
        return match[0]

    return _ENV_REF.sub(replace, value)


def _sources(raw: Any, context: dict[str, Any], file: Path) -> tuple[Any, list[ConfigProblem]]:
    """Each valid ``[sources.<name>]`` as a :class:`SourceConfig`, and the problems of the others."""
    if not isinstance(raw, dict):
        return raw, []  # Config reports "expected a table"
    sources: dict[str, SourceConfig] = {}
    problems: list[ConfigProblem] = []
    for name, table in raw.items():
        loc: Loc = ("sources", name)
        if not isinstance(table, dict):
            problems.append(ConfigProblem(file, key_path(loc), f"expected a table, got {show(table)}"))
            continue
        found = _source(name, table, context, file)
        if isinstance(found, SourceConfig):
            sources[name] = found
        else:
            problems += found
        if not _SOURCE_NAME.fullmatch(name):
            message = "a source name may use only letters, digits, '_' and '-' (at most 64)"
            problems.append(ConfigProblem(file, key_path(loc), message))
    return sources, problems


def _source(
    name: str, table: dict[str, Any], context: dict[str, Any], file: Path
) -> SourceConfig | list[ConfigProblem]:
    """One source, or its problems: the kind's option keys and the common keys are checked alike."""
    loc: Loc = ("sources", name)
    kind = adapter_kinds().get(table["kind"]) if isinstance(table.get("kind"), str) else None
    problems: list[ConfigProblem] = []
    options: BaseModel = _NO_OPTIONS
    if kind is not None:  # an unknown or missing kind is reported by SourceConfig
        known = input_names(kind.options)
        rest = {key: value for key, value in table.items() if key not in _SOURCE_KEYS}
        for key in rest:
            if key not in known:
                message = _unknown_key(key, [*known, *_SOURCE_KEYS])
                problems.append(ConfigProblem(file, key_path((*loc, key)), message))
        try:
            options = kind.options.model_validate(
                {k: v for k, v in rest.items() if k in known}, context=context
            )
        except ValidationError as exc:
            problems += problems_from(exc, kind.options, file, loc)
    common = {key: table[key] for key in _SOURCE_KEYS if key in table}
    try:
        source = SourceConfig.model_validate({"name": name, **common, "options": options}, context=context)
    except ValidationError as exc:
        return problems + problems_from(exc, SourceConfig, file, loc)
    return problems or source
