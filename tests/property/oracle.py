"""An independent model of the product rules, for the property tests.

It follows docs/rules.md and DESIGN §3-§5 for full reads of directories, the local admin
actions that seed a store, and the S2 guard, and never calls the planner: the tests
compare the store the product writes with the one this model predicts. Its rows mirror
the store's (users keyed by row number, groups with member row numbers); `export()` has
the shape of `store.export_state` without invites.

The key that emails and group names are matched and kept unique by lives in `key` alone,
so the model follows one rule wherever it compares names.
"""

from __future__ import annotations

import copy
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

ADMIN = "Administrators"
ALIAS = "Split_Administrators"
LONGEST_NAME = 24  # R2: shorter than 25

# A directory record as the tests write it: (id, email, display name, active) for users,
# (id, name, member ids) for groups.
UserRecord = tuple[str, str, str | None, bool]
GroupRecord = tuple[str, str, Sequence[str]]


def key(text: str) -> str:
    """The one key emails and group names are compared by (R1, R6): NFKC, case-folded, trimmed."""
    return unicodedata.normalize("NFKC", text).casefold().strip()


_ADDRESS = re.compile(r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")
# Latin look-alikes of other scripts (R3), enough for the names the tests draw.
_LOOKALIKES = str.maketrans("АВСЕНІКМОРТХаеорсхуі", "ABCEHIKMOPTXaeopcxyi")


def stored_email(raw: str) -> str | None:
    """The address a valid email is stored as (compatibility forms folded), or None (R1)."""
    email = unicodedata.normalize("NFKC", raw).strip()
    return email if email.isascii() and _ADDRESS.match(email) else None


def name_refusal(raw: str) -> str | None:
    """Why R2/R3 refuse a directory group's name, or None."""
    name = raw.strip()
    if not name:
        return "empty-name"
    if len(name) > LONGEST_NAME:
        return "name-too-long"
    if key(name.translate(_LOOKALIKES)) == key(ADMIN):
        return "reserved-name"
    return None


@dataclass
class UserRow:
    email: str
    display_name: str | None
    active: bool
    managed_by: str | None = None
    external_id: str | None = None


@dataclass
class GroupRow:
    name: str
    managed_by: str | None = None
    external_id: str | None = None
    reserved: bool = False
    members: set[int] = field(default_factory=set)


@dataclass(frozen=True)
class Limits:
    """S2, as `[safety]` sets it."""

    max_deactivations: int = 500
    max_deactivation_ratio: float = 0.2
    max_member_removals: int = 1000
    max_member_removal_ratio: float = 0.2
    floor: int = 10  # the ratios count only above this many


@dataclass
class _Users:
    """What a cycle decides for users, before the groups are planned."""

    final_row: dict[str, int] = field(default_factory=dict)  # directory id -> row after the plan
    deactivated: set[int] = field(default_factory=set)
    identity_changed: set[int] = field(default_factory=set)  # rows re-bound to another record
    reported: set[str] = field(default_factory=set)


@dataclass
class Model:
    users: dict[int, UserRow] = field(default_factory=dict)
    groups: dict[int, GroupRow] = field(default_factory=dict)
    rejections: set[tuple[str, str]] = field(default_factory=set)  # (external id, reason) of the last cycle

    # --- local admin actions (the store before the first cycle) --------------------------

    def add_user(self, email: str, name: str | None, active: bool = True) -> int:
        row = max(self.users, default=0) + 1
        self.users[row] = UserRow(email, name, active)
        return row

    def add_group(self, name: str) -> int:
        row = min(self.groups, default=0) - 1  # negative: never a user's row number
        self.groups[row] = GroupRow(name, reserved=key(name) == key(ADMIN))
        return row

    def group_named(self, name: str) -> int | None:
        return next((gid for gid, g in self.groups.items() if key(g.name) == key(name)), None)

    def user_with(self, email: str) -> int | None:
        return next((uid for uid, u in self.users.items() if key(u.email) == key(email)), None)

    def add_member(self, group: str, email: str) -> None:
        gid = self.group_named(group)
        if gid is None:  # the reserved group exists once asked for
            gid = self.add_group(ADMIN)
        uid = self.user_with(email)
        assert uid is not None
        self.groups[gid].members.add(uid)

    def deactivate_user(self, email: str) -> bool:
        """R4 for admin actions: refused (False) for the admin group's last active member."""
        uid = self.user_with(email)
        assert uid is not None
        admin = self.admin()
        if admin is not None and uid in self.groups[admin].members:
            others = {m for m in self.groups[admin].members - {uid} if self.users[m].active}
            if not others:
                return False
        self.users[uid].active = False
        return True

    def admin(self) -> int | None:
        return next((gid for gid, g in self.groups.items() if g.reserved), None)

    def has_active_admin(self) -> bool:
        admin = self.admin()
        return admin is not None and any(self.users[m].active for m in self.groups[admin].members)

    # --- a directory's full read -----------------------------------------------------------

    def cycle(
        self,
        directory: str,
        users: Sequence[UserRecord],
        groups: Sequence[GroupRecord],
        links: Mapping[str, str],
        link_by_name: bool = True,
    ) -> None:
        """Bring the model in step with one directory's complete read."""
        self.rejections = set()
        before = {uid: u.active for uid, u in self.users.items()}
        decided = self._users(directory, users, before)
        self._groups(directory, groups, links, link_by_name, decided, before)

    def halts(
        self,
        directory: str,
        users: Sequence[UserRecord],
        groups: Sequence[GroupRecord],
        links: Mapping[str, str],
        link_by_name: bool,
        limits: Limits,
    ) -> bool:
        """S2: whether the guard stages this read's plan instead of applying it."""
        after = copy.deepcopy(self)
        after.cycle(directory, users, groups, links, link_by_name)
        active = sum(1 for u in self.users.values() if u.managed_by == directory and u.active)
        deactivations = sum(1 for uid, u in self.users.items() if u.active and not after.users[uid].active)
        removals = sum(len(g.members - after.groups[gid].members) for gid, g in self.groups.items())
        managed = sum(len(g.members) for g in self.groups.values() if g.managed_by == directory)
        return (
            (not users and active > 0)
            or deactivations > limits.max_deactivations
            or (active > limits.floor and deactivations > limits.max_deactivation_ratio * active)
            or removals > limits.max_member_removals
            or (managed > limits.floor and removals > limits.max_member_removal_ratio * managed)
        )

    def _reject(self, external_id: str, reason: str) -> None:
        self.rejections.add((external_id, reason))

    def _users(self, directory: str, records: Sequence[UserRecord], before: Mapping[int, bool]) -> _Users:
        out = _Users(reported={r[0] for r in records})
        bound = {u.external_id: uid for uid, u in self.users.items() if u.managed_by == directory and u.external_id}
        by_key = {key(u.email): uid for uid, u in self.users.items()}
        held: set[int] = set()

        # R1: a refused record holds its bound row exactly as it is.
        valid: list[tuple[str, str, str | None, bool]] = []
        for ext, raw, name, active in records:
            email = stored_email(raw)
            if email is None:
                self._reject(ext, "invalid-email")
                if ext in bound:
                    held.add(bound[ext])
                continue
            valid.append((ext, email, name, active))

        # R1: one record per key: the one whose row already has it, else the first listed.
        def keeps_own(record: tuple[str, str, str | None, bool]) -> bool:
            row = bound.get(record[0])
            return row is not None and key(self.users[row].email) == key(record[1])

        winners: dict[str, str] = {}
        for record in sorted(valid, key=lambda r: not keeps_own(r)):
            if key(record[1]) in winners:
                self._reject(record[0], "duplicate-email")
                if record[0] in bound:
                    held.add(bound[record[0]])
                continue
            winners[key(record[1])] = record[0]

        # Where each row's address ends up: a winning bound record moves its row.
        final_key = {uid: key(u.email) for uid, u in self.users.items()}
        for k, ext in winners.items():
            if ext in bound:
                final_key[bound[ext]] = k

        changes: dict[int, tuple[str, str | None, bool]] = {}  # row -> email, name, active
        links: dict[int, str] = {}  # row -> the record it is (re)bound to
        creates: list[tuple[str, str, str | None]] = []
        for ext, email, name, active in valid:
            k = key(email)
            if winners.get(k) != ext:
                continue
            if ext in bound:  # bound by id (§3): the same row, whatever its address
                row = bound[ext]
                holder = by_key.get(k)
                if holder is not None and holder != row and final_key[holder] == k:
                    self._reject(ext, "email-taken")
                    held.add(row)
                    continue
                changes[row] = (email, name, active)
                continue
            row_or_none = by_key.get(k)
            if row_or_none is not None and final_key[row_or_none] != k:
                row_or_none = None  # its own record moves it to another address first
            if row_or_none is None:
                if active:  # R9: inactive when first seen: not created
                    creates.append((ext, email, name))
                continue
            row = row_or_none
            owner = self.users[row].managed_by
            if owner not in (None, directory):
                self._reject(ext, "owned-by-other-directory")  # §3: never taken over
                continue
            if row in held or (owner == directory and self.users[row].external_id in out.reported):
                self._reject(ext, "email-taken")
                continue
            if owner == directory:
                out.identity_changed.add(row)  # R7: the address came back as another person
            links[row] = ext
            changes[row] = (email, name, active)

        for ext, row in bound.items():  # held rows keep their binding and state
            if row in held:
                out.final_row[ext] = row
        leaving = {
            row for ext, row in bound.items() if ext not in out.reported and row not in held and row not in links
        }
        to_deactivate = {row for row in leaving if before[row]}
        to_deactivate |= {row for row, (_, _, active) in changes.items() if before[row] and not active}
        out.deactivated = to_deactivate  # R4 may hold some, once the groups are known

        for row, (email, name, active) in changes.items():
            user = self.users[row]
            if row in links:
                user.managed_by, user.external_id = directory, links[row]
            user.email, user.display_name = email, name
            user.active = active or (before[row] and row not in to_deactivate)
            out.final_row[user.external_id or ""] = row
        for row in to_deactivate:
            self.users[row].active = False
        for ext, email, name in creates:
            row = self.add_user(email, name)
            self.users[row].managed_by, self.users[row].external_id = directory, ext
            out.final_row[ext] = row
        return out

    def _groups(
        self,
        directory: str,
        records: Sequence[GroupRecord],
        links: Mapping[str, str],
        link_by_name: bool,
        users: _Users,
        before: Mapping[int, bool],
    ) -> None:
        admin = self.admin()
        bound = {g.external_id: gid for gid, g in self.groups.items() if g.managed_by == directory and g.external_id}
        by_key = {key(g.name): gid for gid, g in self.groups.items()}
        reported = {r[0] for r in records}
        held: set[int] = set()
        follow: list[tuple[int, Sequence[str]]] = []  # groups whose members follow a record

        def refuse(ext: str, reason: str, members: Sequence[str]) -> None:
            """R2: a bound group keeps its name (and link); its members still follow the record."""
            self._reject(ext, reason)
            if ext in bound:
                held.add(bound[ext])
                follow.append((bound[ext], members))

        valid: list[tuple[str, str, Sequence[str]]] = []
        for ext, raw, members in records:
            reason = name_refusal(raw)
            if reason is not None:
                refuse(ext, reason, members)
            else:
                valid.append((ext, raw.strip(), members))

        def is_alias(name: str) -> bool:
            return key(name) == key(ALIAS)

        def wanted(ext: str, name: str) -> str:  # R3 alias, then R6 explicit links
            return ADMIN if is_alias(name) else links.get(ext, name)

        def keeps_own(record: tuple[str, str, Sequence[str]]) -> bool:
            own = bound.get(record[0])
            return own is not None and key(self.groups[own].name) == key(wanted(record[0], record[1]))

        winners: dict[str, str] = {}
        for ext, name, members in sorted(valid, key=lambda r: not keeps_own(r)):
            if key(wanted(ext, name)) in winners:
                refuse(ext, "duplicate-name", members)
            else:
                winners[key(wanted(ext, name))] = ext
        final_key = {gid: key(g.name) for gid, g in self.groups.items()}
        for k, ext in winners.items():
            if ext in bound:
                final_key[bound[ext]] = k

        unlinked: set[int] = set()
        rebound: set[int] = set()
        renames: dict[int, str] = {}
        link_to: dict[int, str] = {}
        creates: list[tuple[str, str, bool, Sequence[str]]] = []  # ext, name, reserved, members

        for ext, name, members in valid:
            if winners.get(key(wanted(ext, name))) != ext:
                continue
            own = bound.get(ext)
            if is_alias(name):  # R3: the alias maps onto the admin group
                if own is not None and own != admin:
                    unlinked.add(own)
                if admin is None:
                    creates.append((ext, ADMIN, True, members))
                    continue
                group = self.groups[admin]
                if group.managed_by not in (None, directory):
                    self._reject(ext, "owned-by-other-directory")
                elif group.managed_by == directory and group.external_id != ext and (
                    group.external_id in reported or admin in held
                ):
                    self._reject(ext, "duplicate-name")
                else:
                    if group.external_id != ext or group.managed_by != directory:
                        link_to[admin] = ext
                        rebound.add(admin)
                    follow.append((admin, members))
                continue
            target = wanted(ext, name)
            if own is not None and own == admin:
                unlinked.add(own)  # the alias was renamed: the admin group is local again
                own = None
            if own is not None:
                holder = by_key.get(key(target))
                if holder is not None and holder != own and final_key[holder] == key(target):
                    refuse(ext, "name-taken", members)
                    continue
                if self.groups[own].name != target:
                    renames[own] = target
                follow.append((own, members))
                continue
            candidate = by_key.get(key(target))
            if candidate is not None and final_key[candidate] != key(target):
                candidate = None  # its own record renames it away first
            explicit = ext in links
            if candidate is None:
                if explicit:
                    self._reject(ext, "link-target-missing")
                else:
                    creates.append((ext, target, False, members))
                continue
            group = self.groups[candidate]
            if candidate == admin or group.reserved:
                self._reject(ext, "reserved-name")
            elif group.managed_by not in (None, directory):
                self._reject(ext, "owned-by-other-directory")
            elif group.managed_by == directory and (
                group.external_id in reported or candidate in held or candidate in rebound
            ):
                self._reject(ext, "name-taken")
            elif group.managed_by is None and not explicit and not link_by_name:
                self._reject(ext, "name-taken")  # R6: link by name turned off
            else:
                link_to[candidate] = ext
                rebound.add(candidate)
                if group.name != target:
                    renames[candidate] = target
                follow.append((candidate, members))

        # R7: groups that left scope become local, members kept.
        unlinked |= {gid for ext, gid in bound.items() if ext not in reported and gid not in held | rebound}
        for gid in unlinked - set(link_to):
            self.groups[gid].managed_by = self.groups[gid].external_id = None
        for gid, ext in link_to.items():
            self.groups[gid].managed_by, self.groups[gid].external_id = directory, ext
        for gid, name in renames.items():
            self.groups[gid].name = name
        for ext, name, reserved, members in creates:
            gid = self.add_group(name)
            self.groups[gid].managed_by, self.groups[gid].external_id = directory, ext
            self.groups[gid].reserved = reserved
            follow.append((gid, members))
        if self.admin() is None:
            self.add_group(ADMIN)  # the reserved group always exists
        self._hold_last_admins(follow, users, before)
        self._members(follow, users, before, unlinked - set(link_to))

    def _hold_last_admins(
        self, follow: list[tuple[int, Sequence[str]]], users: _Users, before: Mapping[int, bool]
    ) -> None:
        """R4, judged by Administrators as the cycle leaves it: when no member would be
        active afterwards, not even kept with the current members (`_set_members`), the
        cycle deactivates every member active now; the members it would keep in the group
        stay active (or, when it would keep none, all of them, and the group keeps its
        members)."""
        admin = self.admin()
        assert admin is not None
        members = self.groups[admin].members
        listed = next((ids for gid, ids in follow if gid == admin), None)
        if listed is None:  # no record: it keeps its members, but re-bound rows (R7)
            keeps = members - users.identity_changed
            gains = False
        else:  # its members follow the alias: the listed active users of the directory
            rows = {users.final_row[m] for m in listed if m in users.final_row}
            keeps = members & rows
            gains = any(self.users[row].active for row in rows - members)
        # Kept with the current members if need be: all but re-bound rows inactive before.
        kept = keeps | {m for m in members if m not in users.identity_changed or before[m]}
        if gains or any(self.users[m].active for m in kept):
            return
        active_now = {m for m in members if before[m]}
        held = (active_now & keeps) or active_now
        users.deactivated -= held
        for m in held:
            self.users[m].active = True
            self._reject(self.users[m].external_id or "", "last-active-administrator")

    def _members(
        self, follow: list[tuple[int, Sequence[str]]], users: _Users, before: Mapping[int, bool], unlinked: set[int]
    ) -> None:
        """A managed group's members are its listed members that are active users of its
        directory (R7); a re-bound row leaves every other group; R4 keeps the admin group."""
        planned = {gid for gid, _ in follow}
        for gid, members in follow:
            group = self.groups[gid]
            wanted = {
                users.final_row[m] for m in members if m in users.final_row and self.users[users.final_row[m]].active
            }
            self._set_members(gid, wanted, users, before)
        for gid, group in self.groups.items():
            if gid not in planned and group.members & users.identity_changed:
                self._set_members(gid, group.members - users.identity_changed, users, before)

    def _set_members(self, gid: int, wanted: set[int], users: _Users, before: Mapping[int, bool]) -> None:
        group = self.groups[gid]
        removes = group.members - wanted
        adds = wanted - group.members
        if group.reserved and removes and not adds:
            # R4: a plan that would leave the admin group without an active member keeps
            # its current members; a re-bound row inactive in the store still leaves.
            left = group.members - removes
            if not any(self.users[m].active for m in left):
                self._reject("", "admin-group-would-be-empty")
                removes = {m for m in removes if m in users.identity_changed and not before[m]}
        group.members = (group.members - removes) | adds

    # --- what the store should hold ----------------------------------------------------------

    def export(self) -> dict[str, list[dict[str, Any]]]:
        users = [
            {
                "email": u.email,
                "display_name": u.display_name,
                "given_name": None,
                "family_name": None,
                "active": u.active,
                "managed_by": u.managed_by,
                "external_id": u.external_id,
            }
            for u in sorted(self.users.values(), key=lambda u: u.email)
        ]
        groups = [
            {
                "name": g.name,
                "managed_by": g.managed_by,
                "external_id": g.external_id,
                "members": sorted(self.users[m].email for m in g.members),
            }
            for g in sorted(self.groups.values(), key=lambda g: g.name)
        ]
        return {"users": users, "groups": groups}
