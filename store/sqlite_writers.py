"""SQLite write transactions take turns: writers wait in a queue, not in SQLite's busy handler.

SQLite lets one write transaction at a time. A `BEGIN IMMEDIATE` that finds the lock
taken retries in SQLite's busy handler, which sleeps 1, 2, 5, ... up to 100 ms between
tries: a writer can sleep 100 ms past a lock held for 2 ms, and one that keeps missing
the moment it is free can wait for seconds while others go ahead (the SCIM endpoint's
concurrent POSTs waited 14 ms on average and 230 ms at p99 for a 2 ms transaction).

Here every write transaction of a database file first takes its turn: a lock shared by
the threads of a process (waited on with the store's busy timeout, as SQLite would), then
an exclusive `flock` on `<database>-writer.lock` shared by the processes. Both wake the
next writer the moment the turn is given back: after the COMMIT or ROLLBACK, or when the
connection closes (a process that dies gives its turn back with its files). SQLite's own
lock is still taken and still decides; a process that does not take turns (the `sqlite3`
shell, say) is waited for by the busy handler as before.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
from typing import Any

_turns: dict[str, _Turn] = {}
_turns_lock = threading.Lock()


class _Turn:
    """The write turn of one database file, in this process."""

    def __init__(self, path: str) -> None:
        self.path = f"{path}-writer.lock"
        self.threads = threading.Lock()
        self._fd: int | None = None
        self._pid = 0

    def take(self, timeout: float) -> None:
        if not self.threads.acquire(timeout=timeout):
            raise sqlite3.OperationalError("database is locked")
        try:
            fcntl.flock(self._file(), fcntl.LOCK_EX)
        except BaseException:
            self.threads.release()
            raise

    def give_back(self) -> None:
        try:
            # A child of fork() shares its parent's open file: unlocking it there would
            # give the parent's turn away.
            if self._fd is not None and self._pid == os.getpid():
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self.threads.release()

    def _file(self) -> int:
        # One open file per process: flock excludes other open files, and a child of
        # fork() shares its parent's, so a child opens its own.
        if self._fd is None or self._pid != os.getpid():
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            self._pid = os.getpid()
        return self._fd


def _turn(database: str) -> _Turn:
    path = os.path.realpath(database)
    with _turns_lock:
        turn = _turns.get(path)
        if turn is None:
            turn = _turns[path] = _Turn(path)
        return turn


def _forget_after_fork() -> None:
    # A lock another thread held at fork() would stay held in the child forever.
    global _turns_lock
    _turns_lock = threading.Lock()
    _turns.clear()


os.register_at_fork(after_in_child=_forget_after_fork)


class TurnTakingConnection(sqlite3.Connection):
    """A sqlite3 connection that gives its write turn back when its transaction ends."""

    _turn: _Turn | None = None

    def begin_write(self, database: str, timeout: float, begin: Any) -> None:
        """Wait for the write turn of `database`, then run `begin()` (the BEGIN)."""
        turn = _turn(database)
        turn.take(timeout)
        self._turn = turn
        try:
            begin()
        except BaseException:
            self._give_back()
            raise

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            try:
                ended = not self.in_transaction
            except sqlite3.Error:  # closed
                ended = True
            if ended:  # a COMMIT that failed leaves the transaction to its ROLLBACK
                self._give_back()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self._give_back()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._give_back()

    def _give_back(self) -> None:
        turn, self._turn = self._turn, None
        if turn is not None:
            turn.give_back()
