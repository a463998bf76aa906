"""SCIM push (DESIGN §10): what one request asks for, checked against the product rules and
turned into a `Plan` for `reconcile.apply` (applied atomically, one request = one
transaction). Pure: the caller reads the rows a request touches and passes them in.

A request the rules refuse raises `Problem`: the HTTP status, the SCIM `scimType`, the
stable reason code the rest of dirsync uses (`invalid-email`, `name-too-long`,
`reserved-name`, `owned-by-other-directory`, ...) and a detail that names the rule.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from reconcile.model import Action, Operation, Plan, Ref, RuleSettings
from reconcile.plan_users import IDENTITY_CHANGED
from reconcile.rules import Violation, check_email, check_group_name, check_text, email_key, is_admin_alias

# The rule each reason code comes from, for a SCIM error's `detail`.
RULE_OF_REASON = {
    "missing-email": "R1",
    "invalid-email": "R1",
    "email-taken": "R1",
    "empty-name": "R2",
    "name-too-long": "R2",
    "reserved-name": "R3",
    "admin-group-would-be-empty": "R4",
    "protected": "R4",
    "name-taken": "R6",
    "owned-by-other-directory": "R6",
}
# An IdP's DELETE ends the binding; the row stays managed (R5) under this marker.
DELETED_PREFIX = "deleted:"


class Problem(Exception):
    """A SCIM request that cannot be served as asked: `status` and `scim_type` for the
    SCIM error, `reason` (a stable code) and `detail` (one sentence)."""

    def __init__(self, status: int, detail: str, scim_type: str | None = None, reason: str | None = None,
                 retry_after: int | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.scim_type = scim_type
        self.reason = reason
        self.retry_after = retry_after


def refused(violation: Violation, status: int = 400, scim_type: str = "invalidValue") -> Problem:
    """The SCIM error for a rule violation: the rule and its sentence in `detail`."""
    rule = RULE_OF_REASON.get(violation.reason)
    prefix = f"{rule} ({violation.reason})" if rule else violation.reason
    return Problem(status, f"{prefix}: {violation.detail}", scim_type, violation.reason)


# --- what a request says ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PushEmail:
    value: object
    type: str | None = None
    primary: bool = False


@dataclass(frozen=True, slots=True)
class PushUser:
    """A SCIM User resource as the IdP sent it (raw values: the rules check them).
    `active` None means "not sent" (unchanged on update, true on create)."""

    user_name: object
    emails: tuple[PushEmail, ...] = ()
    given_name: object = None
    family_name: object = None
    display_name: object = None
    active: bool | None = None
    external_id: str | None = None


@dataclass(frozen=True, slots=True)
class PushGroup:
    """A SCIM Group resource as the IdP sent it; `members` are SCIM user ids."""

    display_name: object
    external_id: str | None = None
    members: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class GroupChange:
    """What a PATCH or PUT asks of a group. `members` (when not None) is the complete new
    member list; otherwise `add` and `remove` are deltas (the membership fast path).
    `display_name` and `external_id` None: unchanged; `external_id` "": removed."""

    display_name: object = None
    external_id: str | None = None
    add: tuple[str, ...] = ()
    remove: tuple[str, ...] = ()
    members: tuple[str, ...] | None = None

    @property
    def touches_members(self) -> bool:
        return bool(self.add or self.remove) or self.members is not None


# --- what the store holds about the rows a request touches ------------------------------------


@dataclass(frozen=True, slots=True)
class StoredUser:
    id: int
    email: str
    given_name: str | None
    family_name: str | None
    display_name: str | None
    active: bool
    managed_by: str | None
    external_id: str | None
    scim_id: str | None
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @property
    def idp_external_id(self) -> str | None:
        """The IdP's own `externalId`, if it sent one (otherwise the binding is the SCIM id)."""
        return None if self.external_id in (None, self.scim_id) else self.external_id


@dataclass(frozen=True, slots=True)
class StoredGroup:
    id: int
    name: str
    managed_by: str | None
    external_id: str | None
    scim_id: str | None
    reserved: bool = False
    created_at: datetime | None = None
    updated_at: datetime | None = None

    @property
    def idp_external_id(self) -> str | None:
        return None if self.external_id in (None, self.scim_id) else self.external_id


@dataclass(frozen=True, slots=True)
class UserScope:
    """Rows a user request may touch: the user's groups (id, name) are needed only when a
    re-bind or DELETE takes them away."""

    groups: tuple[tuple[int, str, str | None], ...] = ()  # (group id, name, managed_by)


@dataclass(frozen=True, slots=True)
class CleanFields:
    email: str
    given_name: str | None
    family_name: str | None
    display_name: str | None

    def pairs(self) -> dict[str, object]:
        return {"email": self.email, "given_name": self.given_name, "family_name": self.family_name,
                "display_name": self.display_name}


# --- users -------------------------------------------------------------------------------------


def clean_user(user: PushUser, rules: RuleSettings) -> CleanFields:
    """R1 and the field checks: the store's email is `userName`, or (when `userName` is not
    an email address) the work or primary email; neither is 400."""
    email = check_email(user.user_name)
    if isinstance(email, Violation):
        fallback = _work_email(user.emails)
        email = check_email(fallback) if fallback is not None else email
        if isinstance(email, Violation):
            raise refused(Violation(email.reason, f"userName {user.user_name!r} is not an email address and no"
                                                  f" valid work email was sent ({email.detail})"))
    texts: dict[str, str | None] = {}
    for name, raw in (("given_name", user.given_name), ("family_name", user.family_name),
                      ("display_name", user.display_name)):
        checked = check_text(raw, name.replace("_", " "), rules)
        if isinstance(checked, Violation):
            raise refused(checked)
        texts[name] = checked
    return CleanFields(email, **texts)


def _work_email(emails: Iterable[PushEmail]) -> object:
    """The work email, else the primary one, else the first."""
    emails = list(emails)
    ranked = sorted(emails, key=lambda e: ((e.type or "").lower() != "work", not e.primary))
    return ranked[0].value if ranked else None


def plan_create_user(directory: str, user: PushUser, scim_id: str, holder: StoredUser | None, scope: UserScope,
                     rules: RuleSettings) -> Plan:
    """POST /Users. `holder`: the row that has this email already (case-insensitively), if
    any. A row this directory binds is 409 (an IdP's retried POST changes nothing); a row
    another directory manages is 409; a local row is linked (first sight matches by email);
    a row this directory's DELETE unbound is re-bound as a new person (it leaves its groups)."""
    fields = clean_user(user, rules)
    external_id = user.external_id or scim_id
    active = True if user.active is None else user.active
    if holder is None:
        values = {**fields.pairs(), "active": active, "external_id": external_id, "managed_by": directory,
                  "scim_id": scim_id}
        op = Operation(Action.CREATE_USER, fields.email, user=Ref(key=external_id), values=_sorted(values))
        return Plan(directory, (op,))
    if holder.managed_by == directory and holder.scim_id is not None:
        raise Problem(409, f"R1 (email-taken): a user with userName {holder.email!r} exists (id {holder.scim_id})",
                      "uniqueness", "email-taken")
    if holder.managed_by not in (None, directory):
        raise Problem(409, f"R1 (owned-by-other-directory): {holder.email!r} is managed by directory"
                           f" {holder.managed_by!r}", "uniqueness", "owned-by-other-directory")
    rebinding = holder.managed_by == directory  # unbound by an earlier DELETE: a new person
    ops = [_link_user(holder, directory, external_id, scim_id, IDENTITY_CHANGED if rebinding else None)]
    ops += _user_changes(holder, fields, active, rules)
    if rebinding:
        ops += [_remove_member(group_id, name, holder, IDENTITY_CHANGED) for group_id, name, _ in scope.groups]
    return Plan(directory, tuple(ops))


def plan_update_user(directory: str, current: StoredUser, user: PushUser, email_holder: StoredUser | None,
                     rules: RuleSettings) -> Plan:
    """PUT (or a patched) /Users/{id}: the fields as sent; `active` not sent is unchanged
    (R7: false deactivates, never deletes). `email_holder`: the row holding the new email."""
    fields = clean_user(user, rules)
    if email_key(fields.email) != email_key(current.email) and email_holder is not None \
            and email_holder.id != current.id:
        raise Problem(409, f"R1 (email-taken): another user has userName {fields.email!r}", "uniqueness", "email-taken")
    ops: list[Operation] = []
    if user.external_id is not None and user.external_id != current.external_id:
        ops.append(_link_user(current, directory, user.external_id, current.scim_id, None))
    ops += _user_changes(current, fields, current.active if user.active is None else user.active, rules)
    return Plan(directory, tuple(ops))


def plan_delete_user(directory: str, current: StoredUser, scope: UserScope, rules: RuleSettings) -> Plan:
    """DELETE /Users/{id}: deactivate, leave this directory's groups, end the binding; the
    row stays managed by the directory (R5) so nobody reactivates it locally by mistake."""
    ops: list[Operation] = []
    if current.active:
        ops.append(_deactivate(current, rules))
    ops += [_remove_member(group_id, name, current, None) for group_id, name, owner in scope.groups
            if owner == directory]
    ops.append(_link_user(current, directory, f"{DELETED_PREFIX}{current.scim_id}", None, None))
    return Plan(directory, tuple(ops))


def _user_changes(row: StoredUser, fields: CleanFields, active: bool, rules: RuleSettings) -> list[Operation]:
    ref = Ref(local_id=row.id)
    old = {"email": row.email, "given_name": row.given_name, "family_name": row.family_name,
           "display_name": row.display_name}
    new = fields.pairs()
    changed = {k: v for k, v in new.items() if old[k] != v}
    ops: list[Operation] = []
    if changed:
        ops.append(Operation(Action.UPDATE_USER, fields.email, user=ref, values=_sorted(changed),
                             old=_sorted({k: old[k] for k in changed}), expect=_binding(row)))
    if active and not row.active:
        ops.append(Operation(Action.ACTIVATE_USER, fields.email, user=ref, values=(("active", True),),
                             old=(("active", False),), expect=_binding(row)))
    elif not active and row.active:
        ops.append(_deactivate(row, rules))
    return ops


def _deactivate(row: StoredUser, rules: RuleSettings) -> Operation:
    if rules.protected_users and email_key(row.email) in rules.protected_users:
        raise refused(Violation("protected", f"{row.email!r} is a protected account ([safety] protected_users);"
                                             " no directory deactivates it"))
    return Operation(Action.DEACTIVATE_USER, row.email, user=Ref(local_id=row.id), values=(("active", False),),
                     old=(("active", True),), expect=_binding(row))


def _link_user(row: StoredUser, directory: str, external_id: str, scim_id: str | None,
               reason: str | None) -> Operation:
    return Operation(
        Action.LINK_USER, row.email, user=Ref(local_id=row.id),
        values=(("external_id", external_id), ("managed_by", directory), ("scim_id", scim_id)),
        old=(("external_id", row.external_id), ("managed_by", row.managed_by), ("scim_id", row.scim_id)),
        expect=_binding(row), reason=reason,
    )


def _remove_member(group_id: int, group_name: str, user: StoredUser, reason: str | None) -> Operation:
    return Operation(Action.REMOVE_MEMBER, group_name, group=Ref(local_id=group_id), user=Ref(local_id=user.id),
                     old=(("member", user.email),), reason=reason)


# --- groups ------------------------------------------------------------------------------------


def group_name(raw: object, rules: RuleSettings) -> str:
    """R2, R3: the name a pushed group may carry (the alias of the admin group included)."""
    checked = check_group_name(raw, rules)
    if isinstance(checked, Violation):
        raise refused(checked)
    return checked


def target_name(name: str, rules: RuleSettings) -> str:
    """The local group a pushed name maps onto: the alias maps onto the admin group (R3)."""
    return rules.admin_group if is_admin_alias(name, rules) else name


@dataclass(frozen=True, slots=True)
class Members:
    """SCIM user ids resolved to this directory's local users (id, email); the rest unknown."""

    users: Mapping[str, tuple[int, str]] = field(default_factory=dict)

    def resolve(self, ids: Iterable[str], *, strict: bool) -> list[tuple[int, str]]:
        out: dict[int, str] = {}
        for scim_id in ids:
            found = self.users.get(scim_id)
            if found is None:
                if strict:
                    raise Problem(400, f"member {scim_id!r} is not a user of this directory", "invalidValue",
                                  "unknown-member")
                continue
            out[found[0]] = found[1]
        return sorted(out.items())


def plan_create_group(directory: str, group: PushGroup, scim_id: str, holder: StoredGroup | None,
                      members: Members, rules: RuleSettings) -> Plan:
    """POST /Groups. `holder`: the local group with the target name (the admin group for
    the alias). An unmanaged one is linked (R6, members kept); one this directory binds is
    409; one another directory manages is 409."""
    name = group_name(group.display_name, rules)
    target = target_name(name, rules)
    external_id = group.external_id or scim_id
    adds = members.resolve(group.members, strict=True)
    if holder is None:
        reserved = target != name
        values = {"external_id": external_id, "managed_by": directory, "name": target, "reserved": reserved,
                  "scim_id": scim_id}
        ref = Ref(key=external_id)
        ops = [Operation(Action.CREATE_GROUP, target, group=ref, values=_sorted(values))]
    else:
        if holder.managed_by == directory and holder.scim_id is not None:
            raise Problem(409, f"a group named {holder.name!r} exists in this directory (id {holder.scim_id})",
                          "uniqueness", "name-taken")
        if holder.managed_by is not None and holder.managed_by != directory:
            raise refused(Violation("owned-by-other-directory",
                                    f"local group {holder.name!r} is managed by directory {holder.managed_by!r}"),
                          409, "uniqueness")
        if not rules.link_groups_by_name and not holder.reserved:
            raise refused(Violation("name-taken", f"a local group named {holder.name!r} exists and"
                                                  " [rules] link_groups_by_name is off"), 409, "uniqueness")
        ref = Ref(local_id=holder.id)
        ops = [_link_group(holder, directory, external_id, scim_id)]
    ops += [_add_member(ref, target, uid, email) for uid, email in adds]
    return Plan(directory, tuple(ops))


def plan_update_group(directory: str, current: StoredGroup, change: GroupChange, name_holder: StoredGroup | None,
                      members: Members, current_members: Iterable[tuple[int, str]], rules: RuleSettings) -> Plan:
    """PATCH or PUT /Groups/{id}. Deltas (`add`, `remove`) become one operation per member
    without reading the group's other members; a complete list (`members`) is compared
    with `current_members` (this directory's users in the group; local members of a
    linked group are not the IdP's to remove). R4 is checked where it is written."""
    ops: list[Operation] = []
    ref = Ref(local_id=current.id)
    name = current.name
    if change.display_name is not None:
        wanted = group_name(change.display_name, rules)
        if current.reserved:
            if not is_admin_alias(wanted, rules):
                raise refused(Violation("reserved-name", f"{current.name!r} is reserved: the directory group mapped"
                                                         f" onto it keeps the name {rules.admin_alias!r}"))
        elif is_admin_alias(wanted, rules):
            raise refused(Violation("reserved-name", f"renaming into {wanted!r} would override the reserved"
                                                     f" {rules.admin_group!r}"))
        elif wanted != current.name:
            if name_holder is not None and name_holder.id != current.id:
                raise Problem(409, f"R6 (name-taken): a group named {name_holder.name!r} exists", "uniqueness",
                              "name-taken")
            ops.append(Operation(Action.RENAME_GROUP, wanted, group=ref, values=(("name", wanted),),
                                 old=(("name", current.name),), expect=_group_binding(current)))
            name = wanted
    if change.external_id is not None:  # "" removes the IdP's id: the binding is the SCIM id again
        wanted_id = change.external_id or current.scim_id or ""
        if wanted_id != current.external_id:
            ops.append(_link_group(current, directory, wanted_id, current.scim_id))
    if change.members is not None:
        wanted_members = dict(members.resolve(change.members, strict=True))
        present = dict(current_members)
        adds = sorted((u, e) for u, e in wanted_members.items() if u not in present)
        removes = sorted((u, e) for u, e in present.items() if u not in wanted_members)
    else:
        adds = members.resolve(change.add, strict=True)
        removing = members.resolve(change.remove, strict=False)
        added = {u for u, _ in adds}
        removes = [(u, e) for u, e in removing if u not in added]
    # Adds before removes: the admin group keeps an active member in between (R4).
    ops += [_add_member(ref, name, uid, email, current) for uid, email in adds]
    ops += [Operation(Action.REMOVE_MEMBER, name, group=ref, user=Ref(local_id=uid), old=(("member", email),),
                      expect=_group_binding(current)) for uid, email in removes]
    return Plan(directory, tuple(ops))


def plan_delete_group(directory: str, current: StoredGroup) -> Plan:
    """DELETE /Groups/{id}: the group becomes local, members kept (R7: never deleted)."""
    op = Operation(Action.UNLINK_GROUP, current.name, group=Ref(local_id=current.id),
                   values=(("external_id", None), ("managed_by", None)),
                   old=(("external_id", current.external_id), ("managed_by", current.managed_by)),
                   expect=_group_binding(current))
    return Plan(directory, (op,))


def _link_group(row: StoredGroup, directory: str, external_id: str, scim_id: str | None) -> Operation:
    return Operation(
        Action.LINK_GROUP, row.name, group=Ref(local_id=row.id),
        values=(("external_id", external_id), ("managed_by", directory), ("scim_id", scim_id)),
        old=(("external_id", row.external_id), ("managed_by", row.managed_by), ("scim_id", row.scim_id)),
        expect=_group_binding(row),
    )


def _add_member(group: Ref, name: str, user_id: int, email: str, row: StoredGroup | None = None) -> Operation:
    return Operation(Action.ADD_MEMBER, name, group=group, user=Ref(local_id=user_id), values=(("member", email),),
                     expect=_group_binding(row) if row is not None else ())


def _binding(row: StoredUser) -> tuple[tuple[str, object], ...]:
    return (("external_id", row.external_id), ("managed_by", row.managed_by))


def _group_binding(row: StoredGroup) -> tuple[tuple[str, object], ...]:
    return (("external_id", row.external_id), ("managed_by", row.managed_by))


def _sorted(values: Mapping[str, object]) -> tuple[tuple[str, object], ...]:
    return tuple(sorted(values.items()))
