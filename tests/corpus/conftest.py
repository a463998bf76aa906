"""A store with the corpus baseline already synced, for each kind of directory."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.corpus.directories import (
    Directory,
    FileDirectory,
    GraphDirectory,
    OktaDirectory,
)
from tests.corpus.records import BASELINE_GROUPS, BASELINE_USERS, FILE, OKTA

MakeDirectory = Callable[[str], Directory]


@pytest.fixture
def make_directory(tmp_path: Path) -> Iterator[MakeDirectory]:
    """Builds a directory of one kind holding the baseline records."""
    made: list[Directory] = []

    def make(kind: str) -> Directory:
        directory: Directory
        if kind == FILE:
            directory = FileDirectory(tmp_path / "directory.json")
        elif kind == OKTA:
            directory = OktaDirectory()
        else:
            directory = GraphDirectory()
        made.append(directory)
        directory.put(BASELINE_USERS, BASELINE_GROUPS)
        return directory

    yield make
    for directory in made:
        directory.close()
