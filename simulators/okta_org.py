"""The state of one simulated Okta org: users, groups, memberships, apps and the System Log.

`OktaOrg` offers the admin actions a test needs on records in Okta's own JSON shapes, which
its base class `OktaRecords` (`simulators.okta_records`) keeps. Every action takes the org
lock, moves the timestamps Okta moves (`lastUpdated`, `statusChanged`, a group's
`lastMembershipUpdated`) and writes System Log events with Okta's event types, so a
connector sees exactly what it would see in a real org:

    hire(...) -> user id              user.lifecycle.create (+ .activate)
    rename(user_id, email=, login=, first_name=, last_name=, display_name=)
                                      user.account.update_profile
    activate(user_id)                 user.lifecycle.activate (a STAGED user becomes ACTIVE)
    suspend / unsuspend(user_id)      user.lifecycle.suspend / .unsuspend
    deactivate(user_id)               user.lifecycle.deactivate; direct app assignments go
    reactivate(user_id)               user.lifecycle.reactivate (status PROVISIONED)
    leave(user_id, delete=False)      deactivate, and with delete=True also
                                      user.lifecycle.delete.initiated/.completed
    set_status(user_id, status)       any status string, even one Okta never sends
    create_group(name) -> id          group.lifecycle.create
    rename_group / delete_group       group.profile.update / group.lifecycle.delete
    add_member / remove_member        group.user_membership.add / .remove
    create_app(label) -> id
    assign_user / unassign_user       application.user_membership.add / .remove
    assign_group / unassign_group     group.application_assignment.add / .remove, plus
                                      application.user_membership.add/.remove for each
                                      user whose effective assignment changes
    assign_group(..., fan_out=False)  the group is assigned, its members enter the app
    fan_out_group(app_id, group_id)   (and their events are logged) only at fan_out_group,
                                      as Okta's background job applies it later
    patch_user(user_id, fields)       merge raw JSON into a user (odd values for tests)
    with held_log() as late: ...      events logged in the block are persisted late: the
    late.release()                    System Log shows them only on release, after any
                                      logged since, each with its own `published` time

Membership events (`group.user_membership.add` / `.remove`) name the user and the group
as their targets, as Okta's do. A deleted user leaves their groups (their
`lastMembershipUpdated` moves) without a membership event.

Timestamps come from `clock` (a callable returning an aware UTC datetime): a test can
drive the org with `ManualClock` from `simulators.clocks`.
"""

from __future__ import annotations

import bisect
import random
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from simulators.clocks import real_clock
from simulators.okta_records import OktaRecords, okta_time


class HeldEvents:
    """Events an org logged but has not persisted yet (`OktaOrg.held_log`)."""

    def __init__(self, org: OktaOrg, events: list[dict[str, Any]]) -> None:
        self._org = org
        self.events = events

    def release(self) -> None:
        with self._org.lock:
            self._org.events.extend(self.events)
            self.events.clear()
            self._org.version += 1


class OktaOrg(OktaRecords):
    """A thread-safe Okta org. Read the module docstring for the admin actions."""

    # -- the System Log

    @contextmanager
    def held_log(self) -> Iterator[HeldEvents]:
        """Set aside the events logged in the block until `release()` (module docstring)."""
        with self.lock:
            held: list[dict[str, Any]] = []
            self._held = held
        try:
            yield HeldEvents(self, held)
        finally:
            with self.lock:
                self._held = None

    # -- users

    def hire(
        self,
        first_name: str,
        last_name: str,
        email: str | None = None,
        *,
        login: str | None = None,
        status: str = "ACTIVE",
        display_name: str | None = None,
        groups: Iterable[str] = (),
    ) -> str:
        """Create a user (ACTIVE by default, or STAGED/PROVISIONED/...) and return its id."""
        with self.lock:
            user_id = self._user_id()
            email = email or f"{first_name}.{last_name}@example.com".lower()
            self._add_user(user_id, first_name, last_name, email, login or email, status, self.now())
            if display_name is not None:
                self.users[user_id]["profile"]["displayName"] = display_name
            bisect.insort(self.user_ids, user_id)
            self.members[self.everyone_id].add(user_id)
            self._touch_members(self.everyone_id)
            self._changed(user_id)
            self.log("user.lifecycle.create", [self._user_target(user_id)])
            if status != "STAGED":
                self.log("user.lifecycle.activate", [self._user_target(user_id)])
            for group_id in groups:
                self.add_member(group_id, user_id)
            return user_id

    def rename(
        self,
        user_id: str,
        *,
        email: str | None = None,
        login: str | None = None,
        first_name: str | None = None,
        last_name: str | None = None,
        display_name: str | None = None,
    ) -> None:
        """Change profile attributes (user.account.update_profile)."""
        with self.lock:
            profile = self._touch_user(user_id)["profile"]
            for key, value in (("email", email), ("login", login), ("firstName", first_name),
                               ("lastName", last_name), ("displayName", display_name)):
                if value is not None:
                    profile[key] = value
            self.log("user.account.update_profile", [self._user_target(user_id)])

    def patch_user(self, user_id: str, fields: dict[str, Any]) -> None:
        """Merge raw JSON into the user (one level deep into `profile`); no log event."""
        with self.lock:
            user = self._touch_user(user_id)
            for key, value in fields.items():
                if key == "profile" and isinstance(value, dict):
                    user["profile"].update(value)
                else:
                    user[key] = value

    def set_status(self, user_id: str, status: str) -> None:
        """Set any status string (for odd-data tests); logs nothing."""
        with self.lock:
            self._touch_user(user_id, status=status)

    def _lifecycle(self, user_id: str, status: str, event: str) -> None:
        with self.lock:
            before = self._effective_apps(user_id)
            self._touch_user(user_id, status=status)
            self.log(event, [self._user_target(user_id)])
            self._log_app_changes(user_id, before)

    def activate(self, user_id: str) -> None:
        self._lifecycle(user_id, "ACTIVE", "user.lifecycle.activate")

    def suspend(self, user_id: str) -> None:
        self._lifecycle(user_id, "SUSPENDED", "user.lifecycle.suspend")

    def unsuspend(self, user_id: str) -> None:
        self._lifecycle(user_id, "ACTIVE", "user.lifecycle.unsuspend")

    def deactivate(self, user_id: str) -> None:
        """DEPROVISIONED; like Okta, this removes the user's direct app assignments."""
        with self.lock:
            before = self._effective_apps(user_id)
            for assigned in self.app_users.values():
                assigned.pop(user_id, None)
            self._touch_user(user_id, status="DEPROVISIONED")
            self.log("user.lifecycle.deactivate", [self._user_target(user_id)])
            self._log_app_changes(user_id, before)

    def reactivate(self, user_id: str) -> None:
        self._lifecycle(user_id, "PROVISIONED", "user.lifecycle.reactivate")

    def leave(self, user_id: str, *, delete: bool = False) -> None:
        """The user leaves the company: deactivated, and deleted too with `delete=True`."""
        with self.lock:
            if self.users[user_id]["status"] != "DEPROVISIONED":
                self.deactivate(user_id)
            if not delete:
                return
            target = self._user_target(user_id)
            self.log("user.lifecycle.delete.initiated", [target])
            for group_id, members in self.members.items():
                if user_id in members:
                    members.discard(user_id)
                    self._touch_members(group_id)
            del self.users[user_id]
            self.user_ids.pop(bisect.bisect_left(self.user_ids, user_id))
            self._changed(user_id)
            self.log("user.lifecycle.delete.completed", [target])

    # -- groups

    def create_group(self, name: str, description: str | None = None, *, kind: str = "OKTA_GROUP") -> str:
        with self.lock:
            group_id = self._add_group(name, description, kind, self.now())
            self._changed()
            self.log("group.lifecycle.create", [self._group_target(group_id)])
            return group_id

    def rename_group(self, group_id: str, name: str) -> None:
        with self.lock:
            group = self.groups[group_id]
            group["profile"]["name"] = name
            group["lastUpdated"] = self.now()
            self._changed()
            self.log("group.profile.update", [self._group_target(group_id)])

    def delete_group(self, group_id: str) -> None:
        with self.lock:
            target = self._group_target(group_id)
            affected = list(self.members[group_id])
            before = {u: self._effective_apps(u) for u in affected}
            for assigned in self.app_groups.values():
                assigned.pop(group_id, None)
            del self.groups[group_id]
            del self.members[group_id]
            self._sorted_members.pop(group_id, None)
            self.group_ids.remove(group_id)
            self._changed()
            self.log("group.lifecycle.delete", [target])
            for user_id in affected:
                self._log_app_changes(user_id, before[user_id])

    def add_member(self, group_id: str, user_id: str) -> None:
        with self.lock:
            if user_id in self.members[group_id]:
                return
            before = self._effective_apps(user_id)
            self.members[group_id].add(user_id)
            self._touch_members(group_id)
            self.log("group.user_membership.add", [self._user_target(user_id), self._group_target(group_id)])
            self._log_app_changes(user_id, before)

    def remove_member(self, group_id: str, user_id: str) -> None:
        with self.lock:
            if user_id not in self.members[group_id]:
                return
            before = self._effective_apps(user_id)
            self.members[group_id].discard(user_id)
            self._touch_members(group_id)
            self.log("group.user_membership.remove", [self._user_target(user_id), self._group_target(group_id)])
            self._log_app_changes(user_id, before)

    # -- apps

    def create_app(self, label: str = "dirsync") -> str:
        with self.lock:
            app_id = self._app_id()
            now = self.now()
            self.apps[app_id] = {"id": app_id, "name": "oidc_client", "label": label, "status": "ACTIVE", "created": now, "lastUpdated": now}
            self.app_users[app_id] = {}
            self.app_groups[app_id] = {}
            self._changed()
            return app_id

    def _effective_apps(self, user_id: str) -> set[str]:
        """Apps the user is assigned to, directly or through a group (not when deprovisioned)."""
        user = self.users.get(user_id)
        if user is None or user["status"] == "DEPROVISIONED":
            return set()
        apps = {a for a, assigned in self.app_users.items() if user_id in assigned}
        for app_id, groups in self.app_groups.items():
            if app_id not in apps and any(user_id in self.members.get(g, ()) for g in groups
                                          if (app_id, g) not in self.pending_fan_out):
                apps.add(app_id)
        return apps

    def _log_app_changes(self, user_id: str, before: set[str]) -> None:
        after = self._effective_apps(user_id)
        if before == after or user_id not in self.users:
            return
        for app_id in sorted(after - before):
            self.log("application.user_membership.add", [self._user_target(user_id), self._app_target(app_id)])
        for app_id in sorted(before - after):
            self.log("application.user_membership.remove", [self._user_target(user_id), self._app_target(app_id)])
        self.version += 1

    def assign_user(self, app_id: str, user_id: str) -> None:
        with self.lock:
            before = self._effective_apps(user_id)
            self.app_users[app_id][user_id] = self.now()
            self._changed()
            self._log_app_changes(user_id, before)

    def unassign_user(self, app_id: str, user_id: str) -> None:
        """Remove the direct assignment (a group assignment, if any, keeps the user in)."""
        with self.lock:
            before = self._effective_apps(user_id)
            self.app_users[app_id].pop(user_id, None)
            self._changed()
            self._log_app_changes(user_id, before)

    def assign_group(self, app_id: str, group_id: str, *, fan_out: bool = True) -> None:
        """Assign the group to the app. With `fan_out=False` its members enter the app (and
        their `application.user_membership.add` events are logged) only at `fan_out_group`:
        Okta applies a group's assignment to its members in a background job, minutes later
        for a large group."""

        def assign() -> None:
            self.app_groups[app_id][group_id] = self.now()
            if not fan_out:
                self.pending_fan_out.add((app_id, group_id))

        self._change_group_assignment(app_id, group_id, assign, "group.application_assignment.add")

    def fan_out_group(self, app_id: str, group_id: str) -> None:
        """Apply the assignment `assign_group(..., fan_out=False)` left pending to the group's members."""
        self._change_group_assignment(app_id, group_id, lambda: self.pending_fan_out.discard((app_id, group_id)))

    def unassign_group(self, app_id: str, group_id: str) -> None:
        def unassign() -> None:
            self.app_groups[app_id].pop(group_id, None)
            self.pending_fan_out.discard((app_id, group_id))

        self._change_group_assignment(app_id, group_id, unassign, "group.application_assignment.remove")

    def _change_group_assignment(self, app_id: str, group_id: str, change: Callable[[], None],
                                 event: str | None = None) -> None:
        """Make `change`, log `event` for the group and app, then each member's app events."""
        with self.lock:
            affected = list(self.members[group_id])
            before = {u: self._effective_apps(u) for u in affected}
            change()
            self._changed()
            if event is not None:
                self.log(event, [self._group_target(group_id), self._app_target(app_id)])
            for user_id in affected:
                self._log_app_changes(user_id, before[user_id])

    def app_user_ids(self, app_id: str) -> tuple[list[str], dict[str, str]]:
        """Sorted ids of the users assigned to the app, and each one's scope (USER/GROUP)."""
        cached = self._app_user_cache.get(app_id)
        if cached is not None and cached[0] == self.version:
            return cached[1], cached[2]
        scopes: dict[str, str] = {}
        for group_id in self.app_groups[app_id]:
            if (app_id, group_id) in self.pending_fan_out:
                continue  # not applied to its members yet
            for user_id in self.members.get(group_id, ()):
                scopes[user_id] = "GROUP"
        for user_id in self.app_users[app_id]:
            scopes[user_id] = "USER"
        scopes = {u: s for u, s in scopes.items() if u in self.users and self.users[u]["status"] != "DEPROVISIONED"}
        ids = sorted(scopes)
        self._app_user_cache[app_id] = (self.version, ids, scopes)
        return ids, scopes

    # -- bulk generation

    @classmethod
    def generate(
        cls,
        users: int = 100,
        groups: int = 10,
        memberships: int = 200,
        *,
        seed: int = 0,
        clock: Callable[[], datetime] = real_clock,
        app_users: int = 0,
        app_groups: int = 0,
        statuses: dict[str, float] | None = None,
    ) -> OktaOrg:
        """A reproducible org built in bulk (100,000 users in about a second), no log events.

        `statuses` weights user statuses (default: all ACTIVE). With `app_users` or
        `app_groups`, an app (`org.app_id`) is created and that many users assigned
        directly and groups assigned. Timestamps are spread over the 90 days before now.
        """
        rng = random.Random(seed)
        org = cls(clock=clock)
        now = clock()
        first_names = ["Ada", "Alan", "Grace", "Linus", "Ken", "Barbara", "Edsger", "Donald", "Margaret", "Dennis",
                       "Frances", "John", "Radia", "Tim", "Shafi", "Leslie", "Niklaus", "Adele", "Bjarne", "Guido"]
        last_names = ["Lovelace", "Turing", "Hopper", "Torvalds", "Thompson", "Liskov", "Dijkstra", "Knuth",
                      "Hamilton", "Ritchie", "Allen", "Backus", "Perlman", "Berners", "Goldwasser", "Lamport",
                      "Wirth", "Goldberg", "Stroustrup", "Rossum"]
        status_names = list((statuses or {"ACTIVE": 1.0}).keys())
        status_weights = list((statuses or {"ACTIVE": 1.0}).values())
        stamps = [okta_time(now - timedelta(days=90) + timedelta(seconds=rng.randrange(86400 * 89))) for _ in range(min(users, 5000) or 1)]
        with org.lock:
            for n in range(users):
                user_id = org._user_id()
                first, last = first_names[n % 20], last_names[(n // 20) % 20]
                email = f"{first}.{last}.{n}@example.com".lower()
                status = rng.choices(status_names, status_weights)[0] if statuses else "ACTIVE"
                org._add_user(user_id, first, last, email, email, status, stamps[n % len(stamps)])
                org.user_ids.append(user_id)
            org.members[org.everyone_id].update(org.user_ids)
            group_ids = [org._add_group(f"Team {n:04d}", None, "OKTA_GROUP", stamps[n % len(stamps)]) for n in range(groups)]
            if group_ids and org.user_ids:
                # distinct (group, user) pairs; capped at what exists
                wanted = min(memberships, len(group_ids) * len(org.user_ids))
                pairs: set[tuple[int, int]] = set()
                while len(pairs) < wanted:
                    pairs.add((rng.randrange(len(group_ids)), rng.randrange(len(org.user_ids))))
                for g, u in pairs:
                    org.members[group_ids[g]].add(org.user_ids[u])
            if app_users or app_groups:
                app_id = org.create_app("dirsync")
                org.app_id = app_id
                for user_id in rng.sample(org.user_ids, min(app_users, len(org.user_ids))):
                    org.app_users[app_id][user_id] = stamps[0]
                for group_id in rng.sample(group_ids, min(app_groups, len(group_ids))):
                    org.app_groups[app_id][group_id] = stamps[0]
            org.version += 1
        return org

    app_id: str | None = None
