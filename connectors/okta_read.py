"""One Okta read's requests over an open pager: the building blocks, the full read, and
one user's read (provision on demand). Reads since a watermark build on these in
`connectors.okta_incremental`; `connectors.okta` decides which read to do.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote, urlsplit

from config import OktaDirectorySettings
from connectors.errors import AuthError, ConnectorError, PartialReadError, PermanentError
from connectors.okta_app_log import latest_app_event
from connectors.okta_http import NotFound, OktaPager
from connectors.okta_log import MEMBERSHIP_EVENTS, latest_membership_event
from connectors.okta_map import is_built_in, is_member_in_scope, map_group, map_user, user_id_of
from connectors.okta_watermark import GroupMark, Watermark, handled_marks, okta_time
from reconcile.id_sets import Members
from reconcile.model import Changes, ExternalGroup, ExternalUser, Kind, Rejection, Snapshot

log = logging.getLogger("connectors.okta")

USERS_PAGE = 200  # the maximum /api/v1/users allows
GROUPS_PAGE = 10000  # the maximum /api/v1/groups allows
GROUP_MEMBERS_PAGE = 1000  # the maximum /api/v1/groups/{id}/users allows
APP_USERS_PAGE = 500  # the maximum /api/v1/apps/{id}/users allows
APP_GROUPS_PAGE = 200  # the maximum /api/v1/apps/{id}/groups allows
LOG_PAGE = 1000  # the maximum /api/v1/logs allows
ORG_EVENTS = ("user.lifecycle.delete.completed", "group.lifecycle.delete") + MEMBERSHIP_EVENTS
USER_REACTIVATED = "user.lifecycle.reactivate"
APP_EVENTS = ORG_EVENTS + (
    "application.user_membership.add",
    "application.user_membership.remove",
    "group.application_assignment.add",
    "group.application_assignment.remove",
    USER_REACTIVATED,
)


def _path_of(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _filter(expression: str) -> str:
    return quote(expression, safe="")


def _event_filter(types: Iterable[str]) -> str:
    return _filter(" or ".join(f'eventType eq "{t}"' for t in types))


class _Reader:
    """One read's worth of requests over an open pager."""

    def __init__(self, directory: OktaDirectorySettings, pager: OktaPager, now: datetime) -> None:
        self.directory = directory
        self.pager = pager
        self.now = now
        self.app_id = directory.app_id
        self.overlap = timedelta(minutes=directory.overlap_minutes)
        self.events = APP_EVENTS if self.app_id else ORG_EVENTS

    # -- building blocks

    async def all_pages(self, url: str, transform: Callable[[Any], Any] | None = None) -> list[Any]:
        """Every item of a list (through `transform`, page by page, so raw pages are not all
        kept), following `next` links until there are none."""
        items: list[Any] = []
        seen: set[str] = set()
        next_url: str | None = url
        while next_url is not None:
            if next_url in seen:
                raise PartialReadError(f"Okta repeated a page link for {urlsplit(url).path}")
            seen.add(next_url)
            page = await self.pager.get(next_url)
            if not isinstance(page.data, list):
                raise PartialReadError(f"Okta sent a page that is not a list for {urlsplit(url).path}")
            items.extend(page.data if transform is None else map(transform, page.data))
            next_url = page.next_url
        return items

    async def poll_log(self, url: str) -> tuple[list[dict[str, Any]], str, datetime]:
        """Events from the System Log cursor `url` up to now, the next cursor, and Okta's time."""
        events: list[dict[str, Any]] = []
        started: datetime | None = None
        while True:
            page = await self.pager.get(url)
            started = started or page.server_time
            if not isinstance(page.data, list):
                raise PartialReadError("Okta sent a System Log page that is not a list")
            if page.next_url is None:
                raise PartialReadError("Okta sent a System Log page without a next link")
            events.extend(e for e in page.data if isinstance(e, dict))
            url = _path_of(page.next_url)
            if len(page.data) < LOG_PAGE:  # caught up: the next link is where to resume
                return events, url, started or self.now

    async def gather(self, jobs: Iterable[Any]) -> list[Any]:
        """Run coroutines concurrently (the pager bounds requests in flight); the first failure
        cancels the rest."""
        try:
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(job) for job in jobs]
        except BaseExceptionGroup as failures:
            raise _most_telling(failures) from None
        return [task.result() for task in tasks]

    async def members(self, group_id: str, own: Mapping[str, str] | None = None) -> list[str | None] | None:
        """Ids of the group's members in scope (None for the others); None when the group no
        longer exists. With `own` (a user's id -> the string their record holds), each id is
        that string: the page's copy goes with the page (200,000 memberships: about 15 MiB)."""

        def member(raw: Any) -> str | None:
            uid = _member_id(raw)
            return uid if own is None or uid is None else own.get(uid, uid)

        try:
            return await self.all_pages(f"/api/v1/groups/{quote(group_id)}/users?limit={GROUP_MEMBERS_PAGE}", member)
        except NotFound:
            return None

    async def groups_with_members(
        self, raw_groups: list[Any], allowed_members: set[str] | None
    ) -> tuple[list[ExternalGroup], list[Rejection]]:
        wanted = [g for g in raw_groups if isinstance(g, dict) and (self.directory.include_everyone or not is_built_in(g))]
        groups: list[ExternalGroup] = []
        rejections: list[Rejection] = []
        readable = [g for g in wanted if isinstance(g.get("id"), str)]
        own = None if allowed_members is None else {uid: uid for uid in allowed_members}
        member_lists = await self.gather(self.members(g["id"], own) for g in readable)
        for raw, members in zip(readable, member_lists):
            if members is None:
                continue  # deleted while we read: it is simply gone
            ids = Members(
                uid for uid in members if uid is not None and (allowed_members is None or uid in allowed_members))
            mapped = map_group(raw, ids)
            (groups if isinstance(mapped, ExternalGroup) else rejections).append(mapped)  # type: ignore[arg-type]
        for raw in wanted:
            if raw not in readable:
                rejections.append(Rejection(Kind.GROUP, "(unknown)", "malformed-record", "Okta sent a group without an id"))
        return groups, rejections

    @classmethod
    def map_users(cls, raw_users: Iterable[Any]) -> tuple[dict[str, ExternalUser], list[Rejection], set[str]]:
        """Mapped users by id, rejections, and the ids in scope (mapped or rejected)."""
        return cls.collect_users(map(map_user, raw_users))

    @staticmethod
    def collect_users(
        mapped_users: Iterable[ExternalUser | Rejection | None],
    ) -> tuple[dict[str, ExternalUser], list[Rejection], set[str]]:
        """Already mapped users, deduplicated by id (the last word wins)."""
        users: dict[str, ExternalUser] = {}
        rejections: dict[str, Rejection] = {}
        for mapped in mapped_users:
            if isinstance(mapped, ExternalUser):
                users[mapped.external_id] = mapped
                rejections.pop(mapped.external_id, None)
            elif isinstance(mapped, Rejection):
                key = mapped.external_id or f"#{len(rejections)}"
                rejections[key] = mapped
                users.pop(key, None)
        in_scope = set(users) | {r.external_id for r in rejections.values() if r.external_id}
        return users, list(rejections.values()), in_scope

    def watermark(self, scope: str, full_at: datetime, since: datetime, cursor: str, events: list[dict[str, Any]],
                  previous: Watermark | None = None, handled: Mapping[str, GroupMark] | None = None,
                  app_users: frozenset[str] | None = None) -> str:
        """The watermark after this read: `previous` is the one it read from (None for a full
        read), `app_users` the app's users as this read leaves them (None: not known)."""
        seen = _latest(latest_membership_event(events), previous.seen if previous is not None else None)
        app_seen = None
        if self.app_id is not None and app_users is not None:
            app_seen = _latest(latest_app_event(events, self.app_id), previous.app_seen if previous is not None else None)
        return Watermark(scope, full_at, since, cursor, seen, dict(handled or {}), app_users, app_seen,
                         previous.packed_app_users if previous is not None else None).dump()

    def log_start_url(self) -> str:
        since = okta_time(self.now - self.overlap)
        return f"/api/v1/logs?since={quote(since)}&limit={LOG_PAGE}&filter={_event_filter(self.events)}"

    # -- full read

    async def full(self, scope: str) -> Snapshot:
        # The log cursor comes first, so whatever changes while we read is seen next time.
        events, cursor, started = await self.poll_log(self.log_start_url())
        app_users = None
        if self.app_id:
            users, groups, rejections, raw_groups, app_users = await self._full_app()
        else:
            users, groups, rejections, raw_groups = await self._full_org()
        log.info("okta full read: %d users, %d groups, %d rejections, %d requests",
                 len(users), len(groups), len(rejections), self.pager.requests)
        read_ids = {g.external_id for g in groups}
        # every group read is up to date: the next read, within the overlap, need not re-read it
        handled = handled_marks((g for g in raw_groups if isinstance(g, dict) and g.get("id") in read_ids),
                                started, self.overlap)
        return Snapshot(users=tuple(users), groups=tuple(groups), rejections=tuple(rejections),
                        watermark=self.watermark(scope, self.now, started, cursor, events, handled=handled,
                                                 app_users=app_users))

    async def _full_org(self) -> tuple[list[ExternalUser], list[ExternalGroup], list[Rejection], list[Any]]:
        mapped_users, raw_groups = await self.gather([
            self.all_pages(f"/api/v1/users?limit={USERS_PAGE}", map_user),
            self.all_pages(f"/api/v1/groups?limit={GROUPS_PAGE}"),
        ])
        users, rejections, in_scope = self.collect_users(mapped_users)
        groups, group_rejections = await self.groups_with_members(raw_groups, in_scope)
        return list(users.values()), groups, rejections + group_rejections, raw_groups

    async def _full_app(
        self,
    ) -> tuple[list[ExternalUser], list[ExternalGroup], list[Rejection], list[Any], frozenset[str]]:
        """The app's users and groups, and the ids of every user assigned to it (STAGED ones
        too: the watermark keeps them, so their activation needs no check)."""
        app = quote(self.app_id or "")
        try:
            listed, raw_app_groups = await self.gather([
                self.all_pages(f"/api/v1/apps/{app}/users?limit={APP_USERS_PAGE}&expand=user",
                               lambda app_user: (user_id_of(app_user), map_user(_embedded_user(app_user)))),
                self.all_pages(f"/api/v1/apps/{app}/groups?limit={APP_GROUPS_PAGE}&expand=group"),
            ])
        except NotFound:
            raise PermanentError(f"Okta has no app {self.app_id!r} (check app_id)") from None
        users, rejections, in_scope = self.collect_users(mapped for _, mapped in listed)
        assigned = frozenset(uid for uid, _ in listed if uid is not None)
        raw_groups = self._embedded_groups(raw_app_groups)
        groups, group_rejections = await self.groups_with_members(raw_groups, in_scope)
        return list(users.values()), groups, rejections + group_rejections, raw_groups, assigned

    @staticmethod
    def _embedded_users(app_users: Iterable[Any]) -> list[Any]:
        return [_embedded_user(app_user) for app_user in app_users]

    @staticmethod
    def _embedded_groups(app_groups: Iterable[Any]) -> list[Any]:
        result: list[Any] = []
        for assignment in app_groups:
            if not isinstance(assignment, dict):
                result.append({})
                continue
            embedded = assignment.get("_embedded", {}).get("group")
            result.append(embedded if isinstance(embedded, dict) else {"id": assignment.get("id")})
        return result

    # -- one user (provision on demand)

    async def one_user(self, key: str, known_groups: frozenset[str] = frozenset()) -> Changes:
        raw_user = await self.find_user(key)
        uid = user_id_of(raw_user)
        if uid is None:
            return Changes()
        mapped = map_user(raw_user)
        if mapped is None:
            return Changes()  # STAGED: not to be created, as in a full read
        raw_groups, in_app, app_groups = await self.gather([
            self.user_groups(uid),
            self.in_app(uid),
            self.app_group_ids(),
        ])
        if not in_app or raw_groups is None:
            return Changes()
        if isinstance(mapped, Rejection):
            return Changes(rejections=(mapped,))
        wanted = [g for g in raw_groups if isinstance(g, dict) and (app_groups is None or g.get("id") in app_groups)
                  and g.get("id") not in known_groups]
        # Members of an app's assigned group are in its scope through that group, so the
        # member filter (neither STAGED nor DEPROVISIONED) is all the scoping they need.
        groups, rejections = await self.groups_with_members(wanted, None)
        log.info("okta user read: %s, %d groups, %d requests", uid, len(groups), self.pager.requests)
        return Changes(users=(mapped,), groups=tuple(groups), rejections=tuple(rejections),
                       members_complete=frozenset(g.external_id for g in groups))

    async def find_user(self, key: str) -> Any:
        """The raw user `key` names, or None. A key with `@` is looked up as a login, then as
        an email (one filtered request); any other key, or an email that matched nothing
        exactly, goes to Okta's own lookup by id or login. An email that two users share
        names nobody: provisioning one of them would be a guess."""
        if "@" in key:
            value = key.replace("\\", "\\\\").replace('"', '\\"')
            expression = _filter(f'profile.email eq "{value}" or profile.login eq "{value}"')
            found = [u for u in await self.all_pages(f"/api/v1/users?limit={USERS_PAGE}&filter={expression}")
                     if user_id_of(u)]
            by_login = [u for u in found if isinstance(u.get("profile"), dict) and u["profile"].get("login") == key]
            by_email = [u for u in found if isinstance(u.get("profile"), dict) and u["profile"].get("email") == key]
            for candidates in (by_login, by_email):
                if len(candidates) == 1:
                    return candidates[0]
            if found:
                return None
        # An id, a login's short name, or an email written in another case: Okta's own lookup.
        page = await self.pager.get_optional(f"/api/v1/users/{quote(key, safe='@')}")
        return page.data if page is not None and isinstance(page.data, dict) else None

    async def in_app(self, uid: str) -> bool:
        """Whether the user is assigned to the app, directly or through a group (always, without one)."""
        if not self.app_id:
            return True
        # a 404 for an unknown app is left to `app_group_ids`, which says so
        return await self.pager.get_optional(f"/api/v1/apps/{quote(self.app_id)}/users/{quote(uid)}") is not None

    async def user_groups(self, uid: str) -> list[Any] | None:
        """The user's groups; None when the user was deleted meanwhile."""
        try:
            return await self.all_pages(f"/api/v1/users/{quote(uid)}/groups")
        except NotFound:
            return None

    async def app_group_ids(self) -> set[str] | None:
        """The ids of the app's assigned groups; None without an app (every group counts)."""
        if not self.app_id:
            return None
        try:
            assignments = await self.all_pages(f"/api/v1/apps/{quote(self.app_id)}/groups?limit={APP_GROUPS_PAGE}")
        except NotFound:
            raise PermanentError(f"Okta has no app {self.app_id!r} (check app_id)") from None
        return {a["id"] for a in assignments if isinstance(a, dict) and isinstance(a.get("id"), str)}


def _latest(one: datetime | None, other: datetime | None) -> datetime | None:
    return max((t for t in (one, other) if t is not None), default=None)


def _member_id(raw: Any) -> str | None:
    """A group member's id when the member counts (neither STAGED nor DEPROVISIONED)."""
    return user_id_of(raw) if is_member_in_scope(raw) else None


def _embedded_user(app_user: Any) -> Any:
    """The user inside an AppUser (`expand=user`). Without one, a stand-in that maps to a
    rejection carrying the id: a record is never dropped silently."""
    embedded = app_user.get("_embedded", {}).get("user") if isinstance(app_user, dict) else None
    if isinstance(embedded, dict):
        return embedded
    return {"id": app_user.get("id") if isinstance(app_user, dict) else None, "status": None}


def _most_telling(failures: BaseExceptionGroup[BaseException]) -> BaseException:
    """The one error to raise for concurrent failures: an auth failure first, then the
    other permanent ones, then partial reads, then any other."""
    leaves: list[BaseException] = []

    def flatten(error: BaseException) -> None:
        if isinstance(error, BaseExceptionGroup):
            for inner in error.exceptions:
                flatten(inner)
        else:
            leaves.append(error)

    flatten(failures)
    for kind in (AuthError, PermanentError, PartialReadError, ConnectorError):
        for error in leaves:
            if isinstance(error, kind):
                return error
    return leaves[0]

