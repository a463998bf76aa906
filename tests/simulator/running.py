"""`dirsync` as a user runs it, in subprocesses: a simulator serving in the background, and
one-shot commands (`sync`, `export`, `simulate admin`) against it."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
# A bound for waits on a child process: generous, so a busy machine never fails a test;
# a simulator that does not stop at all still fails it.
PROCESS_WAIT_SECONDS = 120


def dirsync_command() -> str:
    path = shutil.which("dirsync", path=str(Path(sys.executable).parent)) or shutil.which("dirsync")
    if path is None:
        pytest.fail("the dirsync command is not installed: pip install -e '.[test]'")
    return path


def environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DIRSYNC_", "OKTA_", "ENTRA_", "SIMULATOR_"))}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    return {**env, **extra}


class Simulator:
    """`dirsync simulate KIND ARGS` in the background, read up to its "Press Ctrl-C" line."""

    def __init__(self, kind: str, *args: str) -> None:
        self.kind = kind
        self.process = subprocess.Popen([dirsync_command(), "simulate", kind, *args], stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True, env=environment())
        assert self.process.stdout is not None
        lines = []
        for line in self.process.stdout:
            lines.append(line)
            if line.startswith("Press Ctrl-C"):
                break
        self.output = "".join(lines)
        assert self.output.endswith("Press Ctrl-C to stop.\n"), self.output + self.process.stderr.read()

    def value(self, pattern: str) -> str:
        found = re.search(pattern, self.output, re.MULTILINE)
        assert found is not None, f"{pattern!r} not in:\n{self.output}"
        return found.group(1)

    @property
    def ca_bundle(self) -> Path:
        return Path(self.value(r"CA bundle\s*: (\S+)$"))

    def directory_table(self) -> tuple[str, dict[str, str]]:
        """The `[directories.NAME]` table it printed, and the environment its secret needs."""
        lines = self.output.splitlines()
        start = next(i for i, line in enumerate(lines) if line.strip().startswith("[directories."))
        table = [line.strip() for line in lines[start:] if line.strip() and not line.strip().startswith("#")]
        table = table[: next((i for i, line in enumerate(table[1:], 1) if "=" not in line), len(table))]
        if self.kind == "okta":
            secret = {"OKTA_API_TOKEN": self.value(r"API token: (\S+)$")}
        else:
            secret = {"ENTRA_CLIENT_SECRET": self.value(r"client secret\s*: (\S+)$")}
        return "\n".join(table) + "\n", secret

    def stop(self, signum: int = signal.SIGINT) -> int:
        """Send `signum` and wait for the exit; its exit code."""
        self.process.send_signal(signum)
        code = self.process.wait(timeout=PROCESS_WAIT_SECONDS)
        self.close()
        return code

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=PROCESS_WAIT_SECONDS)
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()


class Workspace:
    """A folder with a SQLite store and a dirsync.toml naming one simulated directory."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.config = folder / "dirsync.toml"
        self.secrets: dict[str, str] = {}

    def point_at(self, simulator: Simulator) -> None:
        table, self.secrets = simulator.directory_table()
        self.config.write_text(f'[store]\nurl = "sqlite:///{self.folder / "dirsync.db"}"\n\n{table}')

    def dirsync(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([dirsync_command(), "--config", str(self.config), *args], capture_output=True,
                              text=True, timeout=PROCESS_WAIT_SECONDS * 5, env=environment(**self.secrets),
                              cwd=self.folder)

    def sync(self) -> str:
        done = self.dirsync("sync")
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    def export(self) -> dict[str, Any]:
        import json

        done = self.dirsync("export", "--json")
        assert done.returncode == 0, done.stderr
        exported: dict[str, Any] = json.loads(done.stdout)
        return exported


def admin(*args: str, token: str | None = None) -> subprocess.CompletedProcess[str]:
    """`dirsync simulate admin ARGS`."""
    extra = {"SIMULATOR_ADMIN_TOKEN": token} if token else {}
    return subprocess.run([dirsync_command(), "simulate", "admin", *args], capture_output=True, text=True,
                          timeout=PROCESS_WAIT_SECONDS, env=environment(**extra))
