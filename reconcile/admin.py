"""Local admin actions as plans: the same rules as a sync, checked before anything is written.

Each function returns the `Plan` to apply, or raises `Refused` with a reason code and one
sentence (the CLI exits 4). R5: users and groups a directory manages are read-only here.
"""

from __future__ import annotations

from reconcile.model import Action, LocalGroup, LocalState, LocalUser, Operation, Plan, Ref, RuleSettings
from reconcile.plan_groups import admin_group_key, find_admin_group
from reconcile.rules import Violation, check_email, check_group_name, check_text, email_key, name_key


class Refused(Exception):
    """A local action a rule forbids."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def add_user(local: LocalState, email: str, name: str | None, rules: RuleSettings) -> Plan:
    clean = _email(email)
    if _user_or_none(local, clean) is not None:
        raise Refused("exists", f"a user with email {clean!r} already exists")
    display = check_text(name, "name", rules)
    if isinstance(display, Violation):
        raise Refused(display.reason, display.detail)
    return _plan(
        Operation(
            Action.CREATE_USER,
            clean,
            user=Ref(key=email_key(clean)),
            values=(
                ("active", True),
                ("display_name", display),
                ("email", clean),
                ("external_id", None),
                ("family_name", None),
                ("given_name", None),
                ("managed_by", None),
            ),
        )
    )


def add_group(local: LocalState, name: str, rules: RuleSettings) -> Plan:
    checked = check_group_name(name, rules)
    if isinstance(checked, Violation):
        raise Refused(checked.reason, checked.detail)
    if any(name_key(g.name) == name_key(checked) for g in local.groups):
        raise Refused("exists", f"a group named {checked!r} already exists")
    return _plan(
        Operation(
            Action.CREATE_GROUP,
            checked,
            group=Ref(key="local:" + name_key(checked)),
            values=(("external_id", None), ("managed_by", None), ("name", checked), ("reserved", False)),
        )
    )


def add_member(local: LocalState, group: str, email: str, rules: RuleSettings) -> Plan:
    user = _user(local, email)
    target = _group_or_none(local, group)
    ops: list[Operation] = []
    if target is None:
        if name_key(group) != name_key(rules.admin_group):
            raise Refused("not-found", f"no group named {group.strip()!r}")
        ops.append(_create_admin(rules))  # the reserved group always exists once asked for
        ref = Ref(key=admin_group_key(rules))
        name = rules.admin_group
    else:
        _writable_group(target)
        if user.id in target.members:
            raise Refused("exists", f"{user.email!r} is already a member of {target.name!r}")
        ref, name = Ref(local_id=target.id), target.name
    ops.append(Operation(Action.ADD_MEMBER, name, group=ref, user=Ref(local_id=user.id), values=(("member", user.email),)))
    return Plan(None, tuple(ops))


def remove_member(local: LocalState, group: str, email: str, rules: RuleSettings) -> Plan:
    user = _user(local, email)
    target = _group_or_none(local, group)
    if target is None:
        raise Refused("not-found", f"no group named {group.strip()!r}")
    _writable_group(target)
    if user.id not in target.members:
        raise Refused("not-found", f"{user.email!r} is not a member of {target.name!r}")
    if target is find_admin_group(local.groups, rules):
        _keeps_an_active_admin(local, target, without=user.id)
    return _plan(
        Operation(Action.REMOVE_MEMBER, target.name, group=Ref(local_id=target.id), user=Ref(local_id=user.id), old=(("member", user.email),))
    )


def deactivate_user(local: LocalState, email: str, rules: RuleSettings) -> Plan:
    user = _user(local, email)
    _writable_user(user)
    if not user.active:
        raise Refused("unchanged", f"{user.email!r} is already inactive")
    admin = find_admin_group(local.groups, rules)
    if admin is not None and user.id in admin.members:
        _keeps_an_active_admin(local, admin, without=user.id)
    return _plan(
        Operation(Action.DEACTIVATE_USER, user.email, user=Ref(local_id=user.id), values=(("active", False),), old=(("active", True),))
    )


def activate_user(local: LocalState, email: str) -> Plan:
    user = _user(local, email)
    _writable_user(user)
    if user.active:
        raise Refused("unchanged", f"{user.email!r} is already active")
    return _plan(
        Operation(Action.ACTIVATE_USER, user.email, user=Ref(local_id=user.id), values=(("active", True),), old=(("active", False),))
    )


def invite(local: LocalState, email: str, syncing: list[str]) -> Plan:
    """R8: no new invites while any directory syncs; its users come from the directory."""
    if syncing:
        raise Refused(
            "sync-enabled",
            f"invites are closed while directory sync is on ({', '.join(syncing)}); add the"
            " person in the identity provider instead",
        )
    clean = _email(email)
    if _user_or_none(local, clean) is not None:
        raise Refused("exists", f"{clean!r} is already a user")
    if any(i.status == "open" and email_key(i.email) == email_key(clean) for i in local.invites):
        raise Refused("exists", f"{clean!r} already has an open invite")
    return _plan(Operation(Action.CREATE_INVITE, clean, values=(("email", clean), ("status", "open"))))


def _plan(op: Operation) -> Plan:
    return Plan(None, (op,))


def _create_admin(rules: RuleSettings) -> Operation:
    return Operation(
        Action.CREATE_GROUP,
        rules.admin_group,
        group=Ref(key=admin_group_key(rules)),
        values=(("external_id", None), ("managed_by", None), ("name", rules.admin_group), ("reserved", True)),
    )


def _email(raw: str) -> str:
    checked = check_email(raw)
    if isinstance(checked, Violation):
        raise Refused(checked.reason, checked.detail)
    return checked


def _user_or_none(local: LocalState, email: str) -> LocalUser | None:
    key = email_key(email)
    return next((u for u in local.users if email_key(u.email) == key), None)


def _user(local: LocalState, email: str) -> LocalUser:
    user = _user_or_none(local, email)
    if user is None:
        raise Refused("not-found", f"no user with email {email.strip()!r}")
    return user


def _group_or_none(local: LocalState, name: str) -> LocalGroup | None:
    key = name_key(name)
    return next((g for g in local.groups if name_key(g.name) == key), None)


def _writable_user(user: LocalUser) -> None:
    if user.managed_by is not None:
        raise Refused(
            "managed",
            f"{user.email!r} is managed by directory {user.managed_by!r}; change it there",
        )


def _writable_group(group: LocalGroup) -> None:
    if group.managed_by is not None:
        raise Refused(
            "managed",
            f"group {group.name!r} is managed by directory {group.managed_by!r}; change its"
            " members there",
        )


def _keeps_an_active_admin(local: LocalState, admin: LocalGroup, without: int) -> None:
    active = {u.id for u in local.users if u.active}
    if not (admin.members - {without}) & active:
        raise Refused(
            "last-active-administrator",
            f"{admin.name!r} must keep at least one active member",
        )


__all__ = [
    "Refused",
    "activate_user",
    "add_group",
    "add_member",
    "add_user",
    "deactivate_user",
    "invite",
    "remove_member",
]
