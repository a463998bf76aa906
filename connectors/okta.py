"""Okta through the official `okta` SDK (`kind = "okta"`): full reads and incremental reads.

`read(None)` returns a complete `Snapshot`; `read(watermark)` returns `Changes` since that
watermark, or a `Snapshot` when a full read is due (`full_every_hours` since the last full
read, a changed scope, an unreadable watermark, or a System Log cursor Okta refuses).
Any failed page fails the whole read (S1): nothing partial is ever returned.

Scope: with `app_id`, the app's assigned users (direct or through a group,
`/apps/{id}/users?expand=user`) and its assigned groups (`/apps/{id}/groups?expand=group`)
with their members; without it, every user and group of the org. Okta's `Everyone`
(`BUILT_IN`) group is left out unless `include_everyone`. Group members are the users in
scope that are neither STAGED nor DEPROVISIONED.

Incremental reads cost requests in proportion to what changed:
- users: `filter=lastUpdated gt "<last read start - overlap_minutes>"` (the filter also
  returns DEPROVISIONED users, reported inactive);
- groups: `lastUpdated` or `lastMembershipUpdated` past the same instant (with `app_id`,
  the app's assigned groups, listed in full);
- the System Log (`/api/v1/logs`, polled through its `next` cursor): membership changes
  (`group.user_membership.add` / `.remove`), reported as `MembershipDelta`s, and what
  filters cannot see: deleted users and groups, and, with `app_id`, app (un)assignments of
  users and groups. A moved group's full member list is re-read (and reported in
  `members_complete`) only where the log cannot tell the change in full: a new or changed
  group record, a membership change no event covers, a late or unreadable event
  (`connectors.okta_log` decides). In app scope each changed user is checked with
  `/apps/{id}/users/{user}`; past `MAX_USER_CHECKS` changed users, a full read is cheaper
  and is done instead.

`read_user(key)` reads one user (by id, login or email) for provisioning on demand: the
user, their groups (`/users/{id}/groups`; with `app_id`, only the app's assigned groups and
only if the user is assigned, `/apps/{id}/users/{user}`) and those groups' members: a
handful of requests instead of a whole read. It returns `Changes` with no watermark.

The watermark is this module's JSON (`Watermark`): the scope, when the last full read
happened (our clock, `reconcile.clock.now` unless a clock is given), the server's time at
the start of the last read, and the System Log cursor. The engine stores it as it is.
"""

from __future__ import annotations

import asyncio
import json
import logging
import ssl
from collections.abc import Callable, Collection, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

from config import ConfigError, DirectorySettings, OktaDirectorySettings, Settings, read_secret
from connectors.base import PageCounter, ReadProgress
from connectors.errors import AuthError, ConnectorError, PartialReadError, PermanentError, TransientError
from connectors.okta_http import ApiToken, Credentials, CursorRejected, NotFound, OktaPager, Page, ServiceApp, Sleep
from connectors.retry import DEFAULT_MAX_RETRY_WAIT_SECONDS, configured_max_retry_wait
from connectors.okta_log import MEMBERSHIP_EVENTS, GroupStamps, latest_membership_event, membership_changes
from connectors.okta_map import is_built_in, is_member_in_scope, map_group, map_user, user_id_of
from reconcile import clock as default_clock
from reconcile.model import Changes, ExternalGroup, ExternalUser, Kind, MembershipDelta, Rejection, Snapshot

__all__ = ["ApiToken", "OktaConnector", "ServiceApp", "Watermark", "build"]

log = logging.getLogger("connectors.okta")

# 2: the log cursor follows membership events too; a version-1 cursor does not, so its
# watermark is unreadable and the next read is a full one.
WATERMARK_VERSION = 2
USERS_PAGE = 200  # the maximum /api/v1/users allows
GROUPS_PAGE = 10000  # the maximum /api/v1/groups allows
GROUPS_BY_ID = 50  # groups looked up by id in one `filter=id eq ... or ...` request
GROUP_MEMBERS_PAGE = 1000  # the maximum /api/v1/groups/{id}/users allows
APP_USERS_PAGE = 500  # the maximum /api/v1/apps/{id}/users allows
APP_GROUPS_PAGE = 200  # the maximum /api/v1/apps/{id}/groups allows
LOG_PAGE = 1000  # the maximum /api/v1/logs allows
MAX_USER_CHECKS = 100  # app scope: more changed users than this -> a full read instead
ORG_EVENTS = ("user.lifecycle.delete.completed", "group.lifecycle.delete") + MEMBERSHIP_EVENTS
APP_EVENTS = ORG_EVENTS + (
    "application.user_membership.add",
    "application.user_membership.remove",
    "group.application_assignment.add",
    "group.application_assignment.remove",
)
T = TypeVar("T")


def okta_time(when: datetime) -> str:
    when = when.astimezone(UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass(frozen=True)
class Watermark:
    """Where the last read left off. `since` is Okta's clock; `full_at` is ours."""

    scope: str
    full_at: datetime
    since: datetime
    log_cursor: str  # path and query of the System Log `next` link
    # The latest `published` of a membership event any poll has returned (`okta_log`).
    seen: datetime | None = None

    def dump(self) -> str:
        return json.dumps({
            "v": WATERMARK_VERSION,
            "scope": self.scope,
            "full_at": self.full_at.isoformat(),
            "since": okta_time(self.since),
            "log": self.log_cursor,
            "seen": okta_time(self.seen) if self.seen is not None else None,
        }, sort_keys=True)

    @classmethod
    def parse(cls, text: str | None) -> Watermark | None:
        """The watermark in `text`, or None when it is missing or not one of ours."""
        if not text:
            return None
        try:
            data = json.loads(text)
            if data.get("v") != WATERMARK_VERSION or not str(data["log"]).startswith("/api/v1/logs"):
                return None
            full_at, since = datetime.fromisoformat(data["full_at"]), _parse_time(data["since"])
            seen = _parse_time(data["seen"]) if data.get("seen") is not None else None
            if full_at.tzinfo is None or since.tzinfo is None or (seen is not None and seen.tzinfo is None):
                return None
            return cls(str(data["scope"]), full_at, since, str(data["log"]), seen)
        except (ValueError, KeyError, TypeError, AttributeError):
            return None


def _path_of(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _filter(expression: str) -> str:
    return quote(expression, safe="")


def _event_filter(types: Iterable[str]) -> str:
    return _filter(" or ".join(f'eventType eq "{t}"' for t in types))


class OktaConnector:
    """Reads one Okta org (or one app's scope of it); see the module docstring."""

    def __init__(
        self,
        directory: OktaDirectorySettings,
        credentials: Credentials,
        *,
        ssl_context: ssl.SSLContext,
        clock: Callable[[], datetime] = default_clock.now,
        sleep: Sleep | None = None,
        max_retry_wait_seconds: float = DEFAULT_MAX_RETRY_WAIT_SECONDS,
        monotonic: Callable[[], float] | None = None,
    ) -> None:
        self.directory = directory
        self._credentials = credentials
        self._ssl_context = ssl_context
        self._clock = clock
        self._sleep = sleep
        self._max_retry_wait = max_retry_wait_seconds
        self._monotonic = monotonic
        self.scope = (f"app:{directory.app_id}" if directory.app_id else "org") + (
            "+everyone" if directory.include_everyone else "")
        self.last_request_count = 0

    def __repr__(self) -> str:
        return f"OktaConnector(org_url={self.directory.org_url!r}, scope={self.scope!r})"

    def read(self, watermark: str | None, progress: ReadProgress | None = None) -> Snapshot | Changes:
        """A `Snapshot` (full read) or `Changes` since `watermark`; raises `ConnectorError`.
        `progress("read", pages, records)` is called after every page."""
        try:
            result: Snapshot | Changes = _run(self._read(watermark, PageCounter(progress)))
            return result
        except ConnectorError:
            raise
        except Exception as exc:  # a bug or an SDK surprise must still fail the read cleanly
            log.error("okta read failed unexpectedly: %s", type(exc).__name__, exc_info=True)
            raise TransientError(f"Okta read failed unexpectedly ({type(exc).__name__})") from None

    def close(self) -> None:
        """Nothing is held between reads: each read opens and closes its own HTTP session."""

    def read_user(self, key: str) -> Changes:
        """Provision on demand: one user, by Okta id, login or email, with every in-scope group
        that lists them, each with its complete member list (`members_complete`).

        A user that does not exist, is STAGED, or is outside the app's scope gives empty
        Changes. The result has no watermark: it does not move the directory's cursor.
        Requests: the lookup, then the user's groups, the app assignment check and the app's
        group list at once, then the members of each of the user's in-scope groups at once.
        """
        try:
            result: Changes = _run(self._read_user(key.strip()))
            return result
        except ConnectorError:
            raise
        except Exception as exc:  # as in `read`: a surprise still fails cleanly
            log.error("okta user read failed unexpectedly: %s", type(exc).__name__, exc_info=True)
            raise TransientError(f"Okta user read failed unexpectedly ({type(exc).__name__})") from None

    async def _read_user(self, key: str) -> Changes:
        if not key:
            return Changes()
        async with self._pager(PageCounter(None)) as pager:
            try:
                return await _Reader(self.directory, pager, self._clock()).one_user(key)
            finally:
                self.last_request_count = pager.requests

    def _pager(self, counter: PageCounter) -> OktaPager:
        return OktaPager(
            self.directory.org_url,
            self._credentials,
            ssl_context=self._ssl_context,
            request_timeout=self.directory.request_timeout_seconds,
            max_retries=self.directory.max_retries,
            retry_budget_seconds=self.directory.retry_budget_seconds,
            max_concurrency=self.directory.max_concurrency,
            sleep=self._sleep,
            max_retry_wait=self._max_retry_wait,
            label=f"okta {self.directory.name}",
            on_page=counter.json_page,
            monotonic=self._monotonic,
        )

    async def _read(self, watermark: str | None, counter: PageCounter) -> Snapshot | Changes:
        state = Watermark.parse(watermark)
        now = self._clock()
        full_due = state is None or state.scope != self.scope or (
            now - state.full_at >= timedelta(hours=self.directory.full_every_hours))
        async with self._pager(counter) as pager:
            reader = _Reader(self.directory, pager, now)
            try:
                if full_due or state is None:
                    return await reader.full(self.scope)
                try:
                    return await reader.incremental(state)
                except _FullReadNeeded as why:
                    log.info("okta incremental read falls back to a full read: %s", why)
                    return await reader.full(self.scope)
            finally:
                self.last_request_count = pager.requests


class _FullReadNeeded(Exception):
    """An incremental read cannot be trusted or would cost more than a full one."""


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

    async def members(self, group_id: str) -> list[str | None] | None:
        """Ids of the group's members in scope (None for the others); None when the group no
        longer exists."""
        try:
            return await self.all_pages(f"/api/v1/groups/{quote(group_id)}/users?limit={GROUP_MEMBERS_PAGE}",
                                        _member_id)
        except NotFound:
            return None

    async def groups_with_members(
        self, raw_groups: list[Any], allowed_members: set[str] | None
    ) -> tuple[list[ExternalGroup], list[Rejection]]:
        wanted = [g for g in raw_groups if isinstance(g, dict) and (self.directory.include_everyone or not is_built_in(g))]
        groups: list[ExternalGroup] = []
        rejections: list[Rejection] = []
        readable = [g for g in wanted if isinstance(g.get("id"), str)]
        member_lists = await self.gather(self.members(g["id"]) for g in readable)
        for raw, members in zip(readable, member_lists):
            if members is None:
                continue  # deleted while we read: it is simply gone
            ids = frozenset(
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

    @staticmethod
    def watermark(scope: str, full_at: datetime, since: datetime, cursor: str, events: list[dict[str, Any]],
                  seen: datetime | None = None) -> str:
        latest = latest_membership_event(events)
        if seen is not None and (latest is None or seen > latest):
            latest = seen
        return Watermark(scope, full_at, since, cursor, latest).dump()

    def log_start_url(self) -> str:
        since = okta_time(self.now - self.overlap)
        return f"/api/v1/logs?since={quote(since)}&limit={LOG_PAGE}&filter={_event_filter(self.events)}"

    # -- full read

    async def full(self, scope: str) -> Snapshot:
        # The log cursor comes first, so whatever changes while we read is seen next time.
        events, cursor, started = await self.poll_log(self.log_start_url())
        if self.app_id:
            users, groups, rejections = await self._full_app()
        else:
            users, groups, rejections = await self._full_org()
        log.info("okta full read: %d users, %d groups, %d rejections, %d requests",
                 len(users), len(groups), len(rejections), self.pager.requests)
        return Snapshot(users=tuple(users), groups=tuple(groups), rejections=tuple(rejections),
                        watermark=self.watermark(scope, self.now, started, cursor, events))

    async def _full_org(self) -> tuple[list[ExternalUser], list[ExternalGroup], list[Rejection]]:
        mapped_users, raw_groups = await self.gather([
            self.all_pages(f"/api/v1/users?limit={USERS_PAGE}", map_user),
            self.all_pages(f"/api/v1/groups?limit={GROUPS_PAGE}"),
        ])
        users, rejections, in_scope = self.collect_users(mapped_users)
        groups, group_rejections = await self.groups_with_members(raw_groups, in_scope)
        return list(users.values()), groups, rejections + group_rejections

    async def _full_app(self) -> tuple[list[ExternalUser], list[ExternalGroup], list[Rejection]]:
        app = quote(self.app_id or "")
        try:
            mapped_users, raw_app_groups = await self.gather([
                self.all_pages(f"/api/v1/apps/{app}/users?limit={APP_USERS_PAGE}&expand=user",
                               lambda app_user: map_user(_embedded_user(app_user))),
                self.all_pages(f"/api/v1/apps/{app}/groups?limit={APP_GROUPS_PAGE}&expand=group"),
            ])
        except NotFound:
            raise PermanentError(f"Okta has no app {self.app_id!r} (check app_id)") from None
        users, rejections, in_scope = self.collect_users(mapped_users)
        groups, group_rejections = await self.groups_with_members(self._embedded_groups(raw_app_groups), in_scope)
        return list(users.values()), groups, rejections + group_rejections

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

    async def one_user(self, key: str) -> Changes:
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
        wanted = [g for g in raw_groups if isinstance(g, dict) and (app_groups is None or g.get("id") in app_groups)]
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

    # -- incremental read

    async def incremental(self, state: Watermark) -> Changes:
        try:
            events, cursor, started = await self.poll_log(state.log_cursor)
        except CursorRejected as exc:
            raise _FullReadNeeded("the System Log cursor was refused") from exc
        window = _Window(state.since, state.since - self.overlap, state.seen)
        since = okta_time(window.start)
        deleted_users = self._targets(events, {"user.lifecycle.delete.completed"}, "User")
        deleted_groups = self._targets(events, {"group.lifecycle.delete"}, "UserGroup")
        user_filter = _filter(f'lastUpdated gt "{since}"')
        raw_changed = await self.all_pages(f"/api/v1/users?limit={USERS_PAGE}&filter={user_filter}")
        if self.app_id:
            users, user_rejections, removed_users, raw_users, entered = await self._app_users_changed(
                raw_changed, events, deleted_users)
            groups, group_rejections, deltas, removed_groups = await self._app_groups_changed(
                window, events, deleted_groups)
        else:
            mapped, user_rejections, _ = self.map_users(raw_changed)
            users = list(mapped.values())
            raw_users, entered = raw_changed, set()
            removed_users = deleted_users - set(mapped)
            group_filter = _filter(f'lastUpdated gt "{since}" or lastMembershipUpdated gt "{since}"')
            raw_groups = await self.all_pages(f"/api/v1/groups?limit={GROUPS_PAGE}&filter={group_filter}")
            groups, group_rejections, deltas = await self.changed_memberships(
                self.in_scope_groups(raw_groups), events, window, deleted_groups)
            removed_groups = deleted_groups - {g.external_id for g in groups}
        active = {u.external_id for u in users if u.active}
        regained = await self._memberships_of(active & (self._returning(raw_users, since) | entered))
        # A member must be in scope (neither STAGED nor DEPROVISIONED) to count, as in a full
        # read; the status of a user this read did not see is left to the engine.
        not_members = {uid for raw in raw_users if (uid := user_id_of(raw)) and not is_member_in_scope(raw)}
        memberships = _combined(deltas, regained, removed_users, not_members)
        log.info("okta incremental read: %d users, %d groups re-read, %d membership deltas, %d+%d removed, "
                 "%d requests", len(users), len(groups), len(memberships), len(removed_users), len(removed_groups),
                 self.pager.requests)
        return Changes(
            users=tuple(users),
            groups=tuple(groups),
            removed_user_ids=frozenset(removed_users),
            removed_group_ids=frozenset(removed_groups),
            memberships=memberships,
            members_complete=frozenset(g.external_id for g in groups),
            rejections=tuple(user_rejections + group_rejections),
            watermark=self.watermark(state.scope, state.full_at, started, cursor, events, state.seen),
        )

    def in_scope_groups(self, raw_groups: Iterable[Any]) -> list[Any]:
        """The groups a read reports: all but Okta's `Everyone`, unless configured."""
        return [g for g in raw_groups if not isinstance(g, dict) or self.directory.include_everyone
                or not is_built_in(g)]

    async def changed_memberships(
        self,
        moved: list[Any],
        events: list[dict[str, Any]],
        window: _Window,
        deleted: set[str],
        *,
        known: dict[str, Any] | None = None,
        reread_too: Collection[str] = (),
    ) -> tuple[list[ExternalGroup], list[Rejection], tuple[MembershipDelta, ...]]:
        """The moved groups whose members must be re-read, with their complete member lists,
        and the membership deltas the System Log tells (`connectors.okta_log`).

        `known` holds every group in scope by id when the caller has listed them all (app
        scope); otherwise a group the log names but `moved` lacks is looked up by id."""
        with_id = {g["id"]: g for g in moved if isinstance(g, dict) and isinstance(g.get("id"), str)}
        decided = membership_changes(events, [GroupStamps.of(g) for g in with_id.values()],
                                     since=window.since, window_start=window.start, seen=window.seen)
        wanted = (set(decided.reread) | set(reread_too)) - deleted
        found = {gid: raw for gid, raw in {**(known or {}), **with_id}.items() if gid in wanted}
        if known is None:
            found.update({g["id"]: g for g in self.in_scope_groups(await self.groups_by_id(wanted - set(found)))})
        unreadable = [g for g in moved if not (isinstance(g, dict) and isinstance(g.get("id"), str))]
        groups, rejections = await self.groups_with_members([found[gid] for gid in sorted(found)] + unreadable, None)
        if decided.reread:
            reasons: dict[str, int] = {}
            for why in decided.reread.values():
                reasons[why] = reasons.get(why, 0) + 1
            log.info("okta incremental read: members re-read for %s",
                     ", ".join(f"{n} group(s): {why}" for why, n in sorted(reasons.items())))
        in_scope = None if known is None else set(known)
        deltas = tuple(d for d in decided.deltas if d.group_external_id not in wanted | deleted
                       and (in_scope is None or d.group_external_id in in_scope))
        return groups, rejections, deltas

    async def groups_by_id(self, group_ids: set[str]) -> list[Any]:
        """The records of these groups (those that still exist), a few per request."""
        ordered = sorted(group_ids)
        batches = [ordered[i:i + GROUPS_BY_ID] for i in range(0, len(ordered), GROUPS_BY_ID)]
        pages = await self.gather(
            self.all_pages(f"/api/v1/groups?limit={GROUPS_PAGE}&filter="
                           + _filter(" or ".join(f'id eq "{gid}"' for gid in batch)))
            for batch in batches)
        return [g for page in pages for g in page]

    @staticmethod
    def _returning(raw_users: Iterable[Any], since: str) -> set[str]:
        """Users whose status changed since the watermark (back from SUSPENDED or DEPROVISIONED,
        say): the engine dropped their memberships when they stopped, and their groups' member
        lists did not change in Okta, so only the user's own groups tell."""
        found = set()
        for raw in raw_users:
            if not isinstance(raw, dict):
                continue
            changed, created = raw.get("statusChanged"), raw.get("created")
            # a new user's groups show their arrival themselves (membership events)
            is_new = isinstance(created, str) and created > since
            if isinstance(changed, str) and changed > since and not is_new and (uid := user_id_of(raw)):
                found.add(uid)
        return found

    async def _memberships_of(self, user_ids: set[str]) -> tuple[MembershipDelta, ...]:
        """Each user's current groups, as memberships to (re)add."""
        if len(user_ids) > MAX_USER_CHECKS:
            raise _FullReadNeeded(f"{len(user_ids)} users came back")
        ordered = sorted(user_ids)
        lists = await self.gather(self.all_pages(f"/api/v1/users/{quote(uid)}/groups") for uid in ordered)
        added: dict[str, set[str]] = {}
        for uid, raw_groups in zip(ordered, lists):
            for raw in raw_groups:
                if isinstance(raw, dict) and isinstance(raw.get("id"), str) and (
                        self.directory.include_everyone or not is_built_in(raw)):
                    added.setdefault(raw["id"], set()).add(uid)
        return tuple(MembershipDelta(gid, added=frozenset(members)) for gid, members in sorted(added.items()))

    def _targets(self, events: list[dict[str, Any]], types: set[str], kind: str,
                 app_only: bool = False) -> set[str]:
        found: set[str] = set()
        for event in events:
            if event.get("eventType") not in types:
                continue
            targets = [t for t in event.get("target") or [] if isinstance(t, dict)]
            if app_only and not any(t.get("type") == "AppInstance" and t.get("id") == self.app_id for t in targets):
                continue
            found.update(str(t["id"]) for t in targets if t.get("type") == kind and t.get("id"))
        return found

    async def _app_users_changed(
        self, raw_changed: list[Any], events: list[dict[str, Any]], deleted: set[str]
    ) -> tuple[list[ExternalUser], list[Rejection], set[str], list[Any], set[str]]:
        """Changed users in the app: records, rejections, removed ids, the raw users, and the
        ids that (re)entered the app's scope."""
        hinted = self._targets(events, {"application.user_membership.add", "application.user_membership.remove"},
                               "User", app_only=True)
        entered = self._targets(events, {"application.user_membership.add"}, "User", app_only=True)
        candidates = ({uid for raw in raw_changed if (uid := user_id_of(raw))} | hinted) - deleted
        if len(candidates) > MAX_USER_CHECKS:
            raise _FullReadNeeded(f"{len(candidates)} users changed")
        app = quote(self.app_id or "")
        pages: list[Page | None] = await self.gather(
            self.pager.get_optional(f"/api/v1/apps/{app}/users/{quote(uid)}?expand=user") for uid in sorted(candidates))
        raw_users = self._embedded_users(p.data for p in pages if p is not None)
        users, rejections, in_scope = self.map_users(raw_users)
        removed = (candidates - in_scope) | deleted
        return list(users.values()), rejections, removed, raw_users, entered & in_scope

    async def _app_groups_changed(
        self, window: _Window, events: list[dict[str, Any]], deleted: set[str]
    ) -> tuple[list[ExternalGroup], list[Rejection], tuple[MembershipDelta, ...], set[str]]:
        """The app's assigned groups that changed: re-read ones, membership deltas of the
        others, and the ids of groups that left the app."""
        app = quote(self.app_id or "")
        try:
            raw = await self.all_pages(f"/api/v1/apps/{app}/groups?limit={APP_GROUPS_PAGE}&expand=group")
        except NotFound:
            raise PermanentError(f"Okta has no app {self.app_id!r} (check app_id)") from None
        assigned = self._embedded_groups(raw)
        added = self._targets(events, {"group.application_assignment.add"}, "UserGroup", app_only=True)
        unassigned = self._targets(events, {"group.application_assignment.remove"}, "UserGroup", app_only=True)
        since = okta_time(window.start)

        def moved(group: dict[str, Any]) -> bool:
            stamps = (group.get("lastUpdated"), group.get("lastMembershipUpdated"))
            return group.get("id") in added or any(isinstance(s, str) and s > since for s in stamps)

        known = {g["id"]: g for g in assigned if isinstance(g, dict) and isinstance(g.get("id"), str)}
        # A newly assigned group brings every member into scope: it is read whole.
        groups, rejections, deltas = await self.changed_memberships(
            [g for g in assigned if moved(g)], events, window, deleted, known=known, reread_too=added & set(known))
        removed = {g for g in (unassigned | deleted) if g not in known}
        return groups, rejections, deltas, removed


@dataclass(frozen=True)
class _Window:
    """What an incremental read looks back to: the last read's start (Okta's clock), that
    less the overlap (where the filters start), and the latest membership event seen."""

    since: datetime
    start: datetime
    seen: datetime | None


def _combined(from_log: Iterable[MembershipDelta], regained: Iterable[MembershipDelta],
              removed_users: set[str], not_members: set[str]) -> tuple[MembershipDelta, ...]:
    """One delta per group: the log's, then each regained user's current groups (read now,
    so they win), without users deleted meanwhile (they leave every group anyway) and
    adding none of `not_members`."""
    added: dict[str, set[str]] = {}
    dropped: dict[str, set[str]] = {}
    for delta in from_log:
        added.setdefault(delta.group_external_id, set()).update(delta.added)
        dropped.setdefault(delta.group_external_id, set()).update(delta.removed)
    for delta in regained:
        added.setdefault(delta.group_external_id, set()).update(delta.added)
        dropped.setdefault(delta.group_external_id, set()).difference_update(delta.added)
    result = (MembershipDelta(gid, frozenset(added[gid] - removed_users - not_members),
                              frozenset(dropped.get(gid, set()) - removed_users))
              for gid in sorted(added))
    return tuple(d for d in result if d.added or d.removed)


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


def _run(job: Any) -> Any:
    """Run a coroutine to completion from sync code, even when a loop is already running."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(job)
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, job).result()


# --- construction from configuration --------------------------------------------------------


def ssl_context_for(settings: Settings, directory: OktaDirectorySettings) -> ssl.SSLContext:
    """The system's CAs plus `ca_bundle`, if set. Verification is never turned off."""
    context = ssl.create_default_context()
    if directory.ca_bundle:
        path = settings.resolve_path(directory.ca_bundle)
        try:
            context.load_verify_locations(cafile=str(path))
        except (OSError, ssl.SSLError):
            raise PermanentError(f"directories.{directory.name}.ca_bundle: cannot load CA bundle {path}") from None
    return context


def credentials_for(settings: Settings, directory: OktaDirectorySettings) -> Credentials:
    where = f"directories.{directory.name}"
    if directory.token_env:
        try:
            return ApiToken(read_secret(directory.token_env, f"{where}.token_env"))
        except ConfigError as exc:
            raise PermanentError(str(exc)) from None
    path = settings.resolve_path(directory.private_key_file or "")
    try:
        pem = path.read_text()
    except OSError:
        raise PermanentError(f"{where}.private_key_file: cannot read {path}") from None
    try:
        from cryptography.hazmat.primitives.serialization import load_pem_private_key

        load_pem_private_key(pem.encode(), password=None)
    except Exception:
        raise PermanentError(f"{where}.private_key_file: {path} is not an unencrypted PEM private key") from None
    scopes = ["okta.users.read", "okta.groups.read", "okta.logs.read"] + (["okta.apps.read"] if directory.app_id else [])
    return ServiceApp(client_id=directory.client_id or "", private_key_pem=pem, key_id=directory.key_id,
                      scopes=tuple(scopes))


def build(settings: Settings, directory: DirectorySettings) -> OktaConnector:
    """The connector for an `okta` directory; raises `PermanentError` on unusable settings."""
    if not isinstance(directory, OktaDirectorySettings):
        raise PermanentError(f"directories.{directory.name}: not an okta directory")
    return OktaConnector(directory, credentials_for(settings, directory),
                         ssl_context=ssl_context_for(settings, directory),
                         max_retry_wait_seconds=configured_max_retry_wait(settings))
