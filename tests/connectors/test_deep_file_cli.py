"""`dirsync sync` of a directory file nested 10,000 levels deep: one clear line and exit 1,
not a RecursionError traceback. Runs the real command in a child process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def test_sync_of_a_deeply_nested_file_fails_with_one_line_and_exit_1(tmp_path: Path) -> None:
    depth = 10_000
    (tmp_path / "directory.json").write_text('{"users": ' + "[" * depth + "]" * depth + "}")
    (tmp_path / "dirsync.toml").write_text(
        f'[store]\nurl = "sqlite:///{tmp_path / "store.db"}"\n\n'
        '[directories.hr]\nkind = "file"\npath = "directory.json"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIRSYNC_")}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])

    done = subprocess.run([sys.executable, "-c", "from cli.main import main; main()", "sync", "hr"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)

    assert done.returncode == 1, done.stdout + done.stderr
    assert "Traceback" not in done.stderr and "RecursionError" not in done.stdout + done.stderr
    errors = [line for line in done.stdout.splitlines() if "too deeply" in line]
    assert errors == [f"hr: directory file {tmp_path / 'directory.json'} is not a directory export:"
                      " it nests arrays or objects too deeply to read"]
