"""The S2 guard's counts of the store (bound users, active ones, managed memberships) grow
with the directory: a cycle takes them only where a limit could trip, never for a no-op."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import event

from config import parse
from reconcile.cycle import run_cycle
from store import Store, open_store


@contextmanager
def counting(store: Store) -> Iterator[list[str]]:
    """The COUNT statements the store runs inside the block."""
    seen: list[str] = []

    def note(conn, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
        if "count(" in statement.lower():
            seen.append(statement)

    event.listen(store.engine, "before_cursor_execute", note)
    try:
        yield seen
    finally:
        event.remove(store.engine, "before_cursor_execute", note)


def test_a_no_op_cycle_counts_nothing_a_full_one_does(tmp_path: Path) -> None:
    export = tmp_path / "hr.json"
    export.write_text(json.dumps({
        "users": [{"id": f"u{n}", "email": f"p{n}@example.com", "active": True} for n in range(3)],
        "groups": [{"id": "g1", "name": "Staff", "members": ["u0", "u1"]}],
    }))
    url = f"sqlite:///{tmp_path / 'dirsync.db'}"
    store = open_store(url)
    settings = parse({"store": {"url": url}, "directories": {"hr": {"kind": "file", "path": str(export)}}}, {})
    try:
        with counting(store) as first:
            assert run_cycle(settings, "hr", store=store).status == "succeeded"
        with counting(store) as no_op:
            result = run_cycle(settings, "hr", store=store)
        with counting(store) as full:
            assert run_cycle(settings, "hr", store=store, full=True).status == "succeeded"
    finally:
        store.dispose()

    assert (result.status, result.mode) == ("succeeded", "incremental")
    assert no_op == []
    # A full read may report no users at all: the empty-read test needs the counts.
    assert len(first) == len(full) == 2
