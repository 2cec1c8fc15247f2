"""State shared by every command: the config (loaded on first use), language, output mode, store."""

from __future__ import annotations

import enum
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click
from rich.console import Console

from connector.clock import Clock, system_clock

if TYPE_CHECKING:
    from connector.config import Config
    from connector.store import Store


class ExitCode(enum.IntEnum):
    OK = 0
    JOB_FAILED = 1
    USAGE = 2


@dataclass
class AppContext:
    config_path: str
    as_json: bool = False
    lang_override: str | None = None
    clock: Clock = field(default_factory=system_clock)

    @cached_property
    def console(self) -> Console:
        # Piped output (make demo, CI logs, cron mail) has no terminal width; 80 columns would
        # squeeze the tables into unreadable wraps.
        width = None if sys.stdout.isatty() else 150
        return Console(stderr=False, highlight=False, width=width)

    @cached_property
    def err_console(self) -> Console:
        return Console(stderr=True, highlight=False, soft_wrap=True)

    @cached_property
    def config(self) -> Config:
        from connector.config import ConfigError, load_config

        try:
            return load_config(Path(self.config_path))
        except ConfigError as exc:
            self.fail(str(exc), ExitCode.USAGE)

    @property
    def lang(self) -> str:
        if self.lang_override:
            return self.lang_override
        if not Path(self.config_path).exists():  # init, sandbox, demo run before any config exists
            return "zh"
        return self.config.clinic.language

    @cached_property
    def store(self) -> Store:
        from connector.store import open_store

        return open_store(self.config.store.url)

    def emit(self, data: Any, human: Callable[[], None]) -> None:
        """Print ``data`` as JSON with ``--json``, else call ``human`` to render tables."""
        if self.as_json:
            click.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))
        else:
            human()

    def fail(self, message: str, code: ExitCode = ExitCode.JOB_FAILED) -> NoReturn:
        if self.as_json:
            click.echo(json.dumps({"error": message, "exit_code": int(code)}, ensure_ascii=False))
        else:
            click.echo(message, err=True)
        sys.exit(int(code))
