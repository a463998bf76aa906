"""Alembic environment for the dirsync store.

`store.Store.upgrade()` hands over an open connection in `config.attributes["connection"]`;
the alembic CLI instead names the database with `-x url=...` (or `$DIRSYNC_STORE_URL`).
Batch mode keeps future ALTERs working on SQLite.
"""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import Connection

from store.engine import create_store_engine
from store.models import Base

config = context.config
target_metadata = Base.metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url") or os.environ.get("DIRSYNC_STORE_URL")
    if not url:
        raise SystemExit("name the database: alembic -x url=... (or set DIRSYNC_STORE_URL)")
    return url


if context.is_offline_mode():
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    given = config.attributes.get("connection")
    if given is not None:
        _run(given)
    else:
        engine = create_store_engine(_url())
        with engine.begin() as conn:
            _run(conn)
        engine.dispose()
