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
