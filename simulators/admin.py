"""The simulators' admin API: change a running Okta org or Entra tenant as its admin would.

`install(sim, on_change)` adds these routes to an `OktaSimulator` or `GraphSimulator`
(under `/_admin`, for `sim.admin_token`; see `base.SimulatorServer.add_admin_route`):

    GET  /_admin/info                  {"kind", "users", "groups"}
    POST /_admin/add-user              {"email", "first_name"?, "last_name"?, "groups"?: [G]}
    POST /_admin/disable-user          {"users"?: [U], "group"?: G}   every member of G too
    POST /_admin/delete-user           {"users"?: [U], "group"?: G}
    POST /_admin/move-user             {"users": [U], "from"?: G, "to"?: G}
    POST /_admin/rename-group          {"group": G, "name": "..."}
    POST /_admin/delete-group          {"group": G}
    POST /_admin/assign, /unassign     {"users"?: [U], "groups"?: [G]}

U is a user's id, login/UPN or email; G is a group's id or name. Every answer is
`{"message": "...", "changed": N}`, or `{"error": "one line"}` with 400 (bad request) or 404
(no such user or group). Changes go through the org's or tenant's own admin methods
(`OktaOrg`, `GraphTenant`), so connectors see them exactly as the vendor shows them:
Okta moves `lastUpdated` and writes System Log events, Graph appends to its delta log.

What each action is, per vendor:

    action          Okta                                   Entra (Graph)
    disable-user    deactivate (DEPROVISIONED)             accountEnabled = false
    delete-user     deactivate, then delete                soft delete (recycle bin)
    assign          app assignment of the org's app        appRoleAssignedTo of the app's
                    (user or group)                        service principal
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from simulators.base import SimulatorServer
from simulators.graph import GraphSimulator
from simulators.graph_tenant import GraphTenant
from simulators.messages import Request, Response
from simulators.okta import OktaSimulator
from simulators.okta_org import OktaOrg

__all__ = ["ACTIONS", "AdminError", "install"]


class AdminError(Exception):
    """A request the directory cannot carry out; `status` is the HTTP status to answer."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class Directory(Protocol):
    """The admin actions, in one vendor's terms."""

    kind: str

    def counts(self) -> tuple[int, int]: ...
    def user_id(self, ref: str) -> str: ...
    def group_id(self, ref: str) -> str: ...
    def members(self, group_id: str) -> list[str]: ...
    def add_user(self, email: str, first_name: str, last_name: str) -> str: ...
    def disable_user(self, user_id: str) -> bool: ...
    def delete_user(self, user_id: str) -> None: ...
    def add_member(self, group_id: str, user_id: str) -> None: ...
    def remove_member(self, group_id: str, user_id: str) -> None: ...
    def rename_group(self, group_id: str, name: str) -> None: ...
    def delete_group(self, group_id: str) -> None: ...
    def assign(self, principal_id: str, is_group: bool) -> None: ...
    def unassign(self, principal_id: str, is_group: bool) -> None: ...


def _one(matches: list[str], kind: str, ref: str) -> str:
    if not matches:
        raise AdminError(f"no {kind} {ref!r}", 404)
    if len(matches) > 1:
        raise AdminError(f"{len(matches)} {kind}s match {ref!r}; use the id")
    return matches[0]


@dataclass
class OktaDirectory:
    org: OktaOrg
    kind: str = "okta"

    def counts(self) -> tuple[int, int]:
        return len(self.org.users), len(self.org.groups)

    def user_id(self, ref: str) -> str:
        if ref in self.org.users:
            return ref
        wanted = ref.casefold()
        return _one([i for i, u in self.org.users.items()
                     if wanted in (str(u["profile"].get("login")).casefold(),
                                   str(u["profile"].get("email")).casefold())], "user", ref)

    def group_id(self, ref: str) -> str:
        if ref in self.org.groups:
            return ref
        return _one([i for i, g in self.org.groups.items() if g["profile"]["name"] == ref], "group", ref)

    def members(self, group_id: str) -> list[str]:
        return self.org.sorted_members(group_id)

    def add_user(self, email: str, first_name: str, last_name: str) -> str:
        return self.org.hire(first_name, last_name, email)

    def disable_user(self, user_id: str) -> bool:
        if self.org.users[user_id]["status"] == "DEPROVISIONED":
            return False
        self.org.deactivate(user_id)
        return True

    def delete_user(self, user_id: str) -> None:
        self.org.leave(user_id, delete=True)

    def add_member(self, group_id: str, user_id: str) -> None:
        self.org.add_member(group_id, user_id)

    def remove_member(self, group_id: str, user_id: str) -> None:
        self.org.remove_member(group_id, user_id)

    def rename_group(self, group_id: str, name: str) -> None:
        self.org.rename_group(group_id, name)

    def delete_group(self, group_id: str) -> None:
        self.org.delete_group(group_id)

    def _app(self) -> str:
        if self.org.app_id is None:
            raise AdminError("this org has no app to assign to")
        return self.org.app_id

    def assign(self, principal_id: str, is_group: bool) -> None:
        (self.org.assign_group if is_group else self.org.assign_user)(self._app(), principal_id)

    def unassign(self, principal_id: str, is_group: bool) -> None:
        (self.org.unassign_group if is_group else self.org.unassign_user)(self._app(), principal_id)


@dataclass
class EntraDirectory:
    tenant: GraphTenant
    kind: str = "entra"

    def counts(self) -> tuple[int, int]:
        return self.tenant.user_count(), len(self.tenant.groups)

    def user_id(self, ref: str) -> str:
        live = {i: u for i, u in self.tenant.users.items() if not u.deleted}
        if ref in live:
            return ref
        wanted = ref.casefold()
        return _one([i for i, u in live.items()
                     if wanted in (u.user_principal_name.casefold(), (u.mail or "").casefold())], "user", ref)

    def group_id(self, ref: str) -> str:
        if ref in self.tenant.groups:
            return ref
        return _one([i for i, g in self.tenant.groups.items() if g.display_name == ref], "group", ref)

    def members(self, group_id: str) -> list[str]:
        return sorted(self.tenant.groups[group_id].members)

    def add_user(self, email: str, first_name: str, last_name: str) -> str:
        return self.tenant.hire(email, mail=email, given_name=first_name, surname=last_name)

    def disable_user(self, user_id: str) -> bool:
        if self.tenant.users[user_id].account_enabled is False:
            return False
        self.tenant.disable(user_id)
        return True

    def delete_user(self, user_id: str) -> None:
        self.tenant.soft_delete(user_id)

    def add_member(self, group_id: str, user_id: str) -> None:
        self.tenant.add_member(group_id, user_id)

    def remove_member(self, group_id: str, user_id: str) -> None:
        self.tenant.remove_member(group_id, user_id)

    def rename_group(self, group_id: str, name: str) -> None:
        self.tenant.rename_group(group_id, name)

    def delete_group(self, group_id: str) -> None:
        self.tenant.delete_group(group_id)

    def assign(self, principal_id: str, is_group: bool) -> None:
        self.tenant.assign(principal_id)

    def unassign(self, principal_id: str, is_group: bool) -> None:
        self.tenant.unassign(principal_id)


def directory_of(sim: SimulatorServer) -> Directory:
    if isinstance(sim, OktaSimulator):
        return OktaDirectory(sim.org)
    if isinstance(sim, GraphSimulator):
        return EntraDirectory(sim.tenant)
    raise TypeError(f"no admin API for {type(sim).__name__}")


# --- actions: each takes the directory and the request body, returns (message, changed) --

Outcome = tuple[str, int]


def _text(body: dict[str, Any], key: str, required: bool = True) -> str:
    value = body.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or not value.strip():
        raise AdminError(f"{key!r} must be a non-empty string")
    return value.strip()


def _texts(body: dict[str, Any], key: str) -> list[str]:
    values = body.get(key) or []
    if not isinstance(values, list) or not all(isinstance(v, str) and v.strip() for v in values):
        raise AdminError(f"{key!r} must be a list of non-empty strings")
    return [v.strip() for v in values]


def _targets(d: Directory, body: dict[str, Any]) -> list[str]:
    """The users named in `users`, then every member of `group`, without repeats."""
    ids = [d.user_id(ref) for ref in _texts(body, "users")]
    if body.get("group") is not None:
        ids += d.members(d.group_id(_text(body, "group")))
    if not ids:
        raise AdminError("name at least one user, or a group")
    return list(dict.fromkeys(ids))


def add_user(d: Directory, body: dict[str, Any]) -> Outcome:
    email = _text(body, "email")
    groups = [d.group_id(ref) for ref in _texts(body, "groups")]
    local = email.split("@")[0]
    user_id = d.add_user(email, _text(body, "first_name", False) or local.capitalize(),
                         _text(body, "last_name", False) or "User")
    for group_id in groups:
        d.add_member(group_id, user_id)
    return f"added user {email} ({user_id})", 1


def disable_user(d: Directory, body: dict[str, Any]) -> Outcome:
    changed = sum(d.disable_user(user_id) for user_id in _targets(d, body))
    return f"disabled {changed} user(s)", changed


def delete_user(d: Directory, body: dict[str, Any]) -> Outcome:
    targets = _targets(d, body)
    for user_id in targets:
        d.delete_user(user_id)
    return f"deleted {len(targets)} user(s)", len(targets)


def move_user(d: Directory, body: dict[str, Any]) -> Outcome:
    source = d.group_id(_text(body, "from")) if body.get("from") is not None else None
    target = d.group_id(_text(body, "to")) if body.get("to") is not None else None
    if source is None and target is None:
        raise AdminError("name a group to move from, to, or both")
    users = [d.user_id(ref) for ref in _texts(body, "users")]
    if not users:
        raise AdminError("name at least one user")
    for user_id in users:
        if source is not None:
            d.remove_member(source, user_id)
        if target is not None:
            d.add_member(target, user_id)
    return f"moved {len(users)} user(s)", len(users)


def rename_group(d: Directory, body: dict[str, Any]) -> Outcome:
    group_id, name = d.group_id(_text(body, "group")), _text(body, "name")
    d.rename_group(group_id, name)
    return f"renamed group {group_id} to {name!r}", 1


def delete_group(d: Directory, body: dict[str, Any]) -> Outcome:
    group_id = d.group_id(_text(body, "group"))
    d.delete_group(group_id)
    return f"deleted group {group_id}", 1


def _principals(d: Directory, body: dict[str, Any]) -> list[tuple[str, bool]]:
    principals = [(d.user_id(ref), False) for ref in _texts(body, "users")]
    principals += [(d.group_id(ref), True) for ref in _texts(body, "groups")]
    if not principals:
        raise AdminError("name at least one user or group")
    return principals


def assign(d: Directory, body: dict[str, Any]) -> Outcome:
    principals = _principals(d, body)
    for principal_id, is_group in principals:
        d.assign(principal_id, is_group)
    return f"assigned {len(principals)} principal(s)", len(principals)


def unassign(d: Directory, body: dict[str, Any]) -> Outcome:
    principals = _principals(d, body)
    for principal_id, is_group in principals:
        d.unassign(principal_id, is_group)
    return f"unassigned {len(principals)} principal(s)", len(principals)


ACTIONS: dict[str, Callable[[Directory, dict[str, Any]], Outcome]] = {
    "add-user": add_user,
    "disable-user": disable_user,
    "delete-user": delete_user,
    "move-user": move_user,
    "rename-group": rename_group,
    "delete-group": delete_group,
    "assign": assign,
    "unassign": unassign,
}


def install(sim: SimulatorServer, on_change: Callable[[], None] = lambda: None) -> Directory:
    """Serve the admin API on `sim` (for `sim.admin_token`); `on_change` runs, under the
    simulator's lock, after every action that changed something (e.g. to save the state)."""
    directory = directory_of(sim)

    def info(request: Request) -> Response:
        users, groups = directory.counts()
        return Response.json({"kind": directory.kind, "users": users, "groups": groups})

    def act(request: Request) -> Response:
        action = ACTIONS.get(request.params["action"])
        if action is None:
            return Response.json({"error": f"unknown action {request.params['action']!r}"}, 404)
        try:
            body = request.json()
            if not isinstance(body, dict):
                raise AdminError("the request body must be a JSON object")
            message, changed = action(directory, body)
        except json.JSONDecodeError:
            return Response.json({"error": "the request body is not JSON"}, 400)
        except AdminError as error:
            return Response.json({"error": str(error)}, error.status)
        except KeyError as error:  # e.g. Graph refuses a deleted user as a member
            return Response.json({"error": f"no such user or group: {error.args[0]}"}, 404)
        if changed:
            on_change()
        return Response.json({"message": message, "changed": changed})

    sim.add_admin_route("GET", "/info", info)
    sim.add_admin_route("POST", "/{action}", act)
    return directory

