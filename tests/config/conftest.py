"""Running `dirsync` as a user would, in a folder of its own with a clean environment."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from config.settings import ENV_PREFIX
from tests.cli.conftest import Workspace


@pytest.fixture
def cli(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Workspace:
    """A workspace with no `dirsync.toml` yet and no `DIRSYNC_*` variable inherited."""
    monkeypatch.chdir(tmp_path)
    for name in [n for n in os.environ if n.startswith(ENV_PREFIX)]:
        monkeypatch.delenv(name)
    return Workspace(tmp_path, capsys, monkeypatch)
