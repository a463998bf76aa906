"""Connections: SQLite writers take turns (and always give them back); a PostgreSQL
connection that went stale while idle in the pool is replaced, not handed out."""

from __future__ import annotations

import fcntl
import os
import threading
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import OperationalError

import store.engine
from store import Store, open_store
from store.models import directories


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Store:
    opened = open_store(f"sqlite:///{tmp_path / 'dirsync.db'}")
    yield opened
    opened.dispose()


def _add_directory(conn, name: str) -> None:
    conn.execute(directories.insert().values(name=name, kind="file", enabled=True, generation=0))


def _names(store: Store) -> set[str]:
    with store.session() as session:
        return set(session.scalars(select(directories.c.name)))


def _turn_is_free(database: Path) -> bool:
    """Whether another process could take the write turn now (a separate open file)."""
    fd = os.open(f"{database}-writer.lock", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
    return True


def test_a_sqlite_write_transaction_holds_the_turn_other_processes_wait_for(sqlite_store: Store,
                                                                          tmp_path: Path) -> None:
    database = tmp_path / "dirsync.db"

    with sqlite_store.begin_write() as conn:
        _add_directory(conn, "a")
        held = not _turn_is_free(database)

    assert held and _turn_is_free(database)


def test_a_sqlite_read_takes_no_turn(sqlite_store: Store, tmp_path: Path) -> None:
    with sqlite_store.session() as session:
        session.execute(select(func.count()).select_from(directories)).scalar()
        free = _turn_is_free(tmp_path / "dirsync.db")

    assert free


def test_a_rolled_back_sqlite_write_gives_its_turn_back(sqlite_store: Store, tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), sqlite_store.begin_write() as conn:
        _add_directory(conn, "a")
        raise RuntimeError("changed my mind")

    assert _turn_is_free(tmp_path / "dirsync.db")
    with sqlite_store.begin_write() as conn:
        _add_directory(conn, "b")
    assert _names(sqlite_store) == {"b"}


def test_concurrent_sqlite_writers_of_one_process_each_commit_in_turn(sqlite_store: Store) -> None:
    first_holds, first_may_commit = threading.Event(), threading.Event()
    order: list[str] = []

    def first() -> None:
        with sqlite_store.begin_write() as conn:
            _add_directory(conn, "first")
            first_holds.set()
            first_may_commit.wait()
            order.append("first commits")

    def second() -> None:
        first_holds.wait()
        with sqlite_store.begin_write() as conn:
            order.append("second begins")
            _add_directory(conn, "second")

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    first_holds.wait()
    first_may_commit.set()
    for t in threads:
        t.join()

    assert order == ["first commits", "second begins"]
    assert _names(sqlite_store) == {"first", "second"}


def test_a_sqlite_writer_that_waits_past_the_busy_timeout_fails_as_sqlite_would(
        sqlite_store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store.engine, "SQLITE_BUSY_TIMEOUT_SECONDS", 0.05)

    with sqlite_store.begin_write() as conn:
        _add_directory(conn, "a")
        with pytest.raises(OperationalError, match="database is locked"):
            with sqlite_store.begin_write() as nested:
                _add_directory(nested, "b")

    assert _names(sqlite_store) == {"a"}


@pytest.mark.postgres
def test_a_pooled_postgresql_connection_whose_server_side_died_while_idle_is_replaced(
        postgres_database: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store.engine, "PING_AFTER_IDLE_SECONDS", 0.0)
    opened = open_store(postgres_database, check_schema=False)
    try:
        with opened.engine.connect() as conn:
            backend = conn.execute(text("SELECT pg_backend_pid()")).scalar()
        with psycopg.connect(postgres_database.replace("postgresql+psycopg://", "postgresql://"),
                             autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (backend,))

        with opened.engine.connect() as conn:
            again = conn.execute(text("SELECT pg_backend_pid()")).scalar()
    finally:
        opened.dispose()

    assert again != backend


def test_a_large_applys_connection_has_16_mib_of_page_cache_until_it_goes_back_to_the_pool(tmp_path: Path) -> None:
    """A large apply's scattered index writes stay in the page cache until the commit;
    whoever uses the connection next (a reader of the whole store) has SQLite's own 2 MiB."""
    from store.engine import enlarge_page_cache

    opened = open_store(f"sqlite:///{tmp_path / 'dirsync.db'}")
    try:
        with opened.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA cache_size").scalar() == -2_000
            raw = conn.connection.dbapi_connection
            enlarge_page_cache(conn)
            assert conn.exec_driver_sql("PRAGMA cache_size").scalar() == -16_384
        with opened.engine.connect() as conn:
            assert conn.connection.dbapi_connection is raw
            assert conn.exec_driver_sql("PRAGMA cache_size").scalar() == -2_000
    finally:
        opened.dispose()
