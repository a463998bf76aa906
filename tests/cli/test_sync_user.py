"""`dirsync sync-user` says what happened to the user asked for."""

from __future__ import annotations

from tests.cli.conftest import Workspace, user


def test_each_outcome_of_provisioning_one_user(ws: Workspace) -> None:
    ws.write_directory([user("u1", "ana@example.com"), user("u2", "bo@example.com", active=False),
                        user("u3", "bad-email")])

    created = ws.run("sync-user", "hr", "ana@example.com")
    unchanged = ws.run("sync-user", "hr", "ANA@example.com")
    disabled = ws.run("sync-user", "hr", "bo@example.com")
    refused = ws.run("sync-user", "hr", "u3")
    missing = ws.run("sync-user", "hr", "nobody@example.com")

    assert created.code == 0 and "ana@example.com: created" in created.out
    assert unchanged.code == 0 and "ana@example.com: unchanged" in unchanged.out
    assert disabled.code == 0 and "bo@example.com: disabled in the directory, so not provisioned" in disabled.out
    assert refused.code == 0 and "not provisioned: invalid-email" in refused.out
    assert missing.code == 4 and "nobody@example.com: not found in the directory" in missing.out
    assert "succeeded - no changes" not in missing.out.splitlines()[0]


def test_a_user_coming_back_is_reactivated(ws: Workspace) -> None:
    ws.write_directory([user("u1", "ana@example.com")])
    assert ws.run("sync").code == 0
    ws.write_directory([user("u1", "ana@example.com", active=False)])
    assert ws.run("sync").code == 0
    ws.write_directory([user("u1", "ana@example.com")])

    result = ws.run("sync-user", "hr", "ana@example.com", "--json")

    assert result.code == 0
    assert result.json()["user"] == {"found": True, "outcome": "ana@example.com: reactivated"}
