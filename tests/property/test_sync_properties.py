"""Properties of sync over random sequences of directory states, on SQLite and PostgreSQL.

Each example runs real cycles (file connector -> plan -> apply -> store) through a
sequence of directory states and checks the store after every cycle.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete

import config
from connectors.base import Connector
from reconcile.cycle import RunResult, run_cycle
from reconcile.staging import approve
from reconcile.rules import name_key
from store import Store, export_state
from store.models import Directory, Group, Invite, Lease, Membership, StagedPlan, SyncEvent, SyncRun, User

USER_IDS = [f"u{i}" for i in range(6)]
# Each group id has its own family of names, so groups never collide with each other; the
# families include names the rules refuse (25+ characters, empty) and changes of case and
# width that keep the name key.
GROUP_NAMES = {
    "g0": ["Engineering", "ＥＮＧＩＮＥＥＲＩＮＧ", "Eng"],
    "g1": ["Straße", "S" * 25, "STRASSE"],
    "g2": ["Ops", "", "Operations " + "x" * 30],
}


def email_of(uid: str, variant: int) -> str | None:
    """A user's address in some case, or an invalid one (the user's record is then held)."""
    return [f"{uid}@example.com", f"{uid.upper()}@Example.COM", "not-an-email"][variant]


users_st = st.lists(
    st.tuples(st.sampled_from(USER_IDS), st.integers(0, 2), st.booleans(), st.sampled_from(["A", "B", None])),
    max_size=6,
    unique_by=lambda t: t[0],
)
groups_st = st.lists(
    st.tuples(
        st.sampled_from(sorted(GROUP_NAMES)),
        st.integers(0, 2),
        st.sets(st.sampled_from(USER_IDS + ["ghost"]), max_size=5),
    ),
    max_size=3,
    unique_by=lambda t: t[0],
)
state_st = st.tuples(users_st, groups_st)


def export_file(state: Any) -> dict[str, Any]:
    users, groups = state
    return {
        "users": [
            {"id": uid, "email": email_of(uid, v), "display_name": name, "active": active}
            for uid, v, active, name in users
        ],
        "groups": [
            {"id": gid, "name": GROUP_NAMES[gid][v], "members": sorted(members)} for gid, v, members in groups
        ],
    }


@dataclass
class Expected:
    """The store the rules predict, kept independently of the planner."""

    users: dict[str, dict[str, Any]] = field(default_factory=dict)  # external id -> fields
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)  # external id -> name, members
    local_groups: dict[str, dict[str, Any]] = field(default_factory=dict)  # name key -> name, members

    def cycle(self, state: Any) -> None:
        users, groups = state
        seen: set[str] = set()
        for uid, v, active, name in users:
            seen.add(uid)
            email = email_of(uid, v)
            if email == "not-an-email":
                continue  # R1: refused; a stored user is held as it is
            if uid in self.users or active:  # R1 and R9: a disabled account is never created
                self.users[uid] = {"email": email, "display_name": name, "active": active}
        for uid, fields in self.users.items():
            if uid not in seen:
                fields["active"] = False  # R7: left scope
        for gid, v, members in groups:
            name = GROUP_NAMES[gid][v]
            valid = bool(name.strip()) and len(name) <= 24  # R2
            if gid in self.groups:
                current = self.groups[gid]
                taken = name_key(name) != name_key(current["name"]) and name_key(name) in self.local_groups  # R6
                if not valid or taken:
                    name = current["name"]  # the new name is refused; the group keeps its own
            elif not valid:
                continue  # never created
            else:  # first sight: link to a local group of that name (R6), else create
                current = self.local_groups.pop(name_key(name), {"members": set()})
            # Members follow the record; a held user counts as stored.
            wanted = {m for m in members if m in self.users and self.users[m]["active"]}
            self.groups[gid] = {"name": name, "members": wanted}
        for gid in [g for g in self.groups if g not in {x[0] for x in groups}]:
            group = self.groups.pop(gid)  # R7: left scope, unlinked, members kept
            self.local_groups[name_key(group["name"])] = group

    def export(self) -> dict[str, Any]:
        users = sorted(
            ({"email": f["email"], "active": f["active"], "external_id": uid} for uid, f in self.users.items()),
            key=lambda u: u["email"],
        )
        email = {uid: f["email"] for uid, f in self.users.items()}
        groups = sorted(
            [{"name": g["name"], "managed_by": owner, "members": sorted((email[m] for m in g["members"]), key=str.lower)}
             for owner, table in (("hr", self.groups), (None, self.local_groups)) for g in table.values()],
            key=lambda g: g["name"],
        )
        return {"users": users, "groups": groups}


def actual(store: Store) -> dict[str, Any]:
    with store.session() as session:
        state = export_state(session)
    # Order is the export's own concern (tested with the store); compare contents here.
    return {
        "users": sorted(
            ({"email": u["email"], "active": u["active"], "external_id": u["external_id"]} for u in state["users"]),
            key=lambda u: u["email"],
        ),
        "groups": sorted(
            ({"name": g["name"], "managed_by": g["managed_by"], "members": sorted(g["members"], key=str.lower)}
             for g in state["groups"] if g["name"] != "Administrators"),
            key=lambda g: g["name"],
        ),
    }


def reset(store: Store) -> None:
    with store.session() as session:
        for model in (Membership, SyncEvent, StagedPlan, SyncRun, Invite, User, Group, Directory, Lease):
            session.execute(delete(model))


def sync_approved(cfg: config.Settings, store: Store, connector: Connector | None = None) -> tuple[RunResult, str]:
    """A cycle the admin approves whatever it deactivates: `--allow-deactivations`, and for
    an empty read (which that flag never applies) `approve RUN_ID`. The cycle's result and
    the final status (`succeeded`, or `approved` after an approval)."""
    result = run_cycle(cfg, "hr", store=store, connector=connector, allow_deactivations=True)
    if result.status == "halted" and result.run_id is not None:
        return result, approve(cfg, result.run_id, store=store, connector=connector).status
    return result, result.status


def settings_for(store_url: str, path: Path) -> config.Settings:
    return config.parse(
        {"store": {"url": store_url}, "directories": {"hr": {"kind": "file", "path": str(path)}}}, environ={}
    )


PROPERTY = settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)


@PROPERTY
@given(states=st.lists(state_st, min_size=1, max_size=4))
def test_store_equals_the_rule_filtered_directory_and_second_cycle_is_a_no_op(store, tmp_path, states):
    """After each cycle the store equals the rule-filtered projection of the directory
    (an independent model of R1, R2, R6, R7, R9), and a second cycle plans nothing."""
    reset(store)
    path = tmp_path / "directory.json"
    cfg = settings_for(store.engine.url.render_as_string(hide_password=False), path)
    expected = Expected()
    for state in states:
        path.write_text(json.dumps(export_file(state)))
        assert sync_approved(cfg, store)[1] in ("succeeded", "approved")
        expected.cycle(state)
        assert actual(store) == expected.export()
        again = run_cycle(cfg, "hr", store=store, dry_run=True)
        assert again.plan is not None and again.plan.operations == ()


admin_state_st = st.tuples(
    users_st,
    st.sets(st.sampled_from(USER_IDS), max_size=4),  # members of Split_Administrators
    st.booleans(),  # whether the alias group is in scope at all
)


@PROPERTY
@given(states=st.lists(admin_state_st, min_size=1, max_size=5))
def test_administrators_keeps_an_active_member_and_nothing_is_deleted(store, tmp_path, states):
    """Administrators, once it has an active member, never loses its last one; no user
    is ever deleted; no managed group has a name of 25 characters or more."""
    reset(store)
    path = tmp_path / "directory.json"
    cfg = settings_for(store.engine.url.render_as_string(hide_password=False), path)
    had_active_admin = False
    emails_seen: set[str] = set()
    for users, admins, alias_present in states:
        data = export_file((users, []))
        if alias_present:
            data["groups"].append({"id": "ga", "name": "Split_Administrators", "members": sorted(admins)})
        data["groups"].append({"id": "gl", "name": "L" * 25, "members": []})
        path.write_text(json.dumps(data))
        assert sync_approved(cfg, store)[1] in ("succeeded", "approved")
        with store.session() as session:
            state = export_state(session)
        active = {u["email"] for u in state["users"] if u["active"]}
        [admin] = [g for g in state["groups"] if g["name"] == "Administrators"]
        has_active_admin = bool(set(admin["members"]) & active)
        if had_active_admin:
            assert has_active_admin
        had_active_admin = has_active_admin
        emails = {u["email"].lower() for u in state["users"]}
        assert emails_seen <= emails
        emails_seen = emails
        assert all(len(g["name"]) < 25 for g in state["groups"] if g["managed_by"])
