"""`dirsync sync --async` with no worker running: one clear line, exit 1, no traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import redis

from tests.worker.conftest import REDIS_URL


@pytest.mark.redis
def test_no_worker_answering_is_said_plainly(tmp_path: Path, redis_client: redis.Redis) -> None:
    (tmp_path / "d.json").write_text('{"users": [], "groups": []}')
    (tmp_path / "dirsync.toml").write_text(
        f'[store]\nurl = "sqlite:///{tmp_path / "s.db"}"\n[worker]\nbroker_url = "{REDIS_URL}"\n'
        '[directories.hr]\nkind = "file"\npath = "d.json"\n'
    )
    run = [sys.executable, "-m", "cli.main", "--config", str(tmp_path / "dirsync.toml"), "sync", "--async"]

    waited = subprocess.run([*run, "--timeout", "2"], capture_output=True, text=True, timeout=120)
    queued = subprocess.run([*run, "--no-wait"], capture_output=True, text=True, timeout=120)

    assert waited.returncode == 1
    assert waited.stdout.strip() == ("hr: no worker answered within 2 s: is `dirsync worker` running?"
                                     " The cycle stays queued until one does")
    assert "Traceback" not in waited.stderr + queued.stderr
    assert queued.returncode == 0 and queued.stdout.startswith("hr: queued as task ")
