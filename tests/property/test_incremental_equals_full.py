"""Planning an incremental read gives the store a full read would, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from connectors.file import parse
from reconcile.model import Changes, MembershipDelta, Snapshot
from store import export_state, open_store

from tests.property.common import PROPERTY, export_file, reset, settings_for, state_st, sync_approved


class DiffConnector:
    """A directory read incrementally: what changed between the previous and current export.

    Like the real connectors it reports changed users, users that left, renamed or new
    groups with complete members, membership changes of other groups as deltas, and it
    can read one user with their complete groups (`read_user`, as Entra's does).
    """

    def __init__(self, previous: dict[str, Any] | None, current: dict[str, Any]) -> None:
        self.previous, self.current = previous, current

    def read(self, watermark: str | None, progress: object = None) -> Snapshot | Changes:
        now = parse(self.current, watermark="w")
        if self.previous is None or watermark is None:
            return now
        before = parse(self.previous)
        old_users = {u.external_id: u for u in before.users}
        new_users = {u.external_id: u for u in now.users}
        old_groups = {g.external_id: g for g in before.groups}
        groups, deltas = [], []
        for g in now.groups:
            old = old_groups.get(g.external_id)
            if old is None or old.name != g.name:
                groups.append(g)
            elif old.member_ids != g.member_ids:
                deltas.append(MembershipDelta(g.external_id, added=g.member_ids - old.member_ids,
                                              removed=old.member_ids - g.member_ids))
        return Changes(
            users=tuple(u for u in now.users if old_users.get(u.external_id) != u),
            groups=tuple(groups),
            removed_user_ids=frozenset(old_users.keys() - new_users.keys()),
            removed_group_ids=frozenset(old_groups.keys() - {g.external_id for g in now.groups}),
            memberships=tuple(deltas),
            members_complete=frozenset(g.external_id for g in groups),
            rejections=now.rejections,
            watermark="w",
        )

    def read_user(self, key: str, known_groups: frozenset[str] = frozenset()) -> Changes:
        now = parse(self.current)
        users = tuple(u for u in now.users if u.external_id == key)
        groups = tuple(g for g in now.groups if key in g.member_ids and g.external_id not in known_groups)
        return Changes(users=users, groups=groups, members_complete=frozenset(g.external_id for g in groups))

    def close(self) -> None:
        pass


@PROPERTY
@given(states=st.lists(state_st, min_size=2, max_size=5))
def test_incremental_cycles_end_where_full_cycles_do(tmp_path, states):
    """For any sequence of directory states, syncing each step incrementally leaves the
    same users, groups and memberships as syncing each step with a full read.

    The planner is backend-neutral, so two SQLite stores side by side suffice here."""
    store = open_store(f"sqlite:///{tmp_path / 'incremental.db'}")
    full_store = open_store(f"sqlite:///{tmp_path / 'full.db'}")
    reset(store)
    reset(full_store)
    path = tmp_path / "directory.json"
    cfg = settings_for(str(store.engine.url), path)
    previous: dict[str, Any] | None = None
    try:
        for state in states:
            current = export_file(state)
            path.write_text(json.dumps(current))
            inc, inc_status = sync_approved(cfg, store, DiffConnector(previous, current))
            _, full_status = sync_approved(cfg, full_store)
            assert {inc_status, full_status} <= {"succeeded", "approved"}
            assert inc.mode == ("full" if previous is None else "incremental")
            with store.session() as a, full_store.session() as b:
                assert export_state(a) == export_state(b)
            previous = current
    finally:
        store.dispose()
        full_store.dispose()
