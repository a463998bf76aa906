"""Start states and uninterrupted reference cycles, built once per backend and module.

Two cycles of one large file directory (builders.large_org, then a_day_later):
- `first`: the first cycle, mass creation, from a store holding only local objects;
- `mixed`: the next day's cycle, every kind of change, from the store the first cycle and
  one that suspended 30 users left.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from reconcile.cycle import run_cycle
from store import Store
from tests.conftest import PG_ADMIN
from tests.crash.builders import (
    DIRECTORY,
    a_day_later,
    add_local_objects,
    large_org,
    load,
    settings_file,
    with_suspensions,
    write_directory,
)
from tests.crash.harness import (
    PostgresStates,
    Reference,
    SqliteStates,
    States,
    build_state,
    reference,
)


class Scenarios:
    """The start states of one backend and the reference run of each scenario."""

    def __init__(self, states: States, folder: Path, *, fresh: bool) -> None:
        self.states = states
        self.folder = folder
        self.fresh = fresh
        org = large_org()
        first_file = write_directory(folder / "org.json", org)
        suspended_file = write_directory(folder / "org-suspensions.json", with_suspensions(org))
        mixed_file = write_directory(folder / "org-a-day-later.json", a_day_later(with_suspensions(org)))

        def local_objects(store: Store) -> None:
            add_local_objects(store, load(settings_file(folder, "sqlite://", first_file)))

        def two_cycles_done(store: Store) -> None:
            local_objects(store)
            for directory_file in (first_file, suspended_file):
                settings = load(settings_file(folder, "sqlite://", directory_file))
                result = run_cycle(settings, DIRECTORY, store=store)
                assert result.status == "succeeded", result.error

        empty = build_state(states, "local_only", local_objects)
        synced = build_state(states, "synced", two_cycles_done)
        self.references = {
            "first": reference(states, empty, first_file, folder / "reference-first", fresh=fresh),
            "mixed": reference(states, synced, mixed_file, folder / "reference-mixed", fresh=fresh),
        }

    def __getitem__(self, name: str) -> Reference:
        return self.references[name]


@pytest.fixture(scope="module")
def sqlite_scenarios(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenarios]:
    folder = tmp_path_factory.mktemp("crash-sqlite")
    yield Scenarios(SqliteStates(folder), folder, fresh=False)


@pytest.fixture(scope="module")
def postgres_scenarios(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenarios]:
    try:
        states = PostgresStates(PG_ADMIN, f"dirsync_crash_{os.getpid()}")
    except psycopg.Error as exc:
        pytest.skip(f"PostgreSQL at {PG_ADMIN!r} is unreachable: {str(exc).strip().splitlines()[0]}")
    try:
        yield Scenarios(states, tmp_path_factory.mktemp("crash-postgres"), fresh=True)
    finally:
        states.close()
