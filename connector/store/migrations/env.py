"""Alembic environment: online migrations only, on the connection ``connector.store.migrate`` hands in.

Developers generating a revision can instead set ``sqlalchemy.url`` on the config
(``alembic_config()`` plus ``set_main_option``) and call ``alembic.command.revision(autogenerate=True)``.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from connector.store.engine import create_store_engine
from connector.store.schema import metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # SQLite cannot ALTER most things; batch mode rebuilds tables for later revisions.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise RuntimeError("offline (--sql) migrations are not supported; use connector.store.migrate")

_given = context.config.attributes.get("connection")
if _given is not None:
    _run(_given)
else:
    _engine = create_store_engine(context.config.get_main_option("sqlalchemy.url") or "")
    try:
        with _engine.begin() as _conn:
            _run(_conn)
    finally:
        _engine.dispose()
