"""What a correct read of a simulated org must contain, computed from the org's own state."""

from __future__ import annotations

from connectors.okta_map import ACTIVE
from simulators.okta import OktaOrg
from reconcile.model import ExternalGroup, Snapshot


def org_users(org: OktaOrg) -> dict[str, bool]:
    """Org scope: user id -> active, for every user a full read reports."""
    return {
        uid: user["status"] in ACTIVE
        for uid, user in org.users.items()
        if user["status"] not in ("STAGED", "DEPROVISIONED")
    }


def app_users(org: OktaOrg, app_id: str) -> dict[str, bool]:
    ids, _ = org.app_user_ids(app_id)
    return {uid: org.users[uid]["status"] in ACTIVE for uid in ids if org.users[uid]["status"] != "STAGED"}


def org_groups(org: OktaOrg, scope: set[str], group_ids: list[str] | None = None) -> dict[str, tuple[str, frozenset[str]]]:
    result = {}
    for gid in group_ids if group_ids is not None else org.group_ids:
        group = org.groups[gid]
        if group["type"] == "BUILT_IN" and group_ids is None:
            continue
        result[gid] = (group["profile"]["name"], frozenset(m for m in org.members[gid] if m in scope))
    return result


def read_users(snapshot: Snapshot) -> dict[str, bool]:
    return {u.external_id: u.active for u in snapshot.users}


def read_groups(groups: tuple[ExternalGroup, ...]) -> dict[str, tuple[str | None, frozenset[str]]]:
    return {g.external_id: (g.name, g.member_ids) for g in groups}
