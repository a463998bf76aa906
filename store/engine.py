"""Opening a store: engine, sessions, and the schema-revision check.

`open_store(url)` returns a `Store` whose schema is at the newest Alembic revision, or
raises `StoreError`. A SQLite database with no tables at all (the embedded default on
first use) is migrated on the spot; anything else behind the newest revision is refused
with one line telling the operator to run `dirsync db upgrade` (`Store.upgrade()`).
Error messages never contain the URL's password.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, create_engine, event, inspect
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, InvalidatePoolError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

from store.sqlite_writers import TurnTakingConnection

if TYPE_CHECKING:  # alembic is imported only to migrate or to diagnose a schema
    from alembic.config import Config
    from alembic.script import ScriptDirectory

PACKAGE_DIR = Path(__file__).resolve().parent
ALEMBIC_INI = PACKAGE_DIR / "alembic.ini"
VERSIONS_DIR = PACKAGE_DIR / "migrations" / "versions"

# Execution option naming how a SQLite transaction begins. "IMMEDIATE" takes the write
# lock up front, so a transaction that reads before it writes waits for another writer
# (busy timeout) instead of failing with "database is locked" half-way.
SQLITE_BEGIN = "dirsync_sqlite_begin"
SQLITE_BUSY_TIMEOUT_SECONDS = 30.0
WAL_CHECKPOINT_PAGES = 10_000
# SQLite's page cache per connection, in KiB: SQLite's default, and what a large apply's
# transactions get (`enlarge_page_cache`).
SQLITE_CACHE_KIB = 2_000
SQLITE_APPLY_CACHE_KIB = 16_384
_LARGE_CACHE = "dirsync_large_cache"


class StoreError(Exception):
    """The store cannot be used as asked; the message is one line fit for an operator."""


def safe_url(url: str | URL) -> str:
    """`url` as text with any password masked: the only form errors and logs may show."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable database URL>"


class Store:
    """An open database: an engine, a session factory, and schema management.

    Sessions do not expire objects on commit: callers mostly read rows and keep them
    after the session closes.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.url = safe_url(engine.url)
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @contextmanager
    def session(self, *, write: bool = False) -> Iterator[Session]:
        """A session that commits when the block ends normally and rolls back on error.

        `write=True` makes each of its transactions take the write lock at once on SQLite
        (see `begin_write`); use it for read-modify-write work.
        """
        options = {SQLITE_BEGIN: "IMMEDIATE"} if write else {}
        with self._sessions(execution_options=options) as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def revision(self) -> str | None:
        """The database's current schema revision (None: not migrated at all)."""
        with self._explained("cannot be read"), self.engine.connect() as conn:
            return _current(conn)

    def head(self) -> str:
        """The newest schema revision this code knows."""
        head = _scripts().get_current_head()
        assert head is not None, "the migrations package has no revision"
        return head

    def upgrade(self, revision: str = "head") -> None:
        """Migrate the schema to `revision` (default: newest); idempotent, needs no CLI.
        Database errors become one-line `StoreError`s."""
        with self._explained("cannot be upgraded"), self.begin_write() as conn:
            _upgrade(conn, revision)

    def dispose(self) -> None:
        """Close every pooled connection (end of process, or tests)."""
        self.engine.dispose()

    @contextmanager
    def _explained(self, what: str) -> Iterator[None]:
        try:
            yield
        except SQLAlchemyError as exc:
            raise StoreError(f"database at {self.url} {what}: {_one_line(exc, self.engine.url)}") from None

    @contextmanager
    def begin_write(self) -> Iterator[Connection]:
        """A connection in a transaction that is committed when the block ends (rolled
        back on error) and that holds the write lock from its first statement on SQLite,
        so reading before writing cannot fail half-way on a concurrent writer."""
        with self.engine.connect() as conn:
            conn = conn.execution_options(**{SQLITE_BEGIN: "IMMEDIATE"})
            with conn.begin():
                yield conn


def open_store(url: str | URL, *, check_schema: bool = True, echo: bool = False) -> Store:
    """Connect to `url` and return a ready `Store`.

    With `check_schema` (the default) the schema must be at the newest revision: a fresh
    SQLite database is migrated automatically; anything else behind raises `StoreError`.
    `check_schema=False` skips the check (for `dirsync db upgrade` and `db status`).
    """
    store = Store(create_store_engine(url, echo=echo))
    if check_schema:
        try:
            _ensure_current(store)
        except SQLAlchemyError as exc:
            store.dispose()
            raise StoreError(
                f"database at {store.url} cannot be opened: {_one_line(exc, store.engine.url)}"
            ) from None
        except StoreError:
            store.dispose()
            raise
    return store


def _one_line(exc: SQLAlchemyError, url: URL) -> str:
    """The driver's first line about `exc`, with the URL's password masked (drivers may
    echo connection parameters back)."""
    reason = (str(getattr(exc, "orig", None) or exc).strip().splitlines() or ["unknown error"])[0]
    if url.password:
        reason = reason.replace(str(url.password), "***")
    return reason


def create_store_engine(url: str | URL, *, echo: bool = False) -> Engine:
    """An engine for `url` with the settings the store relies on (see module notes)."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise StoreError(f"{safe_url(url)}: not a database URL") from None
    kwargs: dict[str, Any] = {"echo": echo}
    if parsed.get_backend_name() == "sqlite":
        kwargs["connect_args"] = {
            "timeout": SQLITE_BUSY_TIMEOUT_SECONDS,
            "check_same_thread": False,
        }
        in_memory = parsed.database in (None, "", ":memory:")
        if in_memory:
            # One shared connection, or every checkout would see a new empty database.
            kwargs["poolclass"] = StaticPool
        else:
            kwargs["connect_args"]["factory"] = TurnTakingConnection
        engine = create_engine(parsed, **kwargs)
        _configure_sqlite(engine, None if in_memory else str(parsed.database))
        return engine
    try:
        engine = create_engine(parsed, **kwargs)
    except (ArgumentError, ImportError) as exc:
        raise StoreError(f"{safe_url(url)}: unsupported database URL ({exc})") from None
    _ping_idle_connections(engine)
    return engine


# A pooled connection idle this long is pinged before it is used again: a database that
# restarted meanwhile costs a reconnect, not a failed request. One checked in moments ago
# is used as it is (a ping on every checkout was a quarter of a SCIM request's round trips).
PING_AFTER_IDLE_SECONDS = 1.0


def _ping_idle_connections(engine: Engine) -> None:
    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < PING_AFTER_IDLE_SECONDS:
            return  # new, or in use moments ago
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as err:
            # As pool_pre_ping does: the server went away, so every pooled connection
            # is stale; the pool reconnects and the checkout goes on.
            raise InvalidatePoolError() from err


def _configure_sqlite(engine: Engine, database: str | None) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control from the sqlite3 module (which would otherwise begin
        # transactions late and break SAVEPOINT), and emit BEGIN ourselves below.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys = ON")
        # WAL: readers never block the writer, nor the writer readers.
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        # Checkpoint the WAL every 10,000 pages (40 MiB), not SQLite's 1,000: a large apply's
        # chunks each passed 1,000 and paid a checkpoint, its page copies and fsync, per
        # commit (a 100,000-user first cycle: 17.3 s -> 13.9 s wall, 12.9 -> 11.6 s CPU).
        cursor.execute(f"PRAGMA wal_autocheckpoint = {WAL_CHECKPOINT_PAGES}")
        cursor.close()

    @event.listens_for(engine, "checkin")
    def _on_checkin(dbapi_connection: Any, record: Any) -> None:
        # A connection a large apply used goes back to the pool with SQLite's own cache size.
        if record.info.pop(_LARGE_CACHE, False) and dbapi_connection is not None:
            try:
                dbapi_connection.execute(f"PRAGMA cache_size = -{SQLITE_CACHE_KIB}")
            except sqlite3.Error:
                pass  # a connection that broke is not used again

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = conn.get_execution_options().get(SQLITE_BEGIN, "DEFERRED")
        raw = conn.connection.dbapi_connection
        if mode != "DEFERRED" and database is not None and isinstance(raw, TurnTakingConnection):
            # Writers queue for their turn instead of polling in SQLite's busy handler.
            statement = f"BEGIN {mode}"
            try:
                raw.begin_write(database, SQLITE_BUSY_TIMEOUT_SECONDS, lambda: conn.exec_driver_sql(statement))
            except sqlite3.OperationalError as err:  # no turn within the busy timeout
                raise DBAPIError.instance(statement, None, err, sqlite3.Error) from err
        else:
            conn.exec_driver_sql(f"BEGIN {mode}")


def enlarge_page_cache(conn: Connection) -> None:
    """SQLite: a page cache of `SQLITE_APPLY_CACHE_KIB` for this connection until it goes
    back to the pool. A large apply inserts into indexes (the event log's by user and by
    group, memberships by user) at scattered places: with SQLite's 2 MiB a chunk's pages
    are spilled to the WAL and read back before it commits. Readers of a whole store keep
    the small cache: a larger one would only add to their peak."""
    if conn.dialect.name != "sqlite" or conn.connection.info.get(_LARGE_CACHE):
        return
    conn.exec_driver_sql(f"PRAGMA cache_size = -{SQLITE_APPLY_CACHE_KIB}")
    conn.connection.info[_LARGE_CACHE] = True


def _alembic_config() -> Config:
    from alembic.config import Config

    return Config(str(ALEMBIC_INI))


def _scripts() -> ScriptDirectory:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_alembic_config())


def _current(conn: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    heads = MigrationContext.configure(conn).get_current_heads()
    return heads[0] if heads else None


def _known(revision: str) -> bool:
    from alembic.script.revision import RevisionError
    from alembic.util import CommandError

    try:
        return _scripts().get_revision(revision) is not None
    except (CommandError, RevisionError):
        return False


def _upgrade(conn: Connection, revision: str) -> None:
    from alembic import command

    config = _alembic_config()
    config.attributes["connection"] = conn
    command.upgrade(config, revision)


def newest_revision_file() -> str:
    """The head revision by the versions folder's naming (`NNNN_*.py`, each revising the
    one before it; tests hold this to alembic's own head): known without importing alembic."""
    return max(p.name.split("_", 1)[0] for p in VERSIONS_DIR.glob("[0-9][0-9][0-9][0-9]_*.py"))


def _at_newest(store: Store) -> bool:
    """The common case, answered with one query and no alembic: the schema is current."""
    try:
        with store.engine.connect() as conn:
            current = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
    except SQLAlchemyError:
        return False  # no version table yet, or unreadable: the full check says which
    return current == newest_revision_file()


def _ensure_current(store: Store) -> None:
    if _at_newest(store):
        return
    head = store.head()
    with store.engine.connect() as conn:
        current = _current(conn)
        if current == head:
            return
        fresh_sqlite = store.is_sqlite and current is None and not inspect(conn).get_table_names()
    if fresh_sqlite:
        with store.begin_write() as conn:
            # Re-check under the write lock: another process may have just migrated it.
            if _current(conn) is None:
                _upgrade(conn, "head")
        return
    if current is not None and not _known(current):
        raise StoreError(
            f"database at {store.url} has schema revision {current}, unknown to this "
            "version of dirsync: upgrade dirsync"
        )
    raise StoreError(f"database at {store.url} is not migrated: run `dirsync db upgrade`")
