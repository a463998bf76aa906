"""What `dirsync sync` prints: dry runs that stay readable, failures that don't say "no changes"."""

from __future__ import annotations

from tests.cli.conftest import Workspace, user


def test_a_dry_run_shows_counts_and_the_first_twenty_of_each_kind(ws: Workspace) -> None:
    ws.write_directory([user(f"u{n}", f"user{n}@example.com") for n in range(45)])

    short = ws.run("sync", "--dry-run")
    full = ws.run("sync", "--dry-run", "--all")

    assert short.code == 0
    assert "plan for hr (full): 1 create-group, 45 create-user" in short.out
    assert sum(1 for line in short.out.splitlines() if line.strip().startswith("+ user")) == 20
    assert "... and 25 more create-user operations" in short.out
    assert sum(1 for line in full.out.splitlines() if line.strip().startswith("+ user")) == 45


def test_a_dry_run_that_a_safety_limit_would_halt_exits_3_and_changes_nothing(ws: Workspace) -> None:
    ws.write_directory([user(f"u{n}", f"user{n}@example.com") for n in range(20)])
    assert ws.run("sync").code == 0
    ws.write_directory([user(f"u{n}", f"user{n}@example.com") for n in range(5)])

    result = ws.run("sync", "--dry-run")

    assert result.code == 3, result.out + result.err
    assert "halted" in result.out
    assert all(u["active"] for u in ws.export()["users"])


def test_a_failed_run_does_not_say_no_changes(ws: Workspace) -> None:
    ws.directory_file.write_text("{not json")

    result = ws.run("sync")

    assert result.code == 1
    assert "no changes" not in result.out
    first = result.out.splitlines()[0]
    assert first.startswith("hr: failed (")
    assert "hr: hr:" not in result.out


def test_status_says_which_configuration_and_store_it_describes(ws: Workspace) -> None:
    result = ws.run("status")

    assert result.code == 0
    assert result.out.splitlines()[0] == f"config: {ws.folder / 'dirsync.toml'}"
    assert result.out.splitlines()[1].startswith("store:  ")


def test_status_without_a_config_file_says_so_and_creates_no_store(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("DIRSYNC_CONFIG", "DIRSYNC_STORE_URL"):
        monkeypatch.delenv(name, raising=False)
    ws = Workspace(tmp_path, capsys, monkeypatch)

    result = ws.run("status")

    assert result.code == 0
    assert result.out.startswith("no config file: looked for ./dirsync.toml and $DIRSYNC_CONFIG")
    assert list(tmp_path.iterdir()) == []
