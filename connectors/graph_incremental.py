"""Microsoft Graph reads since a watermark: both delta links replayed, and with
`service_principal_id` the app's assignments listed again and compared with the scope the
watermark keeps (groups newly assigned are read in full, users entering scope are fetched
by id). Builds on the full read's blocks in `connectors.graph_read`; `connectors.graph`
decides which read to do and falls back to a full read when Graph refuses a link.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from connectors.graph_read import _Assignments, _Reader, _result, _user_ids
from connectors.graph_rounds import (
    USER_SELECT,
    GroupsRound,
    UsersRound,
    batched_filter_urls,
    created_since,
    external_group,
    list_all,
    normalise_user,
    read_groups,
    read_users,
    split,
)
from connectors.graph_watermark import Watermark
from reconcile import clock
from reconcile.model import Changes, ExternalGroup, MembershipDelta


class _IncrementalReader(_Reader):
    """A reader that can also read only what changed since a watermark (the delta links)."""

    def _incremental(self, mark: Watermark, now: datetime) -> Changes:
        users_f = self._submit(read_users, self.client, mark.users_link, self._where("users"),
                               self.directory.email_source, mark.created_after())
        groups_f = self._submit(read_groups, self.client, mark.groups_link,
                                self._where("groups"))
        assigned_f = self._submit(self._assignments) if self.directory.service_principal_id \
            else None
        users_round, groups_round = _result(users_f), _result(groups_f)
        links_at = clock.now()
        if assigned_f is None:
            return self._changes_all(mark, users_round, groups_round, now, links_at)
        return self._changes_assigned(mark, users_round, groups_round, _result(assigned_f), now,
                                      links_at)

    def _changes_all(self, mark: Watermark, users_round: UsersRound, groups_round: GroupsRound,
                     now: datetime, links_at: datetime) -> Changes:
        users, rejections = split(users_round.users.values())
        groups, memberships, removed_groups = [], [], set()
        for gid, delta in groups_round.groups.items():
            if delta.gone:
                removed_groups.add(gid)
                continue
            if delta.name is not None:
                groups.append(ExternalGroup(gid, delta.name))
            if delta.added or delta.removed:
                memberships.append(MembershipDelta(gid, frozenset(delta.added),
                                                   frozenset(delta.removed)))
        return Changes(
            users=tuple(users), groups=tuple(groups),
            removed_user_ids=frozenset(users_round.removed),
            removed_group_ids=frozenset(removed_groups), memberships=tuple(memberships),
            rejections=tuple(rejections), user_groups_complete=frozenset(users_round.created),
            watermark=self._mark(users_round, groups_round, now, mark.full_at, links_at).dump(),
        )

    def _changes_assigned(self, mark: Watermark, users_round: UsersRound,
                          groups_round: GroupsRound, assigned: _Assignments, now: datetime,
                          links_at: datetime) -> Changes:
        old_scope = mark.scope()
        group_members: dict[str, frozenset[str]] = {}
        groups: list[ExternalGroup] = []
        memberships: list[MembershipDelta] = []
        complete: set[str] = set()
        removed_groups = {gid for gid in mark.group_members
                          if gid not in assigned.groups
                          or (gid in groups_round.groups and groups_round.groups[gid].gone)}
        entering_groups = []
        for gid in assigned.groups:
            delta = groups_round.groups.get(gid)
            if delta is not None and delta.gone:
                continue
            if gid not in mark.group_members:
                entering_groups.append(gid)
                continue
            members = set(mark.group_members[gid])
            if delta is not None:
                members = (members | delta.added) - delta.removed
                if delta.name is not None:
                    groups.append(ExternalGroup(gid, delta.name))
                if delta.added or delta.removed:
                    memberships.append(MembershipDelta(gid, frozenset(delta.added),
                                                       frozenset(delta.removed)))
            group_members[gid] = frozenset(members)
        for gid, name, fetched in self._fetch_groups(entering_groups):
            group_members[gid] = fetched
            groups.append(external_group(gid, name, fetched))
            complete.add(gid)
        new_mark = self._mark(users_round, groups_round, now, mark.full_at, links_at, assigned,
                              group_members)
        new_scope = new_mark.scope()
        removed_users = (old_scope - new_scope) | (users_round.removed & (old_scope | new_scope))
        entering = new_scope - old_scope - users_round.users.keys() - users_round.removed
        records = [u for uid, u in users_round.users.items() if uid in new_scope]
        created = users_round.created & new_scope
        since = mark.created_after()
        for item in self._fetch_users(entering):
            records.append(normalise_user(item, self.directory.email_source))
            if since is not None and created_since(item, since):
                created.add(str(item["id"]))
        users, rejections = split(records)
        return Changes(
            users=tuple(users), groups=tuple(groups),
            removed_user_ids=frozenset(removed_users), removed_group_ids=frozenset(removed_groups),
            memberships=tuple(memberships), members_complete=frozenset(complete),
            rejections=tuple(rejections), user_groups_complete=frozenset(created),
            watermark=new_mark.dump(),
        )

    # --- helpers ------------------------------------------------------------------------

    def _fetch_users(self, ids: set[str]) -> list[dict[str, Any]]:
        """Current records of `ids` (deleted ones are simply absent), batched by id filter."""
        urls = batched_filter_urls(f"{self._graph}/v1.0/users", ids, USER_SELECT)
        futures = [self._submit(list_all, self.client, u, self._where("users by id"))
                   for u in urls]
        return [item for f in futures for item in _result(f)]

    def _fetch_groups(self, ids: list[str]) -> list[tuple[str, str | None, frozenset[str]]]:
        """(id, name, direct user members) of groups newly assigned to the app."""
        if not ids:
            return []
        urls = batched_filter_urls(f"{self._graph}/v1.0/groups", ids, "id,displayName")
        name_futures = [self._submit(list_all, self.client, u, self._where("groups by id"))
                        for u in urls]
        member_futures = {gid: self._submit(
            list_all, self.client,
            f"{self._graph}/v1.0/groups/{gid}/members?$select=id&$top=999",
            self._where("group members")) for gid in ids}
        names = {item["id"]: item.get("displayName") for f in name_futures
                 for item in _result(f)}
        out = []
        for gid, future in member_futures.items():
            members = _user_ids(_result(future))
            if gid in names:  # a group deleted since it was assigned is not in scope
                out.append((gid, names[gid], members))
        return out
