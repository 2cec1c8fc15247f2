"""Schema migrations (Alembic), driven from code so an installed wheel needs no ``alembic.ini``.

The script directory is found next to this module. Upgrades run under a named lock, so a scheduler
and a CLI command started together on a fresh database do not both try to create the tables.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, Engine

from connector.store.engine import create_store_engine
from connector.store.locks import engine_lock

SCRIPT_LOCATION = Path(__file__).resolve().parent / "migrations"
_MIGRATE_LOCK = "schema-migrate"


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic config without a file; ``env.py`` takes the connection from its attributes."""
    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@contextmanager
def _engine(engine_or_url: Engine | str) -> Iterator[Engine]:
    if isinstance(engine_or_url, Engine):
        yield engine_or_url
        return
    engine = create_store_engine(engine_or_url)
    try:
        yield engine
    finally:
        engine.dispose()


@functools.cache  # the scripts ship with the package; parsing them once per process is enough
def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "the migrations directory has no revisions"
    return head


def current_revision(engine_or_url: Engine | str) -> str | None:
    """The revision the database is at, or None for a database Alembic has never touched."""
    with _engine(engine_or_url) as engine, engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine_or_url: Engine | str) -> None:
    """Bring the database to the newest revision; a no-op (and no lock) when it is already there."""
    head = head_revision()
    with _engine(engine_or_url) as engine:
        if current_revision(engine) == head:
            return
        with engine_lock(engine, _MIGRATE_LOCK), engine.begin() as conn:
            command.upgrade(alembic_config(conn), "head")
