"""scim2-tester's RFC 7643/7644 checks against a real `dirsync serve` on 127.0.0.1.

scim2-tester fills `userName` and group names with random UUIDs, which R1 (an email is
the key) and R2 (names shorter than 25 characters) refuse by design; it runs here with
valid values for those two fields, and every MUST check must pass.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

scim2_tester = pytest.importorskip("scim2_tester")

from scim2_client.client import BaseSyncSCIMClient  # noqa: E402
from scim2_tester import Status, check_server  # noqa: E402
from scim2_tester import filling  # noqa: E402
from scim2_tester.checkers import patch_add, patch_replace  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


class HttpxSCIMClient(BaseSyncSCIMClient):
    """scim2-client's network engine, over httpx (its own engine needs httpx2)."""

    def __init__(self, client: httpx.Client, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.client = client

    def _stays_under_base_url(self, endpoint: str) -> bool:
        url = self.client.build_request("GET", endpoint).url
        base = self.client.base_url
        return (url.scheme, url.host, url.port) == (base.scheme, base.host, base.port) and \
            url.raw_path.startswith(base.raw_path)

    def _parse_json(self, response: Any) -> Any:
        return response.json()

    def request(self, method: str, url: str, **kwargs: Any) -> Any:
        return self.client.request(method, url, **kwargs)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """`dirsync serve` on a free port with a scim directory `okta`: (base URL, token)."""
    port = _free_port()
    config = tmp_path / "dirsync.toml"
    config.write_text(f'[store]\nurl = "sqlite:///{tmp_path / "dirsync.db"}"\n\n'
                      f'[web]\npublic_url = "http://127.0.0.1:{port}"\n\n[directories.okta]\nkind = "scim"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIRSYNC_")}
    env |= {"DIRSYNC_CONFIG": str(config), "PYTHONPATH": str(ROOT)}
    token = subprocess.run([sys.executable, "-m", "cli.main", "scim", "token", "okta", "--json"], env=env,
                           capture_output=True, text=True, check=True, cwd=tmp_path)
    issued = json.loads(token.stdout)
    server = subprocess.Popen([sys.executable, "-m", "cli.main", "serve", "--port", str(port)], env=env,
                              cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"dirsync serve did not start: {server.stderr.read() if server.stderr else ''}")
                time.sleep(0.1)
        yield issued["base_url"], issued["token"]
    finally:
        server.terminate()
        server.wait(timeout=10)


def _valid_values(original: Any) -> Any:
    def generate(context: Any, path: Any, mutability: Any = None, required: Any = None) -> Any:
        value = original(context, path, mutability=mutability, required=required)
        text = str(path)
        if value is None:
            return value
        if text.endswith("userName"):
            return f"{uuid.uuid4().hex[:12]}@example.com"
        binding = path.resolve()
        model = getattr(binding.target_model if binding else None, "__name__", "")
        if text.endswith("displayName") and "Group" in model:
            return f"g-{uuid.uuid4().hex[:12]}"
        return value
    return generate


def test_scim2_tester_finds_no_must_failure(served: tuple[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    base_url, token = served
    valid = _valid_values(filling.generate_random_value)
    for module in (filling, patch_add, patch_replace):
        monkeypatch.setattr(module, "generate_random_value", valid)
    with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as http:
        results = check_server(HttpxSCIMClient(http))

    failures = [f"{r.title}: {r.reason}" for r in results if r.status in (Status.ERROR, Status.CRITICAL)]
    passed = [r for r in results if r.status is Status.SUCCESS]
    assert not failures, "\n".join(failures)
    assert len(passed) > 50
