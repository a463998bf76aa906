"""`dirsync simulate okta|entra` and `dirsync simulate admin` through the command line: an
admin's change reaches `dirsync sync`, `--state-dir` survives a restart, and Ctrl-C or
SIGTERM stops the simulator and removes its temporary files."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from tests.simulator.running import Simulator, Workspace, admin


def by_email(export: dict[str, object]) -> dict[str, dict[str, object]]:
    return {u["email"]: u for u in export["users"]}  # type: ignore[attr-defined, index]


def group_names(export: dict[str, object]) -> set[str]:
    return {g["name"] for g in export["groups"]}  # type: ignore[attr-defined, index]


def test_okta_admin_changes_reach_sync_and_the_state_dir_survives_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "okta-state"
    workspace = Workspace(tmp_path)
    simulator = Simulator("okta", "--users", "12", "--groups", "3", "--state-dir", str(state))
    try:
        workspace.point_at(simulator)
        workspace.sync()
        before = workspace.export()
        assert by_email(before)["ada.lovelace.0@example.com"]["active"] is True
        assert "Team 0002" in group_names(before)

        for args in (("add-user", "zed@example.com", "--first-name", "Zed", "--group", "Team 0001"),
                     ("disable-user", "ada.lovelace.0@example.com"),
                     ("rename-group", "Team 0002", "Platform")):
            done = admin("--state-dir", str(state), *args)
            assert done.returncode == 0, done.stderr
        assert "incremental" in workspace.sync()

        after = workspace.export()
        users = by_email(after)
        assert users["zed@example.com"]["active"] is True
        assert users["ada.lovelace.0@example.com"]["active"] is False
        assert "Platform" in group_names(after) and "Team 0002" not in group_names(after)
        assert "zed@example.com" in next(g for g in after["groups"] if g["name"] == "Team 0001")["members"]
        assert simulator.stop() == 0
    finally:
        simulator.close()

    restarted = Simulator("okta", "--state-dir", str(state))
    try:
        assert restarted.directory_table() == simulator.directory_table()  # same URL, token and CA
        assert "no changes" in workspace.sync()  # the old config and token still read it
        assert workspace.export() == after
        assert restarted.stop(signal.SIGTERM) == 0
    finally:
        restarted.close()
    assert {p.name for p in state.iterdir()} == {"ca.pem", "ca-key.pem", "state.json"}


def test_entra_admin_changes_reach_sync_through_delta_links(tmp_path: Path) -> None:
    workspace = Workspace(tmp_path)
    simulator = Simulator("entra", "--users", "12", "--groups", "3")
    try:
        workspace.point_at(simulator)
        token = simulator.value(r"SIMULATOR_ADMIN_TOKEN=(\S+)$")
        connection = ("--url", simulator.value(r"graph url\s*: (\S+)$"), "--ca-bundle", str(simulator.ca_bundle))
        workspace.sync()
        for args in (("add-user", "ann@contoso.example", "--last-name", "Lee", "--group", "Group 00000"),
                     ("disable-user", "user000001@contoso.example"),
                     ("rename-group", "Group 00002", "Platform")):
            done = admin(*connection, *args, token=token)
            assert done.returncode == 0, done.stderr
        assert "incremental" in workspace.sync()

        after = workspace.export()
        users = by_email(after)
        assert users["ann@contoso.example"]["active"] is True
        assert users["user000001@contoso.example"]["active"] is False
        assert "Platform" in group_names(after) and "Group 00002" not in group_names(after)
        assert simulator.stop() == 0
    finally:
        simulator.close()


@pytest.mark.parametrize("kind", ["okta", "entra"])
def test_ctrl_c_stops_the_simulator_and_removes_its_temporary_files(kind: str) -> None:
    simulator = Simulator(kind, "--users", "5", "--groups", "1")
    try:
        assert simulator.ca_bundle.exists()
        assert simulator.stop(signal.SIGINT) == 0
    finally:
        simulator.close()
    assert not simulator.ca_bundle.parent.exists()


def test_sigterm_stops_the_simulator_and_keeps_its_state(tmp_path: Path) -> None:
    simulator = Simulator("entra", "--users", "5", "--groups", "1", "--state-dir", str(tmp_path))
    try:
        assert admin("--state-dir", str(tmp_path), "delete-group", "Group 00000").returncode == 0
        assert simulator.stop(signal.SIGTERM) == 0
    finally:
        simulator.close()
    saved = json.loads((tmp_path / "state.json").read_text())
    assert [g["display_name"] for g in saved["tenant"]["groups"]] == []


def test_admin_errors_are_one_line_with_an_exit_code(tmp_path: Path) -> None:
    simulator = Simulator("okta", "--users", "3", "--groups", "1", "--state-dir", str(tmp_path))
    try:
        missing = admin("--state-dir", str(tmp_path), "rename-group", "No Such Team", "X")
        assert (missing.returncode, missing.stderr) == (4, "dirsync: no group 'No Such Team'\n")

        url = simulator.value(r"org URL:\s+(\S+)$")
        wrong = admin("--url", url, "--ca-bundle", str(simulator.ca_bundle), "info", token="not-the-token")
        assert (wrong.returncode, wrong.stderr) == (1, "dirsync: the admin token is missing or wrong\n")

        nothing = admin("--state-dir", str(tmp_path), "disable-user")
        assert nothing.returncode == 1 and nothing.stderr.count("\n") == 1
        assert simulator.stop() == 0
    finally:
        simulator.close()


def test_admin_without_a_way_to_reach_the_simulator_is_a_usage_error(tmp_path: Path) -> None:
    done = admin("--state-dir", str(tmp_path / "nothing-here"), "info")
    assert done.returncode == 2
    assert "holds no simulator state" in done.stderr
