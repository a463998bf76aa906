"""README's first command: `dirsync demo` runs real syncs and leaves a store to inspect."""

from __future__ import annotations

import json
import sys

import pytest

from cli.main import main


def run(monkeypatch, capsys, *args):
    monkeypatch.setattr(sys, "argv", ["dirsync", *args])
    with pytest.raises(SystemExit) as info:
        main()
    out = capsys.readouterr()
    return int(info.value.code or 0), out.out, out.err


def test_demo_syncs_every_kind_of_directory_and_leaves_an_inspectable_store(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DIRSYNC_CONFIG", raising=False)
    code, out, err = run(monkeypatch, capsys, "demo", "--dir", str(tmp_path / "demo"))
    assert code == 0, err
    for shown in ("rejected group Administrators: reserved-name", "name-too-long", "= link group Support -> okta:",
                  "= link group Facilities -> entra:", "dirsync status", "invite ana.diaz@example.com: revoke"):
        assert shown in out

    code, out, err = run(monkeypatch, capsys, "--config", str(tmp_path / "demo" / "dirsync.toml"), "export", "--json")
    assert code == 0, err
    state = json.loads(out)
    owners = {u["managed_by"] for u in state["users"]}
    assert owners == {"hr", "okta", "entra"}
    by_email = {u["email"]: u for u in state["users"]}
    assert by_email["farid.haddad@example.com"]["active"] is False  # the leaver, kept
    assert by_email["dana.cohen@example.com"]["external_id"] == "u4"  # renamed, same record
    assert by_email["katherine.johnson@example.com"]["managed_by"] == "okta"
    assert state["invites"] == [{"email": "ana.diaz@example.com", "status": "revoked"}]
    names = {g["name"] for g in state["groups"]}
    assert "Administrators" in names and not any(len(n) >= 25 for n in names)


def test_demo_file_only_needs_no_simulator(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code, out, err = run(monkeypatch, capsys, "demo", "--file-only", "--dir", str(tmp_path / "d"))
    assert code == 0, err
    assert "okta" not in out.split("dirsync status")[1].split("The store now")[0]
