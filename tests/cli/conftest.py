"""Run `dirsync` as a user would (its real entry point, exit code and streams), in-process."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from cli.main import main


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


@dataclass
class Workspace:
    folder: Path
    capsys: pytest.CaptureFixture[str]
    monkeypatch: pytest.MonkeyPatch

    @property
    def directory_file(self) -> Path:
        return self.folder / "directory.json"

    def write_directory(self, users: list[dict[str, Any]] | None = None, groups: list[dict[str, Any]] | None = None) -> None:
        self.directory_file.write_text(json.dumps({"users": users or [], "groups": groups or []}))

    def write_config(self, text: str) -> Path:
        path = self.folder / "dirsync.toml"
        path.write_text(text)
        return path

    def run(self, *args: str) -> Result:
        self.capsys.readouterr()
        self.monkeypatch.setattr(sys, "argv", ["dirsync", *args])
        with pytest.raises(SystemExit) as info:
            main()
        captured = self.capsys.readouterr()
        return Result(int(info.value.code or 0), captured.out, captured.err)

    def export(self) -> dict[str, Any]:
        result = self.run("export", "--json")
        assert result.code == 0, result.err
        return result.json()


def user(uid: str, email: str, *, active: bool = True, name: str | None = None) -> dict[str, Any]:
    return {"id": uid, "email": email, "display_name": name, "active": active}


@pytest.fixture
def ws(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, store_url: str) -> Workspace:
    """A folder with `dirsync.toml` naming a file directory `hr`, on SQLite and PostgreSQL."""
    monkeypatch.chdir(tmp_path)
    for name in ("DIRSYNC_CONFIG", "DIRSYNC_STORE_URL"):
        monkeypatch.delenv(name, raising=False)
    workspace = Workspace(tmp_path, capsys, monkeypatch)
    workspace.write_config(
        f'[store]\nurl = "{store_url}"\n\n[directories.hr]\nkind = "file"\npath = "directory.json"\n'
    )
    if not store_url.startswith("sqlite"):
        assert workspace.run("db", "upgrade").code == 0
    return workspace
