"""R4 holds and incremental cycles: what a cycle held for R4 (an administrator's deactivation
or removal from Administrators), a later incremental cycle releases as a full cycle would,
although the held member's record no longer changes and so is not in the changes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from reconcile.model import Changes, Snapshot
from store import export_state, open_store

from tests.property.common import reset, settings_for, sync_approved
from tests.property.test_incremental_equals_full import DiffConnector


def user(uid: str, active: bool = True) -> dict[str, Any]:
    return {"id": uid, "email": f"{uid}@example.com", "display_name": None, "active": active}


def alias(*members: str) -> dict[str, Any]:
    return {"id": "ga", "name": "Split_Administrators", "members": sorted(members)}


def state(users: list[dict[str, Any]], *groups: dict[str, Any]) -> dict[str, Any]:
    return {"users": users, "groups": list(groups)}


class Reads(DiffConnector):
    """A `DiffConnector` that counts its full reads."""

    full_reads = 0

    def read(self, watermark: str | None, progress: object = None) -> Snapshot | Changes:
        result = super().read(watermark, progress)
        if isinstance(result, Snapshot):
            Reads.full_reads += 1
        return result


def sync_steps(tmp_path: Path, steps: list[dict[str, Any]]) -> tuple[dict[str, Any], list[str]]:
    """Sync each step incrementally (the first in full); the store after the last one and
    each cycle's mode."""
    store = open_store(f"sqlite:///{tmp_path / 'store.db'}")
    reset(store)
    path = tmp_path / "directory.json"
    cfg = settings_for(str(store.engine.url), path)
    previous: dict[str, Any] | None = None
    modes = []
    try:
        for current in steps:
            path.write_text(json.dumps(current))
            result, status = sync_approved(cfg, store, Reads(previous, current))
            assert status in ("succeeded", "approved")
            modes.append(result.mode)
            previous = current
        with store.session() as session:
            return export_state(session), modes
    finally:
        store.dispose()


def active(final: dict[str, Any]) -> dict[str, bool]:
    return {u["external_id"]: u["active"] for u in final["users"]}


def administrators(final: dict[str, Any]) -> list[str]:
    [admins] = [g for g in final["groups"] if g["name"] == "Administrators"]
    return admins["members"]


def test_a_held_deactivation_is_made_once_another_administrator_is_enabled_again(tmp_path: Path) -> None:
    # a and b are disabled together: R4 holds both. a comes back; b is still disabled.
    final, modes = sync_steps(tmp_path, [
        state([user("a"), user("b")], alias("a", "b")),
        state([user("a", False), user("b", False)], alias("a", "b")),
        state([user("a"), user("b", False)], alias("a", "b")),
    ])
    assert active(final) == {"a": True, "b": False}
    assert administrators(final) == ["a@example.com"]
    assert modes == ["full", "incremental", "full"]


def test_a_held_removal_is_made_once_another_member_joins_the_alias(tmp_path: Path) -> None:
    # b, the only administrator, leaves the alias: R4 keeps b. Then c joins it.
    final, _ = sync_steps(tmp_path, [
        state([user("b"), user("c")], alias("b")),
        state([user("b"), user("c")], alias()),
        state([user("b"), user("c")], alias("c")),
    ])
    assert administrators(final) == ["c@example.com"]


def test_a_held_administrator_who_left_scope_is_deactivated_once_another_joins(tmp_path: Path) -> None:
    # b, the only administrator, leaves scope: R4 holds the deactivation. Then c joins the alias.
    final, _ = sync_steps(tmp_path, [
        state([user("b"), user("c")], alias("b")),
        state([user("c")], alias("b")),
        state([user("c")], alias("b", "c")),
    ])
    assert active(final) == {"b": False, "c": True}
    assert administrators(final) == ["c@example.com"]


@pytest.mark.parametrize("held", [False, True], ids=["nothing-held", "a-hold-outstanding"])
def test_changes_away_from_the_admin_group_stay_incremental(tmp_path: Path, held: bool) -> None:
    # Only an outstanding hold and changes that meet the admin group read in full again.
    Reads.full_reads = 0
    _, modes = sync_steps(tmp_path, [
        state([user("a"), user("x")], alias("a")),
        state([user("a", not held), user("x")], alias("a")),
        state([user("a", not held), user("x", False)], alias("a")),
    ])
    assert modes == ["full", "incremental", "incremental"]
    assert Reads.full_reads == 1


def test_changes_to_administrators_without_a_hold_stay_incremental(tmp_path: Path) -> None:
    Reads.full_reads = 0
    _, modes = sync_steps(tmp_path, [
        state([user("a"), user("b")], alias("a", "b")),
        state([user("a"), user("b", False)], alias("a", "b")),
        state([user("a"), user("b")], alias("a", "b")),
    ])
    assert modes == ["full", "incremental", "incremental"]
    assert Reads.full_reads == 1


def test_a_held_administrator_who_left_scope_joins_no_group_the_directory_lists_them_in(tmp_path: Path) -> None:
    # b, the only administrator, leaves scope: R4 holds the deactivation. A new group still
    # lists b: b is in no scope, so not a member, as a full cycle has it.
    final, _ = sync_steps(tmp_path, [
        state([user("b")], alias("b")),
        state([], alias("b")),
        state([], alias("b"), {"id": "g0", "name": "Engineering", "members": ["b"]}),
    ])
    assert active(final) == {"b": True}
    [engineering] = [g for g in final["groups"] if g["name"] == "Engineering"]
    assert engineering["members"] == []


def test_once_a_full_read_released_the_hold_changes_to_administrators_stay_incremental(tmp_path: Path) -> None:
    # The third cycle reads in full and releases the hold: it is recorded as a full run, so
    # later changes that meet the admin group, with nothing held since, read only changes.
    Reads.full_reads = 0
    _, modes = sync_steps(tmp_path, [
        state([user("a"), user("b"), user("c")], alias("a", "b")),
        state([user("a", False), user("b", False), user("c")], alias("a", "b")),
        state([user("a"), user("b", False), user("c")], alias("a", "b")),
        state([user("a"), user("b", False), user("c")], alias("a", "b", "c")),
        state([user("a"), user("b", False), user("c")], alias("a", "c")),
    ])
    assert modes == ["full", "incremental", "full", "incremental", "incremental"]
    assert Reads.full_reads == 2
