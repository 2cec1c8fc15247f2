"""Alembic migrations build exactly connector.store.schema, from code, idempotently."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from connector.store import migrate, open_store, upsert
from connector.store.engine import create_store_engine
from connector.store.schema import metadata, tickets

AT = datetime(2026, 10, 5, tzinfo=UTC)


def schema_differences(url: str, target: sa.MetaData = metadata) -> list:
    engine = create_store_engine(url)
    try:
        with engine.connect() as conn:
            return compare_metadata(MigrationContext.configure(conn), target)
    finally:
        engine.dispose()


def test_script_location_comes_from_the_package() -> None:
    assert (migrate.SCRIPT_LOCATION / "env.py").is_file()
    assert migrate.head_revision() == "0002"


def test_upgrade_from_empty_matches_schema(db_url: str) -> None:
    assert migrate.current_revision(db_url) is None
    migrate.upgrade(db_url)
    assert schema_differences(db_url) == []
    # The comparison has teeth: a table the migrations do not create is reported.
    extended = sa.MetaData()
    for table in metadata.tables.values():
        table.to_metadata(extended)
    sa.Table("not_migrated", extended, sa.Column("id", sa.Integer, primary_key=True))
    assert [diff[0] for diff in schema_differences(db_url, extended)] == ["add_table"]


def test_open_store_twice_is_idempotent_and_keeps_data(db_url: str) -> None:
    store = open_store(db_url)
    row = {
        "source": "zoho", "external_id": "t1", "contact_id": None, "owner_id": None, "subject": None,
        "category": None, "channel": None, "priority": None, "status": "open", "created_at": None,
        "first_response_at": None, "resolved_at": None, "satisfaction": None, "updated_at": AT,
        "deleted_at": None, "synced_at": AT, "raw": "{}",
    }  # fmt: skip
    with store.begin() as conn:
        upsert(conn, "tickets", [row])
    store.dispose()
    again = open_store(db_url)
    assert migrate.current_revision(again.engine) == migrate.head_revision()
    with again.connect() as conn:
        assert conn.execute(sa.select(tickets.c.status)).scalars().all() == ["open"]
        assert conn.exec_driver_sql("SELECT count(*) FROM alembic_version").scalar() == 1
    again.dispose()


def test_store_at_0001_is_reported(db_url: str) -> None:
    engine = create_store_engine(db_url)
    with engine.begin() as conn:
        command.upgrade(migrate.alembic_config(conn), "0001")
    assert migrate.current_revision(engine) == "0001"
    assert migrate.current_revision(db_url) == "0001"
    engine.dispose()


def test_store_from_an_older_release_upgrades_in_place(db_url: str) -> None:
    """A store left at 0001 with data in it gains 0002's indexes on start and keeps every row."""
    engine = create_store_engine(db_url)
    with engine.begin() as conn:
        command.upgrade(migrate.alembic_config(conn), "0001")
        conn.exec_driver_sql(
            "INSERT INTO calls (source, external_id, ticket_id, updated_at, synced_at, raw) "
            "VALUES ('crm', 'c1', 't1', '2026-10-01 00:00:00', '2026-10-01 00:00:00', '{}')"
        )
    engine.dispose()
    store = open_store(db_url)
    assert migrate.current_revision(store.engine) == "0002"
    indexes = {ix["name"] for ix in sa.inspect(store.engine).get_indexes("calls")}
    assert {"ix_calls_ticket", "ix_calls_contact"} <= indexes
    with store.connect() as conn:
        assert conn.exec_driver_sql("SELECT ticket_id FROM calls").scalars().all() == ["t1"]
    store.dispose()


def test_open_store_without_upgrade_leaves_database_alone(db_url: str) -> None:
    store = open_store(db_url, upgrade=False)
    assert migrate.current_revision(store.engine) is None
    assert sa.inspect(store.engine).get_table_names() == []
    store.dispose()


def test_downgrade_removes_everything(sqlite_url: str) -> None:
    migrate.upgrade(sqlite_url)
    engine = create_store_engine(sqlite_url)
    with engine.begin() as conn:
        command.downgrade(migrate.alembic_config(conn), "base")
    assert sa.inspect(engine).get_table_names() == ["alembic_version"]
    engine.dispose()
