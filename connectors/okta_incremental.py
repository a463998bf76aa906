"""Okta reads since a watermark: the filters on `lastUpdated`, the System Log's events and
membership deltas (`connectors.okta_log` decides which groups' members to re-read), and
app (un)assignments in app scope. There a changed user's scope comes from the app's users
the last read kept in the watermark and the log's app events since
(`connectors.okta_app_log`), or, where the log cannot vouch for it, from Okta itself (one
check each, or past `MAX_USER_CHECKS` the app's whole user list); never from the store,
which does not know the users it holds inactive, held or rejected, or never created. Groups a
read within the overlap already handled, and unchanged since, are not re-read
(`connectors.okta_watermark.handled_marks`). Where an incremental read cannot be trusted
or would cost more than a full one, it raises `_FullReadNeeded` and the connector reads in
full.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from connectors.errors import PermanentError
from connectors.okta_app_log import APP_USER_ADDED, APP_USER_EVENTS, app_scope_changes
from connectors.okta_http import CursorRejected, NotFound, Page
from connectors.okta_log import NOTHING_CHANGED, GroupStamps, membership_changes, parse_time
from connectors.okta_map import ACTIVE, is_built_in, is_member_in_scope, user_id_of
from connectors.okta_read import (
    APP_GROUPS_PAGE,
    APP_USERS_PAGE,
    GROUPS_PAGE,
    USER_REACTIVATED,
    USERS_PAGE,
    _filter,
    _Reader,
)
from connectors.okta_watermark import GroupMark, Watermark, group_mark, handled_marks, okta_time
from reconcile.model import Changes, ExternalGroup, ExternalUser, MembershipDelta, Rejection

log = logging.getLogger("connectors.okta")

GROUPS_BY_ID = 50  # groups looked up by id in one `filter=id eq ... or ...` request
USERS_BY_ID = 50  # users looked up by id in one `filter=id eq ... or ...` request
# Requests one user each: past this many users, the app's user list tells their scope, and
# a full read reads the groups of users who came back.
MAX_USER_CHECKS = 100
# How long after a group's assignment to the app Okta may still be adding its members to the
# app (a background job; minutes for a large group): until then each read reads it whole.
FAN_OUT_WINDOW = timedelta(hours=1)


class _FullReadNeeded(Exception):
    """An incremental read cannot be trusted or would cost more than a full one."""


class _IncrementalReader(_Reader):
    """A reader that can also read only what changed since a watermark."""

    async def incremental(self, state: Watermark) -> Changes:
        try:
            events, cursor, started = await self.poll_log(state.log_cursor)
        except CursorRejected as exc:
            raise _FullReadNeeded("the System Log cursor was refused") from exc
        window = _Window(state.since, state.since - self.overlap, state.seen, state.handled)
        since = okta_time(window.start)
        deleted_users = self._targets(events, {"user.lifecycle.delete.completed"}, "User")
        deleted_groups = self._targets(events, {"group.lifecycle.delete"}, "UserGroup")
        user_filter = _filter(f'lastUpdated gt "{since}"')
        raw_changed = await self.all_pages(f"/api/v1/users?limit={USERS_PAGE}&filter={user_filter}")
        app_users: frozenset[str] | None = None
        if self.app_id:
            app_read = await self._app_users_changed(raw_changed, events, deleted_users, since, state)
            users, user_rejections, removed_users = app_read.users, app_read.rejections, app_read.removed
            raw_users, entered, app_users = app_read.raw_users, app_read.entered, app_read.app_users
            groups_told = app_read.groups_told
            read, removed_groups = await self._app_groups_changed(window, events, deleted_groups, started)
        else:
            mapped, user_rejections, _ = self.map_users(raw_changed)
            users = list(mapped.values())
            raw_users, entered, groups_told = raw_changed, set(), set()
            removed_users = deleted_users - set(mapped)
            group_filter = _filter(f'lastUpdated gt "{since}" or lastMembershipUpdated gt "{since}"')
            raw_groups = await self.all_pages(f"/api/v1/groups?limit={GROUPS_PAGE}&filter={group_filter}")
            read = await self.changed_memberships(self.in_scope_groups(raw_groups), events, window, deleted_groups)
            removed_groups = deleted_groups - {g.external_id for g in read.groups}
        groups, deltas = read.groups, read.deltas
        active = {u.external_id for u in users if u.active}
        if groups_told:
            # Deactivated at the last read, so dropped then though their groups listed them:
            # the log's membership events since do not tell those groups.
            entered = entered | (groups_told & self._targets(events, {USER_REACTIVATED}, "User"))
        back = active & (self._returning(raw_users, since) | entered)
        regained = await self._memberships_of(back)
        groups_told = (active & groups_told) - back
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
            # their groups listed above, or told by the log: not to be read again
            user_groups_complete=frozenset(back | groups_told),
            rejections=tuple(user_rejections + read.rejections),
            watermark=self.watermark(state.scope, state.full_at, started, cursor, events, state,
                                     handled_marks(read.handled, started, self.overlap), app_users),
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
    ) -> _GroupsRead:
        """The moved groups whose members must be re-read, with their complete member lists,
        and the membership deltas the System Log tells (`connectors.okta_log`).

        `known` holds every group in scope by id when the caller has listed them all (app
        scope); otherwise a group the log names but `moved` lacks is looked up by id."""
        with_id = {g["id"]: g for g in moved if isinstance(g, dict) and isinstance(g.get("id"), str)}
        unchanged = {gid for gid, raw in with_id.items()
                     if gid in window.handled and window.handled[gid] == group_mark(raw)}
        decided = membership_changes(events, [GroupStamps.of(g) for g in with_id.values()],
                                     since=window.since, window_start=window.start, seen=window.seen,
                                     unchanged=unchanged)
        wanted = (set(decided.reread) | set(reread_too)) - deleted
        found = {gid: raw for gid, raw in {**(known or {}), **with_id}.items() if gid in wanted}
        if known is None:
            found.update({g["id"]: g for g in self.in_scope_groups(await self.groups_by_id(wanted - set(found)))})
        unreadable = [g for g in moved if not (isinstance(g, dict) and isinstance(g.get("id"), str))]
        groups, rejections = await self.groups_with_members([found[gid] for gid in sorted(found)] + unreadable, None)
        read_ids = {g.external_id for g in groups}
        # up to date now: re-read whole, or told in full by the log (or by nothing: unchanged)
        handled = [raw for gid, raw in with_id.items() if gid not in wanted | deleted] + [
            raw for gid, raw in found.items() if gid in read_ids]
        if decided.reread:
            reasons: dict[str, int] = {}
            for why in decided.reread.values():
                reasons[why] = reasons.get(why, 0) + 1
            log.info("okta incremental read: members re-read for %s",
                     ", ".join(f"{n} group(s): {why}" for why, n in sorted(reasons.items())))
        in_scope = None if known is None else set(known)
        deltas = tuple(d for d in decided.deltas if d.group_external_id not in wanted | deleted
                       and (in_scope is None or d.group_external_id in in_scope))
        return _GroupsRead(groups, rejections, deltas, handled)

    async def groups_by_id(self, group_ids: set[str]) -> list[Any]:
        """The records of these groups (those that still exist), a few per request."""
        return await self._by_id(f"/api/v1/groups?limit={GROUPS_PAGE}", group_ids, GROUPS_BY_ID)

    async def users_by_id(self, user_ids: set[str]) -> list[Any]:
        """The records of these users (those that still exist), a few per request."""
        return await self._by_id(f"/api/v1/users?limit={USERS_PAGE}", user_ids, USERS_BY_ID)

    async def _by_id(self, list_url: str, ids: set[str], batch_size: int) -> list[Any]:
        ordered = sorted(ids)
        batches = [ordered[i:i + batch_size] for i in range(0, len(ordered), batch_size)]
        pages = await self.gather(
            self.all_pages(f"{list_url}&filter=" + _filter(" or ".join(f'id eq "{item}"' for item in batch)))
            for batch in batches)
        return [record for page in pages for record in page]

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
            if event.get("eventType") not in types or _refused(event):
                continue
            targets = [t for t in event.get("target") or [] if isinstance(t, dict)]
            if app_only and not any(t.get("type") == "AppInstance" and t.get("id") == self.app_id for t in targets):
                continue
            found.update(str(t["id"]) for t in targets if t.get("type") == kind and t.get("id"))
        return found

    async def _app_users_changed(
        self, raw_changed: list[Any], events: list[dict[str, Any]], deleted: set[str], since: str, state: Watermark
    ) -> _AppUsersRead:
        """Changed users in the app, and the app's users as this read leaves them. A changed
        user's scope comes from the app's users the last read kept and the log's app events
        since (`connectors.okta_app_log`); Okta is asked only about users the log cannot
        vouch for and users who came back, or about every changed user when no users were
        kept or an event names no user.

        A user who entered the app and was not in it at the last read was then in none of
        its groups as that read saw them (a member of an app's group is in the app, unless
        deactivated, or not yet reached by Okta's job applying a group's assignment: such a
        group is read whole while that may be under way, `_app_groups_changed`), so the
        log's membership events and the groups re-read since tell all of their groups in it
        (`groups_told`; `incremental` reads those of users reactivated since). One the kept users
        held was in the app then: the store has their groups as it has any app user's (and
        reads them itself if it holds the user inactive), and the log's deltas since apply.
        Only the groups of a user whose entry the log cannot vouch for, or of every user who
        entered when no users were kept, are read here, one request each."""
        app_id = self.app_id or ""
        hinted = self._targets(events, set(APP_USER_EVENTS), "User", app_only=True)
        entered = self._targets(events, {APP_USER_ADDED}, "User", app_only=True)
        candidates = ({uid for raw in raw_changed if (uid := user_id_of(raw))} | hinted) - deleted
        active_now = (raw for raw in raw_changed if isinstance(raw, dict) and raw.get("status") in ACTIVE)
        back = self._returning(active_now, since) - deleted
        kept = state.app_users
        told = app_scope_changes(events, app_id, since=state.since, seen=state.app_seen)
        groups_told: set[str] = set()
        unvouched = entered  # users who entered the app whose groups this read lists
        if kept is not None and not told.unplaceable:
            groups_told = set(told.entered - kept - back)
            unvouched = entered - told.entered
        if len((unvouched - deleted) | back) > MAX_USER_CHECKS:
            # Their groups need a full read (`_memberships_of`): known before any check or
            # list, those would be paid for nothing.
            raise _FullReadNeeded(f"up to {len(unvouched | back)} users entered the app or came back")
        if kept is None or told.unplaceable:
            ask, in_app = candidates, set()
        else:
            ask = (back | told.doubtful) & candidates
            in_app = {uid for uid in candidates - ask if uid in told.entered or (uid not in told.left and uid in kept)}
        records = {uid: raw for raw in raw_changed if (uid := user_id_of(raw)) in in_app}
        app_users: frozenset[str] | None
        if len(ask) > MAX_USER_CHECKS:
            assigned = await self._app_user_ids()
            in_app = set(candidates & assigned)
            records = {uid: raw for raw in raw_changed if (uid := user_id_of(raw)) in in_app}
            app_users = assigned
            log.info("okta incremental read: the app's user list for %d changed users, %d of them in the app",
                     len(candidates), len(in_app))
        else:
            if len(ask) < len(candidates):
                log.info("okta incremental read: %d changed users placed by the app's kept users and the log, "
                         "%d asked about one by one", len(candidates) - len(ask), len(ask))
            app = quote(app_id)
            pages: list[Page | None] = await self.gather(
                self.pager.get_optional(f"/api/v1/apps/{app}/users/{quote(uid)}?expand=user") for uid in sorted(ask))
            for raw in self._embedded_users(p.data for p in pages if p is not None):
                if uid := user_id_of(raw):
                    records[uid] = raw
                    in_app.add(uid)
            unknown = kept is None or told.unplaceable  # a user no event placed may have come or gone
            app_users = None if unknown else _updated(kept or frozenset(), candidates | deleted, in_app)
        # A user in the app whom only an event named (no profile change): read by id.
        records.update((uid, raw) for raw in await self.users_by_id(in_app - set(records)) if (uid := user_id_of(raw)))
        raw_users = [records[uid] for uid in sorted(records)]
        users, rejections, in_scope = self.map_users(raw_users)
        removed = (candidates - in_scope) | deleted
        return _AppUsersRead(list(users.values()), rejections, removed, raw_users,
                             unvouched & in_scope, groups_told & in_scope, app_users)

    async def _app_user_ids(self) -> frozenset[str]:
        """The ids of every user assigned to the app, from its whole user list: a request per
        500 of its users, without the users themselves (`expand=user` would send every one)."""
        app = quote(self.app_id or "")
        try:
            return frozenset(uid for uid in await self.all_pages(f"/api/v1/apps/{app}/users?limit={APP_USERS_PAGE}",
                                                                 user_id_of) if uid is not None)
        except NotFound:
            raise PermanentError(f"Okta has no app {self.app_id!r} (check app_id)") from None

    async def _app_groups_changed(
        self, window: _Window, events: list[dict[str, Any]], deleted: set[str], started: datetime
    ) -> tuple[_GroupsRead, set[str]]:
        """The app's assigned groups that changed: re-read ones, membership deltas of the
        others, and the ids of groups that left the app.

        A group assigned within `FAN_OUT_WINDOW` of this read is read whole each time: Okta
        applies a group's assignment to its members in a background job, so members may
        enter the app after a read of the group left them out, without a membership event,
        and the next read must still list them in it."""
        app = quote(self.app_id or "")
        try:
            raw = await self.all_pages(f"/api/v1/apps/{app}/groups?limit={APP_GROUPS_PAGE}&expand=group")
        except NotFound:
            raise PermanentError(f"Okta has no app {self.app_id!r} (check app_id)") from None
        assigned = self._embedded_groups(raw)
        added = self._targets(events, {"group.application_assignment.add"}, "UserGroup", app_only=True)
        added |= _assigned_since(raw, started - FAN_OUT_WINDOW)
        unassigned = self._targets(events, {"group.application_assignment.remove"}, "UserGroup", app_only=True)
        since = okta_time(window.start)

        def moved(group: dict[str, Any]) -> bool:
            stamps = (group.get("lastUpdated"), group.get("lastMembershipUpdated"))
            return group.get("id") in added or any(isinstance(s, str) and s > since for s in stamps)

        known = {g["id"]: g for g in assigned if isinstance(g, dict) and isinstance(g.get("id"), str)}
        # A newly assigned group brings every member into scope: it is read whole.
        read = await self.changed_memberships(
            [g for g in assigned if moved(g)], events, window, deleted, known=known, reread_too=added & set(known))
        removed = {g for g in (unassigned | deleted) if g not in known}
        return read, removed


def _refused(event: Mapping[str, Any]) -> bool:
    """Whether Okta refused the attempt an event records (FAILURE, DENY, SKIPPED): nothing
    changed, so it names no user or group that left, entered or was deleted."""
    outcome = event.get("outcome")
    return isinstance(outcome, Mapping) and outcome.get("result") in NOTHING_CHANGED


def _assigned_since(raw_assignments: list[Any], moment: datetime) -> set[str]:
    """Ids of the groups whose assignment to the app (its `lastUpdated`) is later than `moment`."""
    found = set()
    for assignment in raw_assignments:
        if isinstance(assignment, dict) and isinstance(assignment.get("id"), str):
            updated = parse_time(assignment.get("lastUpdated"))
            if updated is not None and updated > moment:
                found.add(assignment["id"])
    return found


@dataclass(frozen=True)
class _Window:
    """What an incremental read looks back to: the last read's start (Okta's clock), that
    less the overlap (where the filters start), the latest membership event seen, and the
    marks of the groups the last read handled (`Watermark.handled`)."""

    since: datetime
    start: datetime
    seen: datetime | None
    handled: Mapping[str, GroupMark]


@dataclass(frozen=True)
class _AppUsersRead:
    """What an app-scoped incremental read found of users: changed users in the app,
    rejections, ids to report as removed, their raw records, those who (re)entered the app
    whose groups this read lists, those who entered it from outside whose groups the log
    and the re-read groups tell, and the app's users as this read leaves them (None: not
    known)."""

    users: list[ExternalUser]
    rejections: list[Rejection]
    removed: set[str]
    raw_users: list[Any]
    entered: set[str]
    groups_told: set[str]
    app_users: frozenset[str] | None


@dataclass(frozen=True)
class _GroupsRead:
    """What an incremental read found of groups: those re-read whole, rejections, the log's
    deltas, and the raw records of the groups it brought up to date (for their marks)."""

    groups: list[ExternalGroup]
    rejections: list[Rejection]
    deltas: tuple[MembershipDelta, ...]
    handled: list[Any]


def _updated(kept: frozenset[str], decided: set[str], in_app: set[str]) -> frozenset[str]:
    """The app's users: `kept`, with each of `decided` in it only if in `in_app`. Unchanged,
    `kept` itself, which the watermark writes back as it was read (`Watermark.packed_app_users`)."""
    if kept & decided == in_app:
        return kept
    return frozenset((kept - decided) | in_app)


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
