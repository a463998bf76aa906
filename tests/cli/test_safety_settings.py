"""`[safety]` settings reach the cycle: break-glass accounts and the membership-removal limit."""

from __future__ import annotations

from tests.cli.conftest import Workspace, user


def _config(ws: Workspace, safety: str) -> None:
    text = (ws.folder / "dirsync.toml").read_text()
    ws.write_config(text + f"\n[safety]\n{safety}\n")


def test_a_protected_user_disabled_in_the_directory_stays_active_with_a_reason(ws: Workspace) -> None:
    _config(ws, 'protected_users = ["Root@Example.com"]')
    ws.write_directory([user("u1", "root@example.com"), user("u2", "ana@example.com")],
                       [{"id": "a", "name": "Split_Administrators", "members": ["u1", "u2"]}])
    assert ws.run("sync").code == 0
    ws.write_directory([user("u1", "root@example.com", active=False), user("u2", "ana@example.com")],
                       [{"id": "a", "name": "Split_Administrators", "members": ["u2"]}])

    result = ws.run("sync")

    assert result.code == 0, result.err
    assert "protected" in result.out
    people = {u["email"]: u for u in ws.export()["users"]}
    assert people["root@example.com"]["active"] is True
    admins = {g["name"]: g["members"] for g in ws.export()["groups"]}["Administrators"]
    assert "root@example.com" in admins


def test_mass_membership_removals_halt(ws: Workspace) -> None:
    _config(ws, "max_member_removals = 3")
    members = [f"u{n}" for n in range(6)]
    ws.write_directory([user(m, f"{m}@example.com") for m in members],
                       [{"id": "g1", "name": "Engineering", "members": members}])
    assert ws.run("sync").code == 0
    ws.write_directory([user(m, f"{m}@example.com") for m in members],
                       [{"id": "g1", "name": "Engineering", "members": members[:1]}])

    result = ws.run("sync")

    assert result.code == 3, result.out + result.err
    assert "max_member_removals" in result.out + result.err
    groups = {g["name"]: g["members"] for g in ws.export()["groups"]}
    assert len(groups["Engineering"]) == 6
