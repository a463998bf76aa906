"""`dirsync staged`, `approve`, `reject`, and what `sync` and `status` say about a halt."""

from __future__ import annotations

import re

import pytest

from tests.cli.conftest import Workspace, user

EVERYONE = [user(f"u{i}", f"u{i}@example.com") for i in range(1, 6)]


@pytest.fixture
def halted(ws: Workspace) -> int:
    """hr synced five users; three left and a sync halted (max_deactivations = 2). Its run id."""
    with ws.directory_file.parent.joinpath("dirsync.toml").open("a") as config:
        config.write("\n[safety]\nmax_deactivations = 2\n")
    ws.write_directory(EVERYONE, [{"id": "g1", "name": "Staff", "members": [u["id"] for u in EVERYONE]}])
    assert ws.run("sync").code == 0
    ws.write_directory(EVERYONE[:2], [{"id": "g1", "name": "Staff", "members": ["u1", "u2"]}])
    result = ws.run("sync")
    assert result.code == 3, result.out + result.err
    return int(re.search(r"dirsync approve (\d+)", result.out).group(1))


def active(ws: Workspace) -> list[str]:
    return sorted(u["email"] for u in ws.export()["users"] if u["active"])


def test_a_halted_sync_exits_3_and_says_how_to_decide(ws: Workspace, halted: int) -> None:
    result = ws.run("sync")

    assert result.code == 3
    assert "dirsync staged hr" in result.out
    assert re.search(r"dirsync approve \d+", result.out)


def test_staged_json_lists_the_open_plan_with_its_deactivations_and_removals(ws: Workspace, halted: int) -> None:
    result = ws.run("staged", "--json")

    assert result.code == 0
    [plan] = result.json()
    assert (plan["run_id"], plan["directory"], plan["limit"]) == (halted, "hr", "max_deactivations")
    assert plan["deactivations"] == ["u3@example.com", "u4@example.com", "u5@example.com"]
    assert plan["removals"] == [{"group": "Staff", "email": f"u{i}@example.com"} for i in (3, 4, 5)]
    assert plan["created_at"]


def test_staged_text_names_the_run_the_people_and_the_commands(ws: Workspace, halted: int) -> None:
    result = ws.run("staged", "hr")

    assert result.code == 0
    assert f"run {halted}  hr" in result.out
    assert "deactivate u3@example.com" in result.out
    assert "remove u4@example.com from Staff" in result.out
    assert f"dirsync approve {halted}" in result.out


def test_staged_of_an_unknown_directory_is_a_usage_error(ws: Workspace) -> None:
    result = ws.run("staged", "nope")

    assert result.code == 2 and "directories.nope" in result.err


def test_staged_with_nothing_open_says_so(ws: Workspace) -> None:
    result = ws.run("staged")

    assert (result.code, result.out.strip()) == (0, "no staged plans")


def test_approve_applies_the_plan_and_exits_0_then_4_for_the_same_run(ws: Workspace, halted: int) -> None:
    result = ws.run("approve", str(halted), "--by", "alice")

    assert result.code == 0, result.err
    assert "approved by alice" in result.out
    assert active(ws) == ["u1@example.com", "u2@example.com"]
    again = ws.run("approve", str(halted))
    assert again.code == 4
    assert f"run {halted} is not an open staged plan: approved by alice" in again.err
    assert ws.run("staged", "--json").json() == []


def test_approve_of_an_unknown_run_exits_4(ws: Workspace) -> None:
    result = ws.run("approve", "12345")

    assert result.code == 4
    assert result.err.strip().count("\n") == 0 and "not an open staged plan" in result.err


def test_approve_drops_what_the_directory_no_longer_confirms(ws: Workspace, halted: int) -> None:
    ws.write_directory(EVERYONE[:2] + [EVERYONE[4]], [{"id": "g1", "name": "Staff", "members": ["u1", "u2", "u5"]}])

    result = ws.run("approve", str(halted), "--json")

    assert result.code == 0, result.err
    assert {d["target"] for d in result.json()["dropped"]} == {"u5@example.com", "Staff"}
    assert active(ws) == ["u1@example.com", "u2@example.com", "u5@example.com"]


def test_reject_closes_the_plan_and_exits_0_then_4(ws: Workspace, halted: int) -> None:
    result = ws.run("reject", str(halted), "--by", "bob")

    assert result.code == 0
    assert "rejected by bob" in result.out
    assert len(active(ws)) == 5
    assert ws.run("reject", str(halted)).code == 4
    assert ws.run("approve", str(halted)).code == 4


def test_status_shows_the_deactivations_awaiting_approval(ws: Workspace, halted: int) -> None:
    text = ws.run("status")
    data = ws.run("status", "--json").json()

    assert text.code == 0
    assert f"halted:      3 deactivations awaiting approval (run {halted}, since " in text.out
    assert (data[0]["halted"], data[0]["staged_run_id"], data[0]["staged_deactivations"]) == (True, halted, 3)


def test_sync_allow_deactivations_approves_what_it_computes(ws: Workspace, halted: int) -> None:
    result = ws.run("sync", "hr", "--allow-deactivations")

    assert result.code == 0, result.out + result.err
    assert active(ws) == ["u1@example.com", "u2@example.com"]
    assert ws.run("staged", "--json").json() == []


def test_allow_deactivations_always_reads_in_full(ws: Workspace) -> None:
    ws.write_directory([user("u1", "ana@example.com")])
    ws.run("sync")

    result = ws.run("sync", "--allow-deactivations", "--json")

    assert result.code == 0
    assert result.json()[0]["mode"] == "full"
    assert ws.run("sync", "--json").json()[0]["mode"] == "incremental"


def test_an_empty_read_is_applied_by_approve_never_by_allow_deactivations(ws: Workspace) -> None:
    ws.write_directory([user("u1", "ana@example.com")])
    ws.run("sync")
    ws.write_directory([])

    allowed = ws.run("sync", "--allow-deactivations")

    assert allowed.code == 3 and "does not apply an empty read" in allowed.out
    assert active(ws) == ["ana@example.com"]
    run_id = ws.run("staged", "--json").json()[0]["run_id"]
    assert ws.run("approve", str(run_id)).code == 0
    assert active(ws) == []
