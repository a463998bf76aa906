"""The requests of a Microsoft Graph read other than a delta replay: the full read (an
initial round of `/users/delta` and `/groups/delta`, and with `service_principal_id` the
app's assignments), one user's read (provision on demand), and the building blocks the
incremental read in `connectors.graph_incremental` shares with them: the assignments, the
watermark a read leaves, and requests run on the connector's thread pool.
`connectors.graph` decides which read to do.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import quote

from config import EntraDirectorySettings
from connectors.errors import PermanentError
from connectors.graph_http import GraphClient
from connectors.graph_rounds import (
    GROUP_SELECT,
    USER_DELTA_SELECT_WITHOUT_CREATED,
    USER_SELECT,
    USER_TYPE,
    GroupsRound,
    UsersRound,
    external_group,
    list_all,
    normalise_user,
    read_groups,
    read_users,
    split,
)
from connectors.graph_watermark import Watermark
from reconcile import clock
from reconcile.model import Changes, Snapshot

log = logging.getLogger("connectors.graph")

_GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
T = TypeVar("T")


@dataclass
class _Assignments:
    users: set[str] = field(default_factory=set)
    groups: set[str] = field(default_factory=set)


class _Reader:
    """The reads of one Entra directory over the client, thread pool and futures that
    `connectors.graph.GraphConnector` sets up and owns."""

    directory: EntraDirectorySettings
    client: GraphClient
    _graph: str
    _pool: ThreadPoolExecutor
    _futures: list[Future[Any]]

    def _read_user(self, key: str, known_groups: frozenset[str]) -> Changes:
        assigned_f = self._submit(self._assignments) if self.directory.service_principal_id \
            else None
        base = f"{self._graph}/v1.0/users"
        prop = "id" if _GUID.match(key) else self.directory.email_source
        value = key.replace("'", "''")  # OData quotes a quote by doubling it
        expression = quote(f"{prop} eq '{value}'", safe="")
        found = list_all(self.client, f"{base}?$filter={expression}&$select={USER_SELECT}",
                         self._where("user by key"))
        if len(found) != 1:
            return Changes()
        item = found[0]
        uid = str(item["id"])
        groups = {g["id"]: g.get("displayName") for g in list_all(
            self.client, f"{base}/{uid}/memberOf?$select=id,displayName&$top=999",
            self._where("user groups")) if g.get("@odata.type") == "#microsoft.graph.group"}
        if assigned_f is not None:
            assigned = _result(assigned_f)
            if uid not in assigned.users and not groups.keys() & assigned.groups:
                return Changes()
            groups = {gid: name for gid, name in groups.items() if gid in assigned.groups}
        groups = {gid: name for gid, name in groups.items() if gid not in known_groups}
        members = {gid: self._submit(list_all, self.client,
                                     f"{self._graph}/v1.0/groups/{gid}/members?$select=id&$top=999",
                                     self._where("group members")) for gid in groups}
        full_groups = tuple(external_group(gid, groups[gid], _user_ids(_result(f)))
                            for gid, f in members.items())
        users, rejections = split([normalise_user(item, self.directory.email_source)])
        return Changes(users=tuple(users), groups=full_groups, rejections=tuple(rejections),
                       members_complete=frozenset(groups))

    # --- full ---------------------------------------------------------------------------

    def _initial_users_round(self, ids: dict[str, str]) -> UsersRound:
        """The users delta's initial round, with `createdDateTime` if Graph lets a delta
        select it; without it no user counts as created since the last read (each returning
        user's groups are then read, as before), which costs requests, never memberships."""
        url = f"{self._graph}/v1.0/users/delta?$select="
        try:
            return read_users(self.client, url + USER_SELECT, self._where("users"), self.directory.email_source,
                              ids=ids)
        except PermanentError as exc:
            # Graph names the refused property in some answers and says only "Unsupported
            # Query" in others: a round refused with a 400 is tried once more without it.
            if "HTTP 400" not in str(exc):
                raise
            log.warning("entra %s: the users delta refused its $select (%s); reading without createdDateTime, so "
                        "returning users' groups are read one user at a time", self.directory.name, exc)
        return read_users(self.client, url + USER_DELTA_SELECT_WITHOUT_CREATED, self._where("users"),
                          self.directory.email_source, ids=ids)

    def _full(self, now: datetime) -> Snapshot:
        ids: dict[str, str] = {}  # one string per user id for both rounds (`read_groups`)
        users_f = self._submit(self._initial_users_round, ids)
        groups_f = self._submit(read_groups, self.client,
                                f"{self._graph}/v1.0/groups/delta?$select={GROUP_SELECT}",
                                self._where("groups"), ids)
        assigned_f = self._submit(self._assignments) if self.directory.service_principal_id \
            else None
        users_round, groups_round = _result(users_f), _result(groups_f)
        links_at = clock.now()
        assigned = _result(assigned_f) if assigned_f else None
        if assigned is None:
            users, rejections = split(users_round.users.values())
            groups = [external_group(gid, g.name, g.added)
                      for gid, g in groups_round.groups.items() if not g.gone]
            mark = self._mark(users_round, groups_round, now, now, links_at)
        else:
            group_members = {gid: frozenset(groups_round.groups[gid].added)
                             for gid in assigned.groups
                             if gid in groups_round.groups and not groups_round.groups[gid].gone}
            mark = self._mark(users_round, groups_round, now, now, links_at, assigned, group_members)
            scope = mark.scope()
            users, rejections = split(record for uid, record in users_round.users.items()
                                      if uid in scope)
            groups = [external_group(gid, groups_round.groups[gid].name, members)
                      for gid, members in group_members.items()]
        log.info("entra %s: full read: %d users, %d groups, %d rejected, %d+%d pages",
                 self.directory.name, len(users), len(groups), len(rejections),
                 users_round.pages, groups_round.pages)
        return Snapshot(tuple(users), tuple(groups), tuple(rejections), mark.dump())

    # --- helpers ------------------------------------------------------------------------

    def _assignments(self) -> _Assignments:
        sp = self.directory.service_principal_id
        items = list_all(self.client,
                         f"{self._graph}/v1.0/servicePrincipals/{sp}/appRoleAssignedTo"
                         "?$top=999&$select=principalId,principalType",
                         self._where("assignments"))
        out = _Assignments()
        for item in items:
            kind, pid = item.get("principalType"), item.get("principalId")
            if isinstance(pid, str):
                if kind == "User":
                    out.users.add(pid)
                elif kind == "Group":
                    out.groups.add(pid)
        return out

    def _mark(self, users_round: UsersRound, groups_round: GroupsRound, now: datetime,
              full_at: datetime, links_at: datetime, assigned: _Assignments | None = None,
              group_members: dict[str, frozenset[str]] | None = None) -> Watermark:
        return Watermark(
            users_link=users_round.delta_link, groups_link=groups_round.delta_link,
            issued_at=now, full_at=full_at, email_source=self.directory.email_source,
            service_principal_id=self.directory.service_principal_id,
            assigned_users=frozenset(assigned.users) if assigned else frozenset(),
            group_members=group_members or {}, links_at=links_at,
        )

    def _submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        future = self._pool.submit(fn, *args)
        self._futures.append(future)
        return future

    def _where(self, what: str) -> str:
        return f"entra {self.directory.name}: {what}"


def _result(future: Future[T]) -> T:
    return future.result()


def _user_ids(members: list[dict[str, Any]]) -> frozenset[str]:
    """The ids of the users in a `/members` listing (nested groups and devices left out)."""
    return frozenset(m["id"] for m in members
                     if m.get("@odata.type", USER_TYPE) == USER_TYPE and isinstance(m.get("id"), str))
