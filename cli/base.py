"""What every `dirsync` command shares: settings, the store, exit codes, output helpers."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

import config
from config import Settings

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_HALTED, EXIT_REFUSED = 0, 1, 2, 3, 4
# What the command was asked about does not exist (a user, a group, a staged plan).
EXIT_NOT_FOUND = EXIT_REFUSED


class Exit(Exception):
    """Leave with `code`, after printing `message` (if any) on stderr."""

    def __init__(self, code: int, message: str | None = None) -> None:
        super().__init__(message or "")
        self.code = code
        self.message = message


class Context:
    """What every command shares: the settings (loaded once) and the store (opened lazily)."""

    def __init__(self, config_path: str | None) -> None:
        self.settings: Settings = config.load(config_path)
        self._store: Any = None

    @property
    def store(self) -> Any:
        if self._store is None:
            from store import open_store

            self._store = open_store(self.settings.store.url)
        return self._store

    @property
    def reader(self) -> Any:
        """The store for commands that only read: an embedded store that does not exist
        yet is not created (an empty one stands in), so looking never leaves a file behind."""
        if self._store is None and self._missing_sqlite_file():
            from store import open_store

            self._store = open_store("sqlite://")
        return self.store

    def _missing_sqlite_file(self) -> bool:
        from sqlalchemy.engine import make_url

        try:
            url = make_url(self.settings.store.url)
        except Exception:
            return False  # `store` says what is wrong with it
        database = url.database
        if url.get_backend_name() != "sqlite" or not database or database == ":memory:":
            return False
        return not Path(database).exists()

    def close(self) -> None:
        if self._store is not None:
            self._store.dispose()


pass_ctx = click.make_pass_decorator(Context)


def echo_json(value: object) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False, default=str))


# The read phase says how far it got at most this often (a silent sync looks hung).
READ_PROGRESS_SECONDS = 2.0
CLEAR = "\r\033[K"


@contextmanager
def progress_printer(enabled: bool, min_total: int = 1000) -> Iterator[Callable[[str, int, int], None]]:
    """A cycle progress callback: a live bar on a terminal, a line per tenth otherwise.
    Work smaller than `min_total` steps shows none. The read phase (pages and records so
    far, no total) says where it is every couple of seconds once it has taken that long."""
    tty = sys.stderr.isatty()
    last: dict[str, int] = {}
    said_read = [time.monotonic()]  # a read that ends within the first seconds says nothing

    def show(phase: str, done: int, total: int) -> None:
        if not enabled:
            return
        if phase == "read":  # pages and records so far: there is no total to count down
            now = time.monotonic()
            if now - said_read[0] >= READ_PROGRESS_SECONDS:
                said_read[0] = now
                click.echo(f"{CLEAR if tty else ''}  read: {done} pages, {total} records", err=True, nl=not tty)
            return
        if total < min_total:
            return
        step = done * 10 // total
        if tty:
            width = 30
            filled = width * done // total
            click.echo(f"\r  {phase:<6} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}", err=True, nl=done >= total)
        elif last.get(phase) != step:
            last[phase] = step
            click.echo(f"  {phase}: {done}/{total}", err=True)

    yield show
