"""The records of a simulated Okta org in Okta's JSON shapes, and the bookkeeping every admin
action shares: ids that sort in creation order, Okta's timestamps (`okta_time`), the caches a
change invalidates (a user's serialised JSON, a group's sorted members, the version), and
System Log events with their targets.

`OktaRecords` is the base class of `OktaOrg` (`simulators.okta_org`), which holds the admin
actions a test calls. Kept apart so that module reads as the list of actions and what each
one logs, and this one as the state they change and how it is kept.
"""

from __future__ import annotations

import itertools
import json
import threading
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from simulators.clocks import real_clock

__all__ = ["ACTIVE_STATUSES", "EVERYONE", "Ids", "OktaRecords", "okta_time"]

EVERYONE = "Everyone"
ACTIVE_STATUSES = ("ACTIVE", "PROVISIONED", "RECOVERY", "PASSWORD_EXPIRED", "LOCKED_OUT")


def okta_time(when: datetime) -> str:
    """Okta's timestamp format: `2026-01-05T09:00:00.000Z`."""
    when = when.astimezone(UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


class Ids:
    """Okta-looking 20-character ids that sort in creation order (the `after` cursor)."""

    def __init__(self, prefix: str, start: int = 1) -> None:
        self._prefix = prefix
        self._next = itertools.count(start)

    def __call__(self) -> str:
        return f"{self._prefix}{next(self._next):017x}"


class OktaRecords:
    """The users, groups, apps and System Log of an Okta org, as `OktaOrg`, its subclass,
    changes them under `lock`."""

    def __init__(self, *, clock: Callable[[], datetime] = real_clock, org_url: str = "https://sim.okta.example") -> None:
        self.lock = threading.RLock()
        self.clock = clock
        self.org_url = org_url
        self.users: dict[str, dict[str, Any]] = {}
        self.user_ids: list[str] = []  # sorted: the users list order
        self.groups: dict[str, dict[str, Any]] = {}
        self.group_ids: list[str] = []
        self.members: dict[str, set[str]] = {}
        self.apps: dict[str, dict[str, Any]] = {}
        self.app_users: dict[str, dict[str, str]] = {}  # app -> user -> assigned at (direct)
        self.app_groups: dict[str, dict[str, str]] = {}  # app -> group -> assigned at
        # (app, group) assignments not yet applied to the group's members (`OktaOrg.assign_group`)
        self.pending_fan_out: set[tuple[str, str]] = set()
        self.events: list[dict[str, Any]] = []  # in persistence order (what a poll follows)
        self._held: list[dict[str, Any]] | None = None
        self.api_tokens: set[str] = set()
        self.version = 0  # bumps on every change; caches key on it
        self._user_id = Ids("00u")
        self._group_id = Ids("00g")
        self._app_id = Ids("0oa")
        self._user_bytes: dict[str, bytes] = {}
        self._sorted_members: dict[str, list[str]] = {}
        self._app_user_cache: dict[str, tuple[int, list[str], dict[str, str]]] = {}
        self.everyone_id = self._add_group(EVERYONE, "All users in your organization", "BUILT_IN", self.now())

    # -- time and bookkeeping

    def now(self) -> str:
        return okta_time(self.clock())

    def _changed(self, user_id: str | None = None) -> None:
        self.version += 1
        if user_id is not None:
            self._user_bytes.pop(user_id, None)

    def user_bytes(self, user_id: str) -> bytes:
        """The user's JSON, serialised once per change (pages are joins of these)."""
        cached = self._user_bytes.get(user_id)
        if cached is None:
            cached = json.dumps(self.users[user_id], separators=(",", ":")).encode()
            self._user_bytes[user_id] = cached
        return cached

    def set_org_url(self, org_url: str) -> None:
        with self.lock:
            self.org_url = org_url
            for user_id, user in self.users.items():
                user["_links"] = {"self": {"href": f"{org_url}/api/v1/users/{user_id}"}}
            self._user_bytes.clear()
            for group_id, group in self.groups.items():
                group["_links"] = {"users": {"href": f"{org_url}/api/v1/groups/{group_id}/users"}}
            self.version += 1

    def log(self, event_type: str, targets: Iterable[dict[str, Any]], message: str = "",
            outcome: str = "SUCCESS") -> None:
        (self.events if self._held is None else self._held).append(
            {
                "uuid": str(uuid.uuid4()),
                "published": self.now(),
                "eventType": event_type,
                "version": "0",
                "severity": "INFO",
                "displayMessage": message or event_type,
                "actor": {"id": "00uadmin0000000000", "type": "User", "alternateId": "admin@example.com", "displayName": "Admin"},
                "outcome": {"result": outcome, "reason": None},
                "target": list(targets),
                "legacyEventType": None,
            }
        )

    def _user_target(self, user_id: str) -> dict[str, Any]:
        profile = self.users[user_id]["profile"]
        return {"id": user_id, "type": "User", "alternateId": profile.get("login"), "displayName": f"{profile.get('firstName')} {profile.get('lastName')}"}

    def _group_target(self, group_id: str) -> dict[str, Any]:
        return {"id": group_id, "type": "UserGroup", "alternateId": "unknown", "displayName": self.groups[group_id]["profile"]["name"]}

    def _app_target(self, app_id: str) -> dict[str, Any]:
        app = self.apps[app_id]
        return {"id": app_id, "type": "AppInstance", "alternateId": app["label"], "displayName": app["label"]}

    # -- users

    def _add_user(self, user_id: str, first: str, last: str, email: str, login: str, status: str, when: str) -> None:
        activated = when if status != "STAGED" else None
        self.users[user_id] = {
            "id": user_id,
            "status": status,
            "created": when,
            "activated": activated,
            "statusChanged": activated,
            "lastLogin": None,
            "lastUpdated": when,
            "passwordChanged": None,
            "type": {"id": "oty00000000000000001"},
            "profile": {
                "firstName": first,
                "lastName": last,
                "mobilePhone": None,
                "secondEmail": None,
                "login": login,
                "email": email,
            },
            "credentials": {"provider": {"type": "OKTA", "name": "OKTA"}},
            "_links": {"self": {"href": f"{self.org_url}/api/v1/users/{user_id}"}},
        }

    def _touch_user(self, user_id: str, *, status: str | None = None) -> dict[str, Any]:
        user = self.users[user_id]
        now = self.now()
        user["lastUpdated"] = now
        if status is not None and status != user["status"]:
            user["status"] = status
            user["statusChanged"] = now
        self._changed(user_id)
        return user

    # -- groups

    def _add_group(self, name: str, description: str | None, kind: str, when: str) -> str:
        group_id = self._group_id()
        self.groups[group_id] = {
            "id": group_id,
            "created": when,
            "lastUpdated": when,
            "lastMembershipUpdated": when,
            "objectClass": ["okta:user_group"],
            "type": kind,
            "profile": {"name": name, "description": description},
            "_links": {"users": {"href": f"{self.org_url}/api/v1/groups/{group_id}/users"}},
        }
        self.group_ids.append(group_id)
        self.members[group_id] = set()
        return group_id

    def _touch_members(self, group_id: str) -> None:
        self.groups[group_id]["lastMembershipUpdated"] = self.now()
        self._sorted_members.pop(group_id, None)
        self.version += 1

    def sorted_members(self, group_id: str) -> list[str]:
        cached = self._sorted_members.get(group_id)
        if cached is None:
            cached = sorted(self.members[group_id])
            self._sorted_members[group_id] = cached
        return cached
