"""`dirsync runs` and `dirsync events`: tables with headers, per-object history across runs."""

from __future__ import annotations

import subprocess
import sys

from tests.cli.conftest import Workspace, user


def _three_runs(ws: Workspace) -> None:
    ws.write_directory([user("u1", "ana@example.com"), user("u2", "bo@example.com")],
                       [{"id": "g1", "name": "Engineering", "members": ["u1", "u2"]}])
    assert ws.run("sync").code == 0
    assert ws.run("sync").code == 0  # nothing changed
    ws.write_directory([user("u1", "ana@example.com", active=False)],
                       [{"id": "g1", "name": "Engineering", "members": ["u1"]}])
    assert ws.run("sync").code == 0


def test_events_of_one_user_across_runs_say_why_they_were_deactivated(ws: Workspace) -> None:
    _three_runs(ws)

    ana = ws.run("events", "--user", "ANA@example.com", "--json").json()
    bo = ws.run("events", "--user", "bo@example.com", "--json").json()

    assert [(e["action"], e["reason"]) for e in ana] == [
        ("deactivate-user", "disabled-in-idp"), ("remove-member", None), ("add-member", None), ("create-user", None)]
    assert [(e["action"], e["reason"]) for e in bo][0] == ("deactivate-user", "left-scope")
    assert {e["run_id"] for e in ana} == {1, 3}


def test_events_filter_by_group_action_and_outcome(ws: Workspace) -> None:
    _three_runs(ws)

    removed = ws.run("events", "--group", "engineering", "--action", "remove-member", "--json").json()
    applied = ws.run("events", "--outcome", "applied", "--directory", "hr", "--json").json()

    assert sorted(e["target"] for e in removed) == ["Engineering", "Engineering"]
    assert all(e["outcome"] == "applied" and e["directory"] == "hr" for e in applied)
    assert ws.run("events", "--user", "nobody@example.com").out.strip() == "no events match"


def test_events_and_runs_print_tables_with_a_header(ws: Workspace) -> None:
    _three_runs(ws)

    events = ws.run("events", "1").out.splitlines()
    runs = ws.run("runs").out.splitlines()

    assert events[0].split() == ["SEQ", "OUTCOME", "ACTION", "TARGET", "CHANGE", "REASON"]
    assert "applied" in events[1] and "{" not in events[0]
    assert runs[0].split()[:3] == ["RUN", "STARTED", "(UTC)"]
    assert len(runs) == 4


def test_runs_filter_by_status_and_hide_the_ones_that_changed_nothing(ws: Workspace) -> None:
    _three_runs(ws)

    all_runs = ws.run("runs", "--json").json()
    changed = ws.run("runs", "--hide-noop", "--json").json()
    failed = ws.run("runs", "--status", "failed").out

    assert [r["id"] for r in all_runs] == [3, 2, 1]
    assert [r["id"] for r in changed] == [3, 1]
    assert failed.strip() == "no runs match"


def test_a_reader_that_stops_early_is_not_an_error(ws: Workspace) -> None:
    # Far more than a pipe holds, so the writer meets the closed pipe.
    ws.write_directory([user(f"u{n}", f"user{n}@example.com") for n in range(3000)])
    assert ws.run("sync").code == 0
    command = f"{sys.executable} -m cli.main events 1 | head -1"

    done = subprocess.run(["bash", "-o", "pipefail", "-c", command], cwd=ws.folder, capture_output=True, text=True,
                          timeout=60)

    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert done.stdout.split()[0] == "SEQ"


def test_looking_at_an_embedded_store_that_does_not_exist_creates_no_file(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DIRSYNC_CONFIG", raising=False)
    monkeypatch.delenv("DIRSYNC_STORE_URL", raising=False)
    ws = Workspace(tmp_path, capsys, monkeypatch)
    ws.write_config('[store]\nurl = "sqlite:///never.db"\n')

    outputs = [ws.run(*command) for command in (["runs"], ["events", "--user", "a@example.com"],
                                                ["export", "--json"], ["explain", "a@example.com"])]

    assert [r.code for r in outputs] == [0, 0, 0, 4]
    assert outputs[0].out.strip() == "no runs yet"
    assert not (tmp_path / "never.db").exists()


def test_events_until_leaves_out_events_at_or_after_the_time(ws: Workspace) -> None:
    _three_runs(ws)
    every = ws.run("events", "--json").json()

    before_first = ws.run("events", "--until", "2000-01-01", "--json").json()
    before_far_future = ws.run("events", "--until", "2999-01-01", "--json").json()

    assert before_first == []
    assert [e["id"] for e in before_far_future] == [e["id"] for e in every] and every
