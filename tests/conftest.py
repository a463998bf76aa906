"""Shared fixtures: a store URL on SQLite and on PostgreSQL, each test starting empty.

`store_url` is parametrized: `sqlite` (a file in the test's tmp dir) and `postgresql`
(marked `postgres`): a throwaway database `dirsync_test_<pid>` created once per test
session on the server at $DIRSYNC_TEST_PG (default the local `test` database) and dropped
at the end; each test gets an empty `public` schema. Without a reachable server the
PostgreSQL cases are skipped with the reason. `store` is an open, migrated store on it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import freezegun
import psycopg
import pytest
from psycopg import sql

from store import Store, open_store

# Freezing time makes freezegun scan every loaded module; once the okta SDK is loaded that
# scan imports its ~1,800 lazy pydantic models under a patched datetime, and they fail.
# Nothing reads the clock through okta, so every test leaves it out of the scan.
freezegun.configure(extend_ignore_list=["okta"])

PG_ADMIN = os.environ.get("DIRSYNC_TEST_PG", "host=127.0.0.1 port=5432 user=postgres dbname=test")


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """An empty throwaway PostgreSQL database for this test session; its SQLAlchemy URL."""
    name = f"dirsync_test_{os.getpid()}"
    try:
        admin = psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3)
    except psycopg.Error as exc:
        pytest.skip(f"PostgreSQL at {PG_ADMIN!r} is unreachable: {str(exc).strip().splitlines()[0]}")
    with admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        info = admin.info
        user, host, port = info.user, info.host, info.port
    try:
        yield f"postgresql+psycopg://{user}@{host}:{port}/{name}"
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _empty_postgres(url: str) -> None:
    conninfo = url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(conninfo, autocommit=True) as conn:
        # Connections a previous test left open could hold locks the DROP would wait on.
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty (un-migrated) database, once per backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'dirsync.db'}"
    url: str = request.getfixturevalue("postgres_database")
    _empty_postgres(url)
    return url


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    """An open store on `store_url`, migrated to the newest revision."""
    opened = open_store(store_url, check_schema=False)
    opened.upgrade()
    try:
        yield opened
    finally:
        opened.dispose()
