"""A simulator's state on disk, so `dirsync simulate --state-dir DIR` survives a restart.

DIR holds `ca.pem` and `ca-key.pem` (the test CA, see `tls.persistent_ca`) and
`state.json` (mode 0600: it holds the credentials):

    {"kind": "okta" | "entra", "port": 8443, "admin_token": "...",
     "api_token": "..." (okta), "org" | "tenant": {...the directory...}}

The directory is stored whole (users, groups, memberships, assignments and the change log
the connectors read incrementally: Okta's System Log, Graph's delta log), so a delta link
or a System Log position taken before a restart still reads on from where it was.
`save` writes to a temporary file and renames it, so a crash never leaves half a file.
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any

from simulators.graph_tenant import GraphTenant, LogEntry, SimGroup, SimUser
from simulators.okta_org import OktaOrg
from simulators.okta_records import Ids

__all__ = ["STATE_FILE", "load", "save", "okta_org_to_json", "okta_org_from_json",
           "graph_tenant_to_json", "graph_tenant_from_json"]

STATE_FILE = "state.json"


def load(directory: Path) -> dict[str, Any] | None:
    """The saved state in `directory`, or None when there is none yet."""
    path = directory / STATE_FILE
    if not path.exists():
        return None
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


def save(directory: Path, state: dict[str, Any]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    temporary = directory / (STATE_FILE + ".tmp")
    temporary.touch(mode=0o600)
    temporary.write_text(json.dumps(state, separators=(",", ":")), encoding="utf-8")
    os.replace(temporary, directory / STATE_FILE)


# --- Okta ------------------------------------------------------------------------------


def okta_org_to_json(org: OktaOrg) -> dict[str, Any]:
    with org.lock:
        return {
            "org_url": org.org_url,
            "users": org.users,
            "user_ids": org.user_ids,
            "groups": org.groups,
            "group_ids": org.group_ids,
            "members": {g: sorted(m) for g, m in org.members.items()},
            "apps": org.apps,
            "app_users": org.app_users,
            "app_groups": org.app_groups,
            "events": org.events,
            "everyone_id": org.everyone_id,
            "app_id": org.app_id,
        }


def okta_org_from_json(data: dict[str, Any]) -> OktaOrg:
    org = OktaOrg(org_url=data["org_url"])
    with org.lock:
        org.users = data["users"]
        org.user_ids = data["user_ids"]
        org.groups = data["groups"]
        org.group_ids = data["group_ids"]
        org.members = {g: set(m) for g, m in data["members"].items()}
        org.apps = data["apps"]
        org.app_users = data["app_users"]
        org.app_groups = data["app_groups"]
        org.events = data["events"]
        org.everyone_id = data["everyone_id"]
        org.app_id = data["app_id"]
        # New ids continue after every id ever issued, deleted ones (still in the log) too.
        seen = {*org.users, *org.groups, *org.apps,
                *(t["id"] for e in org.events for t in e.get("target", ()))}
        for prefix, attribute in (("00u", "_user_id"), ("00g", "_group_id"), ("0oa", "_app_id")):
            numbers = [int(i[3:], 16) for i in seen if i.startswith(prefix) and _is_hex(i[3:])]
            setattr(org, attribute, Ids(prefix, max(numbers, default=0) + 1))
        org.version += 1
    return org


def _is_hex(text: str) -> bool:
    try:
        int(text, 16)
    except ValueError:
        return False
    return True


# --- Microsoft Graph -------------------------------------------------------------------


def graph_tenant_to_json(tenant: GraphTenant) -> dict[str, Any]:
    with tenant.lock:
        version, internal, gauss = tenant._rng.getstate()
        return {
            "tenant_id": tenant.tenant_id,
            "client_id": tenant.client_id,
            "client_secret": tenant.client_secret,
            "client_secret_expired": tenant.client_secret_expired,
            "consent_revoked": tenant.consent_revoked,
            "service_principal_id": tenant.service_principal_id,
            "certificates": {k: v.decode("ascii") for k, v in tenant.certificates.items()},
            "users": [_user_to_json(u) for u in tenant.users.values()],
            "user_order": tenant.user_order,
            "groups": [{"id": g.id, "display_name": g.display_name, "members": sorted(g.members),
                        "deleted": g.deleted} for g in tenant.groups.values()],
            "group_order": tenant.group_order,
            "assignments": {p: list(a) for p, a in tenant.assignments.items()},
            "log": [[e.kind, e.object_id, e.op, e.member_id] for e in tenant.log],
            "delta_epoch": tenant.delta_epoch,
            "resync_epoch": tenant.resync_epoch,
            "hired": tenant._n,
            "rng": [version, list(internal), gauss],
        }


def graph_tenant_from_json(data: dict[str, Any]) -> GraphTenant:
    tenant = GraphTenant(tenant_id=data["tenant_id"])
    tenant.client_id = data["client_id"]
    tenant.client_secret = data["client_secret"]
    tenant.client_secret_expired = data["client_secret_expired"]
    tenant.consent_revoked = data["consent_revoked"]
    tenant.service_principal_id = data["service_principal_id"]
    tenant.certificates = {k: v.encode("ascii") for k, v in data["certificates"].items()}
    tenant.users = {u["id"]: _user_from_json(u) for u in data["users"]}
    tenant.user_order = data["user_order"]
    tenant.groups = {g["id"]: SimGroup(g["id"], g["display_name"], set(g["members"]), g["deleted"])
                     for g in data["groups"]}
    tenant.group_order = data["group_order"]
    tenant.assignments = {p: (a[0], a[1]) for p, a in data["assignments"].items()}
    tenant.log = [LogEntry(kind, oid, op, member) for kind, oid, op, member in data["log"]]
    tenant.delta_epoch = data["delta_epoch"]
    tenant.resync_epoch = data["resync_epoch"]
    tenant._n = data["hired"]
    version, internal, gauss = data["rng"]
    # New GUIDs continue the seeded sequence instead of repeating it from the start.
    tenant._rng = random.Random()
    tenant._rng.setstate((version, tuple(internal), gauss))
    return tenant


def _user_to_json(user: SimUser) -> dict[str, Any]:
    return {"id": user.id, "user_principal_name": user.user_principal_name, "mail": user.mail,
            "given_name": user.given_name, "surname": user.surname, "display_name": user.display_name,
            "account_enabled": user.account_enabled, "deleted": user.deleted,
            "saved_groups": sorted(user.saved_groups), "created_date_time": user.created_date_time}


def _user_from_json(data: dict[str, Any]) -> SimUser:
    return SimUser(data["id"], data["user_principal_name"], data["mail"], data["given_name"],
                   data["surname"], data["display_name"], data["account_enabled"], data["deleted"],
                   set(data["saved_groups"]), data.get("created_date_time"))  # absent in older saves
