"""`dirsync explain`: the decision trace of one user or group, through the CLI."""

from __future__ import annotations

from service.explain import explain
from store import open_store
from tests.cli.conftest import Workspace, user


def test_a_managed_user_says_who_manages_it_how_it_was_matched_and_what_happened(ws: Workspace) -> None:
    assert ws.run("admin", "add-user", "ana@example.com").code == 0
    ws.write_directory([user("u1", "ana@example.com")], [{"id": "g1", "name": "Engineering", "members": ["u1"]}])
    assert ws.run("sync").code == 0
    ws.write_directory([user("u1", "ana@example.com", active=False)], [{"id": "g1", "name": "Engineering", "members": []}])
    assert ws.run("sync").code == 0

    result = ws.run("explain", "Ana@Example.com")
    trace = ws.run("explain", "ana@example.com", "--json").json()

    assert result.code == 0
    assert "managed by directory 'hr' (its id 'u1')" in result.out
    assert "linked to the existing local user" in result.out
    assert "state: inactive" in result.out
    assert trace["managed_by"] == "hr" and trace["external_id"] == "u1"
    assert trace["last_decision"]["action"] == "deactivate-user"
    assert trace["last_decision"]["reason"] == "disabled-in-idp"
    assert [e["action"] for e in trace["recent"]][:2] == ["deactivate-user", "remove-member"]


def test_a_refused_user_shows_the_rule_and_reason_and_exits_4(ws: Workspace) -> None:
    ws.write_directory([], [{"id": "g1", "name": "A group name far too long to keep", "members": []}])
    assert ws.run("sync").code == 0

    result = ws.run("explain", "A group name far too long to keep")

    assert result.code == 4
    assert "no group 'A group name far too long to keep' in the store" in result.out
    assert "rejected reject: name-too-long" in result.out


def test_a_group_lists_its_members_and_binding(ws: Workspace) -> None:
    ws.write_directory([user("u1", "ana@example.com")], [{"id": "g1", "name": "Engineering", "members": ["u1"]}])
    assert ws.run("sync").code == 0

    trace = ws.run("explain", "engineering", "--json").json()

    assert trace["kind"] == "group" and trace["groups"] == ["ana@example.com"]
    assert trace["matched_by"].startswith("created from the directory group")


def test_a_group_can_be_explained_with_its_members_only_counted(ws: Workspace, store_url: str) -> None:
    people = [user(f"u{i}", f"p{i}@example.com") for i in range(3)]
    ws.write_directory(people, [{"id": "g1", "name": "Engineering", "members": [p["id"] for p in people]}])
    assert ws.run("sync").code == 0

    store = open_store(store_url)
    try:
        listed = explain(store, "Engineering")
        counted = explain(store, "Engineering", list_members=False)
    finally:
        store.engine.dispose()

    assert listed.groups == ("p0@example.com", "p1@example.com", "p2@example.com") and listed.member_count == 3
    assert counted.groups == () and counted.member_count == 3
    assert counted.steps == listed.steps and "members: 3" in counted.steps
