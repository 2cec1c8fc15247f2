"""Shared fixtures: a store URL for SQLite and for a real PostgreSQL.

PostgreSQL tests use ``CRM_TEST_PG_URL`` (``.ci/run`` starts a server and sets it). Without a
reachable server they are skipped — unless ``CRM_TEST_REQUIRE_PG=1`` (set by CI), which turns
"unreachable" into a failure so a broken CI set-up cannot pass silently.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

PG_URL = os.environ.get("CRM_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:55432/postgres")
REQUIRE_PG = os.environ.get("CRM_TEST_REQUIRE_PG") == "1"


def _pg_admin_engine() -> sa.Engine | None:
    try:
        engine = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
        with engine.connect() as conn:
            conn.execute(sa.text("select 1"))
        return engine
    except Exception as exc:
        if REQUIRE_PG:
            pytest.fail(f"PostgreSQL unreachable at {PG_URL} and CRM_TEST_REQUIRE_PG=1: {exc}")
        return None


@pytest.fixture(scope="session")
def pg_admin() -> Iterator[sa.Engine | None]:
    engine = _pg_admin_engine()
    yield engine
    if engine is not None:
        engine.dispose()


def _fresh_pg_database(admin: sa.Engine) -> tuple[str, str]:
    name = f"crm_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = admin.url.set(database=name).render_as_string(hide_password=False)
    return name, url


def _drop_pg_database(admin: sa.Engine, name: str) -> None:
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path, pg_admin: sa.Engine | None) -> Iterator[str]:
    """An empty store URL: a SQLite file, or a fresh PostgreSQL database dropped afterwards."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    if pg_admin is None:
        pytest.skip(f"PostgreSQL unreachable at {PG_URL}")
    name, url = _fresh_pg_database(pg_admin)
    try:
        yield url
    finally:
        _drop_pg_database(pg_admin, name)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'store.db'}"
