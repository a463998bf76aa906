"""The state of one simulated Entra tenant, its change log, and the mutations tests make.

A `GraphTenant` holds users, groups, an application (client id, secret, certificate) and
its service principal's app-role assignments. Every mutation appends to a change log; the
delta endpoints replay the log between two positions, so an incremental round sees
exactly what changed since the round that issued its delta link.

Promises:
- Object ids are GUID strings; users and groups keep a stable position in an append-only
  order, so a paging cursor never skips an object that existed when the round started.
- Soft-deleted users keep their id and remember their group memberships; `restore`
  brings both back. Hard-deleted objects are gone for good.
- `generate()` is seeded and deterministic, and builds 100,000 users in a few seconds.
- All methods are thread-safe (one re-entrant lock), as the server reads from threads.
"""

from __future__ import annotations

import random
import secrets
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

LogOp = Literal["upsert", "add", "remove"]
GENERATED_AT = "2024-05-06T07:08:09Z"  # when a generated tenant's users were created


def graph_time(moment: datetime) -> str:
    """A UTC time as Graph writes it: `2026-03-02T09:00:00Z`."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class SimUser:
    id: str
    user_principal_name: str
    mail: str | None
    given_name: str | None
    surname: str | None
    display_name: str | None
    account_enabled: bool | None = True  # None: the property is left out of every answer
    deleted: bool = False  # soft-deleted: in the recycle bin, restorable
    saved_groups: set[str] = field(default_factory=set)  # memberships held while deleted
    # Set by Graph when the user is created, never changed; null for some users created
    # before June 2018, as Graph documents.
    created_date_time: str | None = None

    def to_graph(self) -> dict[str, object]:
        record: dict[str, object] = {
            "id": self.id,
            "userPrincipalName": self.user_principal_name,
            "mail": self.mail,
            "givenName": self.given_name,
            "surname": self.surname,
            "displayName": self.display_name,
            "createdDateTime": self.created_date_time,
        }
        if self.account_enabled is not None:
            record["accountEnabled"] = self.account_enabled
        return record


@dataclass
class SimGroup:
    id: str
    display_name: str
    members: set[str] = field(default_factory=set)  # user ids (direct members)
    deleted: bool = False


@dataclass(frozen=True)
class LogEntry:
    """One change: `kind` user/group, the object's id, and for memberships the member."""

    kind: Literal["user", "group"]
    object_id: str
    op: LogOp
    member_id: str | None = None


class GraphTenant:
    """One tenant's directory plus the single application a connector signs in as."""

    def __init__(self, seed: int = 0, tenant_id: str | None = None) -> None:
        self._rng = random.Random(seed)
        self.lock = threading.RLock()
        self.tenant_id = tenant_id or self._guid()
        self.client_id = self._guid()
        # Seeded like everything else, so a demo tenant keeps its secret across restarts.
        self.client_secret = f"sim~{self._rng.getrandbits(160):040x}"
        self.client_secret_expired = False
        self.consent_revoked = False  # Graph answers 403 once admin consent is withdrawn
        self.service_principal_id = self._guid()
        self.certificates: dict[str, bytes] = {}  # x5t thumbprint (base64url SHA-1) -> PEM
        self.users: dict[str, SimUser] = {}
        self.user_order: list[str] = []
        self.groups: dict[str, SimGroup] = {}
        self.group_order: list[str] = []
        self.assignments: dict[str, tuple[str, str]] = {}  # principal -> (type, assignment id)
        self.log: list[LogEntry] = []
        self.delta_epoch = 0  # bumped to invalidate every delta token issued so far
        self.resync_epoch = 0  # bumped to answer every existing delta token with resyncRequired
        # Graph's clock: stamps `createdDateTime`. A bench may set it ahead to stand for
        # changes made some time after the last read.
        self.clock: Callable[[], datetime] = lambda: datetime.now(UTC)
        # Properties the users delta refuses to select (Graph answers 400 for some, such as
        # `birthday` or `signInActivity`; which ones is not documented property by property).
        self.users_delta_refuses: frozenset[str] = frozenset()
        self._n = 0

    # --- building ---------------------------------------------------------------------

    def _guid(self) -> str:
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    @classmethod
    def generate(
        cls,
        users: int,
        groups: int,
        memberships: int,
        seed: int = 0,
        assigned_users: int = 0,
        assigned_groups: int = 0,
        domain: str = "contoso.example",
    ) -> GraphTenant:
        """A deterministic tenant; group sizes are skewed so a few groups are large.

        The first `assigned_users` users and `assigned_groups` groups are assigned to the app.
        """
        t = cls(seed=seed)
        rng = t._rng
        for i in range(users):
            uid = t._guid()
            t._add_user(
                SimUser(uid, f"user{i:06d}@{domain}", f"user{i:06d}@{domain}",
                        f"Given{i}", f"Sur{i}", f"User {i}", account_enabled=(i % 97 != 96),
                        created_date_time=None if i % 50 == 49 else GENERATED_AT)
            )
        for j in range(groups):
            gid = t._guid()
            t.groups[gid] = SimGroup(gid, f"Group {j:05d}")
            t.group_order.append(gid)
        if users and groups and memberships:
            # Pareto weights: a handful of groups hold thousands of members, most hold few.
            weights = [rng.paretovariate(1.2) for _ in range(groups)]
            chosen = rng.choices(t.group_order, weights=weights, k=memberships)
            uids = t.user_order
            for gid in chosen:
                t.groups[gid].members.add(uids[rng.randrange(users)])
        for uid in t.user_order[:assigned_users]:
            t.assignments[uid] = ("User", t._guid())
        for gid in t.group_order[:assigned_groups]:
            t.assignments[gid] = ("Group", t._guid())
        return t

    def _add_user(self, user: SimUser) -> None:
        self.users[user.id] = user
        self.user_order.append(user.id)

    def _record(self, kind: Literal["user", "group"], oid: str, op: LogOp = "upsert",
                member: str | None = None) -> None:
        self.log.append(LogEntry(kind, oid, op, member))

    @property
    def position(self) -> int:
        """The change-log position a delta link issued now would hold."""
        return len(self.log)

    def user_count(self) -> int:
        return sum(1 for u in self.users.values() if not u.deleted)

    # --- user mutations ---------------------------------------------------------------

    def hire(self, upn: str | None = None, *, mail: str | None = None,
             given_name: str | None = "New", surname: str | None = "Hire",
             display_name: str | None = None, enabled: bool = True,
             groups: Iterable[str] = (), assign: bool = False) -> str:
        """Create a user (optionally in groups and assigned to the app); returns its id."""
        with self.lock:
            uid = self._guid()
            self._n += 1
            upn = upn or f"hire{self._n}-{uid[:8]}@contoso.example"
            self._add_user(SimUser(uid, upn, mail, given_name, surname,
                                   display_name or f"{given_name} {surname}", enabled,
                                   created_date_time=graph_time(self.clock())))
            self._record("user", uid)
            for gid in groups:
                self.add_member(gid, uid)
            if assign:
                self.assign(uid)
            return uid

    def update_user(self, uid: str, **fields: object) -> None:
        """Set attributes by their Python names (`mail`, `given_name`, ...)."""
        with self.lock:
            user = self.users[uid]
            for name, value in fields.items():
                if not hasattr(user, name) or name in ("id", "deleted", "saved_groups"):
                    raise AttributeError(name)
                setattr(user, name, value)
            self._record("user", uid)

    def rename_upn(self, uid: str, upn: str) -> None:
        self.update_user(uid, user_principal_name=upn)

    def set_mail(self, uid: str, mail: str | None) -> None:
        self.update_user(uid, mail=mail)

    def disable(self, uid: str) -> None:
        self.update_user(uid, account_enabled=False)

    def enable(self, uid: str) -> None:
        self.update_user(uid, account_enabled=True)

    def leave(self, uid: str) -> None:
        """The user leaves the app's scope: direct assignment and assigned groups dropped."""
        with self.lock:
            if uid in self.assignments:
                self.unassign(uid)
            for gid, (ptype, _) in list(self.assignments.items()):
                if ptype == "Group" and uid in self.groups[gid].members:
                    self.remove_member(gid, uid)

    def soft_delete(self, uid: str) -> None:
        """Move to the recycle bin: out of every list and group, restorable."""
        with self.lock:
            user = self.users[uid]
            if user.deleted:
                return
            for gid in self.group_order:
                group = self.groups.get(gid)
                if group is not None and uid in group.members:
                    user.saved_groups.add(gid)
                    self.remove_member(gid, uid)
            user.deleted = True
            self._record("user", uid)

    def restore(self, uid: str) -> None:
        with self.lock:
            user = self.users[uid]
            if not user.deleted:
                return
            user.deleted = False
            self._record("user", uid)
            for gid in sorted(user.saved_groups):
                if gid in self.groups:
                    self.add_member(gid, uid)
            user.saved_groups.clear()

    def hard_delete(self, uid: str) -> None:
        """Delete permanently (purged from the recycle bin, or never soft-deleted)."""
        with self.lock:
            self.soft_delete(uid)
            del self.users[uid]
            self.assignments.pop(uid, None)
            self._record("user", uid)

    # --- group mutations --------------------------------------------------------------

    def create_group(self, name: str, members: Iterable[str] = (), assign: bool = False) -> str:
        with self.lock:
            gid = self._guid()
            self.groups[gid] = SimGroup(gid, name)
            self.group_order.append(gid)
            self._record("group", gid)
            for uid in members:
                self.add_member(gid, uid)
            if assign:
                self.assign(gid)
            return gid

    def rename_group(self, gid: str, name: str) -> None:
        with self.lock:
            self.groups[gid].display_name = name
            self._record("group", gid)

    def delete_group(self, gid: str) -> None:
        with self.lock:
            del self.groups[gid]
            self.assignments.pop(gid, None)
            self._record("group", gid)

    def add_member(self, gid: str, uid: str) -> None:
        """Add a direct member; a deleted (or soft-deleted) user raises KeyError, as Graph 404s."""
        with self.lock:
            group = self.groups[gid]
            user = self.users.get(uid)
            if user is None or user.deleted:
                raise KeyError(uid)
            if uid not in group.members:
                group.members.add(uid)
                self._record("group", gid, "add", uid)

    def remove_member(self, gid: str, uid: str) -> None:
        with self.lock:
            group = self.groups[gid]
            if uid in group.members:
                group.members.discard(uid)
                self._record("group", gid, "remove", uid)

    # --- the application --------------------------------------------------------------

    def assign(self, principal_id: str) -> None:
        """Assign a user or a group to the app (default access role)."""
        with self.lock:
            ptype = "User" if principal_id in self.users else "Group"
            if principal_id not in self.users and principal_id not in self.groups:
                raise KeyError(principal_id)
            self.assignments.setdefault(principal_id, (ptype, self._guid()))

    def unassign(self, principal_id: str) -> None:
        with self.lock:
            self.assignments.pop(principal_id, None)

    def expire_delta_tokens(self) -> None:
        """Every delta link issued so far now answers 410 `syncStateNotFound`."""
        with self.lock:
            self.delta_epoch += 1

    def force_resync(self) -> None:
        """Every delta link issued so far now answers 410 `resyncRequired` (a reset)."""
        with self.lock:
            self.resync_epoch += 1

    def rotate_client_secret(self) -> str:
        with self.lock:
            self.client_secret = "sim~" + secrets.token_urlsafe(24)
            self.client_secret_expired = False
            return self.client_secret
