"""Keys that name a source: each must name one configured under ``[sources]``.

Checked when the file is loaded, not when the job that reads the key first runs: otherwise
``crm-connector check`` passes a file whose ``[schedule.sources.zoho]`` points at a source renamed
to ``zoho_main``, and the admin learns of it from a daemon that will not start or a push that fails
at night.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from pathlib import Path

from connector.config.models import Config
from connector.config.problems import ConfigProblem, did_you_mean


def _source_keys(config: Config) -> Iterator[tuple[str, str]]:
    """(key path, source name) for every key whose value or table name is a source."""
    for name in config.schedule.sources:
        yield f"schedule.sources.{name}", name
    for name in config.push.field_maps:
        yield f"push.field_maps.{name}", name
    for index, name in enumerate(config.push.sources or ()):
        yield f"push.sources[{index}]", name


def reference_problems(config: Config, path: Path, source_names: Collection[str]) -> list[ConfigProblem]:
    """A problem for each key naming no table under ``[sources]``.

    ``source_names`` are the tables the file has, valid or not: a source with a problem of its own
    is left out of ``config.sources``, and is reported as that problem, not as missing.
    """
    known = list(source_names)
    configured = f"(configured: {', '.join(known) or 'none'})"
    return [
        ConfigProblem(path, key, f"there is no [sources.{name}]{did_you_mean(name, known)} {configured}")
        for key, name in _source_keys(config)
        if name not in known
    ]
