"""Alembic owns the schema; opening a store checks it is current."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect, select, text

from store import Lease, Store, StoreError, open_store
from store.models import Base

TABLES = {
    "directories",
    "users",
    "groups",
    "memberships",
    "invites",
    "sync_runs",
    "sync_events",
    "leases",
}


def test_upgrade_creates_every_table(store: Store) -> None:
    tables = set(inspect(store.engine).get_table_names())

    assert TABLES <= tables
    assert store.revision() == store.head()


def test_migrations_match_the_models(store: Store) -> None:
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)

    assert diff == []


def test_upgrade_twice_is_harmless(store: Store) -> None:
    store.upgrade()

    assert store.revision() == store.head()


def test_fresh_sqlite_file_is_migrated_on_open(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'new.db'}")

    try:
        assert store.revision() == store.head()
        assert TABLES <= set(inspect(store.engine).get_table_names())
    finally:
        store.dispose()


def test_in_memory_sqlite_is_migrated_and_keeps_its_schema() -> None:
    store = open_store("sqlite://")

    try:
        with store.session() as session:
            assert session.scalars(select(Lease)).all() == []
    finally:
        store.dispose()


def test_unmigrated_database_is_refused_with_a_clear_error(store_url: str) -> None:
    # An existing SQLite database with tables of its own is not "fresh": never migrate it silently.
    engine = create_engine(store_url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE something_else (id INTEGER)"))
    engine.dispose()

    with pytest.raises(StoreError) as caught:
        open_store(store_url)

    assert str(caught.value) == f"database at {store_url} is not migrated: run `dirsync db upgrade`"


@pytest.mark.postgres
def test_empty_postgres_database_is_not_migrated_on_open(store_url: str) -> None:
    if not store_url.startswith("postgresql"):
        pytest.skip("PostgreSQL behaviour")

    with pytest.raises(StoreError, match="is not migrated: run `dirsync db upgrade`"):
        open_store(store_url)


def test_error_message_never_shows_the_password(store_url: str) -> None:
    if store_url.startswith("sqlite"):
        url = "postgresql+psycopg://postgres:hunter2@127.0.0.1:1/nowhere"
    else:
        url = store_url.replace("postgres@", "postgres:hunter2@")

    with pytest.raises(StoreError) as caught:
        open_store(url)

    assert "hunter2" not in str(caught.value)
    assert "***" in str(caught.value)


def test_database_newer_than_the_code_is_refused(store: Store) -> None:
    with store.begin_write() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'ffff'"))
    url = str(store.engine.url)
    store.dispose()

    with pytest.raises(StoreError, match="unknown to this version of dirsync"):
        open_store(url)


def test_datetimes_come_back_as_aware_utc(store: Store) -> None:
    paris = datetime(2026, 3, 1, 12, 30, tzinfo=timezone(timedelta(hours=1)))
    with store.session() as session:
        session.add(Lease(name="x", holder="h", expires_at=paris))

    with store.session() as session:
        expires = session.scalars(select(Lease.expires_at)).one()

    assert expires == paris
    assert expires.tzinfo == UTC
    assert expires.hour == 11


def test_naive_datetime_is_refused(store: Store) -> None:
    with pytest.raises(Exception, match="naive datetime"):
        with store.session() as session:
            session.add(Lease(name="x", holder="h", expires_at=datetime(2026, 3, 1, 12, 30)))


def test_upgrade_of_an_unreachable_database_is_one_clear_line() -> None:
    store = open_store("postgresql+psycopg://postgres:hunter2@127.0.0.1:1/nowhere", check_schema=False)

    with pytest.raises(StoreError) as caught:
        store.upgrade()

    assert str(caught.value).startswith("database at postgresql+psycopg://postgres:***@127.0.0.1:1/nowhere cannot be upgraded: ")
    assert "hunter2" not in str(caught.value) and "\n" not in str(caught.value)


def test_the_versions_folder_names_the_head_alembic_knows(store: Store) -> None:
    # Opening a store compares the database with this, without importing alembic.
    from store.engine import newest_revision_file

    assert newest_revision_file() == store.head() == store.revision()


def test_a_command_that_only_opens_a_current_store_does_not_import_alembic(tmp_path: Path) -> None:
    import subprocess
    import sys

    url = f"sqlite:///{tmp_path / 'current.db'}"
    open_store(url).dispose()  # created and migrated
    probe = (
        "import sys\nfrom store import open_store\n"
        f"open_store({url!r}).dispose()\n"
        "print('alembic' in sys.modules)\n"
    )

    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)

    assert done.stdout.strip() == "False", done.stderr
