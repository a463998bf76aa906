"""What the property tests share: hypothesis settings, an emptied store, and the small
directory states of the incremental-equals-full property.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from sqlalchemy import delete

import config
from connectors.base import Connector
from reconcile.cycle import RunResult, run_cycle
from reconcile.staging import approve
from store import Store
from store.models import Directory, Group, Invite, Lease, Membership, StagedPlan, SyncEvent, SyncRun, User

USER_IDS = [f"u{i}" for i in range(6)]
# Each group id has its own family of names, so groups never collide with each other; the
# families include names the rules refuse (25+ characters, empty) and changes of case and
# width that keep the name key. `ga` is the admin alias (R3), renamed away at times: its
# members are disabled, leave and come back across steps, so R4 holds deactivations and
# removals that later steps release.
GROUP_NAMES = {
    "g0": ["Engineering", "ＥＮＧＩＮＥＥＲＩＮＧ", "Eng"],
    "g1": ["Straße", "S" * 25, "STRASSE"],
    "g2": ["Ops", "", "Operations " + "x" * 30],
    "ga": ["Split_Administrators", "SPLIT_ADMINISTRATORS", "Admins"],
}
# What R4 says when it holds a deactivation or keeps the admin group's members.
R4_HOLDS = ("last-active-administrator", "admin-group-would-be-empty")


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
    max_size=len(GROUP_NAMES),
    unique_by=lambda t: t[0],
)
state_st = st.tuples(users_st, groups_st)
State = tuple[list[tuple[str, int, bool, str | None]], list[tuple[str, int, set[str]]]]


@st.composite
def evolving_states(draw: st.DrawFn, max_size: int = 5) -> list[State]:
    """Directory states that each change a little from the one before: a few users disabled,
    re-enabled, leaving, coming back or edited, a few members added or removed, the rest
    unchanged. Independent states rewrite nearly every record at each step; here a later
    step meets records an earlier one left alone, such as an administrator whose
    deactivation R4 held while another one comes back."""
    states: list[State] = [draw(state_st)]
    for _ in range(draw(st.integers(1, max_size - 1))):
        users = {u[0]: u for u in states[-1][0]}
        groups = {g[0]: (g[0], g[1], set(g[2])) for g in states[-1][1]}
        for uid in draw(st.lists(st.sampled_from(USER_IDS), min_size=1, max_size=3, unique=True)):
            change = draw(st.sampled_from(["toggle", "leave", "redraw"]))
            if change == "toggle" and uid in users:
                users[uid] = (uid, users[uid][1], not users[uid][2], users[uid][3])
            elif change == "leave":
                users.pop(uid, None)
            else:
                name = draw(st.sampled_from(["A", "B", None]))
                users[uid] = (uid, draw(st.integers(0, 2)), draw(st.booleans()), name)
        for gid in draw(st.lists(st.sampled_from(sorted(GROUP_NAMES)), max_size=2, unique=True)):
            change = draw(st.sampled_from(["member", "leave", "redraw"]))
            if change == "member" and gid in groups:
                groups[gid][2].symmetric_difference_update({draw(st.sampled_from(USER_IDS + ["ghost"]))})
            elif change == "leave":
                groups.pop(gid, None)
            else:
                members = draw(st.sets(st.sampled_from(USER_IDS + ["ghost"]), max_size=5))
                groups[gid] = (gid, draw(st.integers(0, 2)), members)
        states.append((list(users.values()), list(groups.values())))
    return states


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


def reset(store: Store) -> None:
    with store.session() as session:
        for model in (Membership, SyncEvent, StagedPlan, SyncRun, Invite, User, Group, Directory, Lease):
            session.execute(delete(model))


def sync_approved(cfg: config.Settings, store: Store, connector: Connector | None = None, *,
                  directory: str = "hr", full: bool = False) -> tuple[RunResult, str]:
    """A cycle the admin approves whatever it deactivates: `--allow-deactivations`, and for
    an empty read (which that flag never applies) `approve RUN_ID`. The cycle's result and
    the final status (`succeeded`, or `approved` after an approval)."""
    result = run_cycle(cfg, directory, store=store, connector=connector, full=full, allow_deactivations=True)
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
