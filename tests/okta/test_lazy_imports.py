"""A command loads no vendor SDK it does not use: `okta` and `msal` cost seconds and tens of
MB to import, so only a process that reads Okta or asks Entra for a token imports them.
Each check runs in a fresh interpreter, where `sys.modules` tells what was imported."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from simulators.okta import OktaSimulator

ROOT = Path(__file__).resolve().parents[2]
SDKS = ("okta", "okta.client", "msal")
# The simulators' own stack (state, TLS certificates): only `demo` and `simulate` need it.
SIMULATOR = ("simulators.state", "trustme")


def loaded_after(script: str, tmp_path: Path, modules: tuple[str, ...] = SDKS, **env: str) -> dict[str, bool]:
    """Which of `modules` are in `sys.modules` after `script` ran in a new interpreter."""
    probe = f"{script}\nimport sys, json\nprint(json.dumps({{m: m in sys.modules for m in {modules!r}}}))\n"
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT), "DIRSYNC_CONFIG": str(tmp_path / "none.toml"), **env},
    )
    assert result.returncode == 0, result.stderr
    loaded: dict[str, bool] = json.loads(result.stdout.strip().splitlines()[-1])
    return loaded


def test_the_cli_and_a_file_cycle_import_no_vendor_sdk(tmp_path: Path) -> None:
    (tmp_path / "hr.json").write_text(json.dumps({"users": [], "groups": []}))
    script = f"""
import sys
from cli.main import main
for argv in (["--help"], ["status"]):
    sys.argv = ["dirsync", *argv]
    try:
        main()
    except SystemExit:
        pass
from config import parse
from reconcile.cycle import run_cycle
from store import open_store
url = "sqlite:///{tmp_path / 'dirsync.db'}"
open_store(url, check_schema=False).upgrade()
settings = parse({{"store": {{"url": url}},
                  "directories": {{"hr": {{"kind": "file", "path": "{tmp_path / 'hr.json'}"}}}}}}, {{}})
assert run_cycle(settings, "hr").status == "succeeded"
"""
    assert loaded_after(script, tmp_path) == {"okta": False, "okta.client": False, "msal": False}
    assert loaded_after(script, tmp_path, SIMULATOR) == {"simulators.state": False, "trustme": False}


def test_an_okta_read_imports_the_request_path_only(sim: OktaSimulator, tmp_path: Path) -> None:
    script = f"""
from config import parse
from connectors import build_connector
settings = parse({{"directories": {{"o": {{"kind": "okta", "org_url": "{sim.base_url}", "token_env": "OKTA_TOKEN",
                                          "ca_bundle": "{sim.ca_path}"}}}}}}, {{}})
connector = build_connector(settings, settings.directory("o"))
assert connector.read(None).users
"""
    loaded = loaded_after(script, tmp_path, OKTA_TOKEN=sim.api_token)

    assert loaded == {"okta": True, "okta.client": False, "msal": False}
