"""The SCIM operations of a `kind = "scim"` directory (DESIGN §10), one typed function each.

Every write reads the rows it touches, plans with the pure rules (`reconcile.push`) and
applies through `reconcile.apply.apply(atomic=True)`: one request is one transaction,
all of it or nothing, checked where it is written (§2a: bindings, R4, a disabled
directory). A plan that meets a concurrent change is planned again (twice at most).
Every change is an event of the directory's `scim` run for the hour, carrying the
request's method and path. A refusal raises `Problem` (status, scimType, reason, detail).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from config import Settings
from reconcile.apply import ADMIN_EMPTY, CHANGED, DISABLED, MANAGED, OTHER_OWNER, ApplyResult, apply
from reconcile.model import Plan, RuleSettings
from reconcile.push import (
    GroupChange,
    Members,
    Problem,
    PushGroup,
    PushUser,
    StoredGroup,
    StoredUser,
    UserScope,
    clean_user,
    group_name,
    plan_create_group,
    plan_create_user,
    plan_delete_group,
    plan_delete_user,
    plan_update_group,
    plan_update_user,
    target_name,
)
from reconcile.push_filter import Filter, parse_filter
from reconcile.push_label import request_label
from reconcile.push_patch import (
    GROUP_SCHEMA,
    PATCH_SCHEMA,
    USER_SCHEMA,
    PatchOp,
    group_replacement,
    parse_group,
    parse_patch,
    parse_user,
    sets_active,
)
from reconcile.push_patch import patch_group as group_patch
from reconcile.push_patch import patch_user as apply_patch
from reconcile.rules import is_admin_alias
from service import scim_hold, scim_runs
from store import Store
from store.push import (
    admin_group,
    directory_members,
    group_by_name,
    group_by_scim_id,
    groups_page,
    members_of,
    reading,
    resolve_users,
    user_by_email,
    user_by_scim_id,
    user_groups,
    users_page,
)

__all__ = [
    "GROUP_SCHEMA", "PATCH_SCHEMA", "USER_SCHEMA", "GroupView", "Page", "PatchOp", "Problem", "UserView",
    "create_group", "create_user", "delete_group", "delete_user", "get_group", "get_user", "group_replacement",
    "filter_of", "group_patch", "list_groups", "list_users", "parse_group", "parse_patch", "parse_user",
    "patch_user", "replace_group", "replace_user", "request_label", "update_group",
]

T = TypeVar("T")
MAX_RESULTS = 1000
_ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class UserView:
    """A user as its SCIM client sees it."""

    row: StoredUser


@dataclass(frozen=True, slots=True)
class GroupView:
    """A group as its SCIM client sees it: the admin group under its alias (R3), and the
    members this directory serves (SCIM id, email), or None when not asked for."""

    row: StoredGroup
    display_name: str
    members: tuple[tuple[str, str], ...] | None


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    total: int
    start: int
    items: tuple[T, ...]


def _rules(settings: Settings) -> RuleSettings:
    return settings.to_rules()


def _new_id() -> str:
    return uuid.uuid4().hex


# --- users -------------------------------------------------------------------------------------


def get_user(store: Store, directory: str, scim_id: str) -> UserView:
    with reading(store) as session:
        row = user_by_scim_id(session, directory, scim_id)
    if row is None:
        raise Problem(404, f"User {scim_id} not found")
    return UserView(row)


def list_users(store: Store, directory: str, where: Filter | None, start: int, count: int) -> Page[UserView]:
    start, count = max(start, 1), min(max(count, 0), MAX_RESULTS)
    with reading(store) as session:
        total, rows = users_page(session, directory, where, start, count)
    return Page(total, start, tuple(UserView(r) for r in rows))


def create_user(settings: Settings, store: Store, directory: str, user: PushUser, *, request: str) -> UserView:
    """POST /Users (R1: the email is the key; a retried POST is 409 and changes nothing).
    One whose user it created or linked is active (it said `active: true`, or nothing:
    SCIM's default) takes back a deactivation of its email that a held POST carries, as
    `_reactivated` does for a request to `/Users/{id}` (the held POST, under another SCIM
    id, is dropped anyway)."""
    rules = _rules(settings)
    scim_id = _new_id()

    def plan() -> Plan:
        email = clean_user(user, rules).email
        with reading(store) as session:
            holder = user_by_email(session, email)
            scope = UserScope(tuple(user_groups(session, holder.id))) if holder is not None \
                and holder.managed_by == directory else UserScope()
        return plan_create_user(directory, user, scim_id, holder, scope, rules)

    # A POST that omits `active` makes the user active too (SCIM's default).
    held = scim_hold.refuse_while_decided(store, directory, None, lambda: (clean_user(user, rules).email,), request) \
        if user.active is not False else None
    _write(settings, store, directory, plan, request)
    view = _created(lambda: get_user(store, directory, scim_id), plan)
    if held is not None and view.row.active:
        # Its link binds the user under its own SCIM id: an approval drops a held POST of
        # the email, or, applying one it read before, finds the binding changed (a conflict).
        scim_hold.withdraw_if_held(store, directory, scim_id, (view.row.email,), request, refused_while_decided=False)
    return view


def replace_user(settings: Settings, store: Store, directory: str, scim_id: str, user: PushUser, *,
                 request: str) -> UserView:
    """PUT /Users/{id}: the whole user; `active` not sent is unchanged; false deactivates."""
    rules = _rules(settings)
    before: list[str] = []  # the email the row had when the written plan was made

    def plan() -> Plan:
        current = get_user(store, directory, scim_id).row
        before[:] = [current.email]
        return _plan_update(store, directory, current, user, rules)

    held = _write_reactivating(settings, store, directory, scim_id, plan, request, user.active is True)
    return _reactivated(store, directory, scim_id, request, before, held)


def patch_user(settings: Settings, store: Store, directory: str, scim_id: str, ops: tuple[PatchOp, ...], *,
               request: str) -> UserView:
    """PATCH /Users/{id} in Okta's and Entra's dialects (see `reconcile.push_patch`)."""
    rules = _rules(settings)
    before: list[str] = []  # the email the row had when the written plan was made

    def plan() -> Plan:
        current = get_user(store, directory, scim_id).row
        before[:] = [current.email]
        patched = apply_patch(user_document(current), ops)
        user = parse_user(patched)
        if user.external_id is None:  # removed: the binding falls back to the SCIM id
            user = PushUser(user.user_name, user.emails, user.given_name, user.family_name, user.display_name,
                            user.active, current.scim_id)
        return _plan_update(store, directory, current, user, rules)

    held = _write_reactivating(settings, store, directory, scim_id, plan, request, sets_active(ops))
    return _reactivated(store, directory, scim_id, request, before, held)


def delete_user(settings: Settings, store: Store, directory: str, scim_id: str, *, request: str) -> None:
    """DELETE /Users/{id}: deactivated, out of this directory's groups, unbound (GET is 404)."""
    rules = _rules(settings)

    def plan() -> Plan:
        current = get_user(store, directory, scim_id).row
        with reading(store) as session:
            scope = UserScope(tuple(user_groups(session, current.id)))
        return plan_delete_user(directory, current, scope, rules)

    _write(settings, store, directory, plan, request)


def _write_reactivating(settings: Settings, store: Store, directory: str, scim_id: str, plan: Callable[[], Plan],
                        request: str, active: bool) -> int | None:
    """`_write`, for a request to `/Users/{scim_id}`; one that says `active: true` is
    refused first (503) while a decision on a held deactivation of its user runs."""
    held = None
    if active:
        held = scim_hold.refuse_while_decided(store, directory, scim_id,
                                              lambda: (get_user(store, directory, scim_id).row.email,), request)
    _write(settings, store, directory, plan, request)
    return held


def _reactivated(store: Store, directory: str, scim_id: str, request: str, before: Sequence[str],
                 held: int | None) -> UserView:
    """The user after a request; one that said `active: true` takes back a deactivation
    of the user that the directory's open staged plan holds (S2, `service.scim_hold`):
    one held from a request to its SCIM id, whatever email the user had then, or from a
    `POST /Users` of the email it had `before` the request or has now. Its write left the
    user active: found inactive after the withdrawal, the user was deactivated since by a
    decision that read the held deactivation before it (one that began and ended after
    the write), and the request is refused (503) to be sent again. `held`: the plan that
    held a deactivation of the user when the request was let write
    (`service.scim_hold.refuse_while_decided`, asked only for a request that says `active:
    true`); with none, there is nothing to take back."""
    view = get_user(store, directory, scim_id)
    if held is None:  # not `active: true`, or nothing of the user held when it was let write
        return view
    scim_hold.withdraw_if_held(store, directory, scim_id, (*before, view.row.email), request)
    view = get_user(store, directory, scim_id)
    if not view.row.active:
        raise scim_hold.being_decided(None)
    return view


def user_document(row: StoredUser) -> dict[str, object]:
    """The attributes a PATCH of `row` starts from (the ones dirsync keeps)."""
    name = {k: v for k, v in (("givenName", row.given_name), ("familyName", row.family_name)) if v is not None}
    return {"userName": row.email, "externalId": row.idp_external_id, "displayName": row.display_name,
            "name": name, "emails": [{"value": row.email, "type": "work", "primary": True}], "active": row.active}


def _plan_update(store: Store, directory: str, current: StoredUser, user: PushUser, rules: RuleSettings) -> Plan:
    email = clean_user(user, rules).email
    with reading(store) as session:
        holder = user_by_email(session, email)
    return plan_update_user(directory, current, user, holder, rules)


# --- groups ------------------------------------------------------------------------------------


def get_group(settings: Settings, store: Store, directory: str, scim_id: str, *, members: bool = True) -> GroupView:
    with reading(store) as session:
        row = group_by_scim_id(session, directory, scim_id)
        if row is None:
            raise Problem(404, f"Group {scim_id} not found")
        found = members_of(session, [row.id], directory).get(row.id, []) if members else None
    return _group_view(settings, row, found)


def list_groups(settings: Settings, store: Store, directory: str, where: Filter | None, start: int, count: int, *,
                members: bool = True) -> Page[GroupView]:
    rules = _rules(settings)
    start, count = max(start, 1), min(max(count, 0), MAX_RESULTS)
    if where is not None:  # the IdP looks the admin group up by the name it pushed (R3)
        where = tuple(tuple((a, target_name(v, rules) if a == "display_name" else v) for a, v in alt)
                      for alt in where)
    with reading(store) as session:
        total, rows = groups_page(session, directory, where, start, count)
        found = members_of(session, [r.id for r in rows], directory) if members else {}
    return Page(total, start, tuple(_group_view(settings, r, found.get(r.id, []) if members else None)
                                    for r in rows))


def create_group(settings: Settings, store: Store, directory: str, group: PushGroup, *, request: str) -> GroupView:
    """POST /Groups: R2/R3 checked; `Split_Administrators` maps onto `Administrators`; a
    same-name unmanaged local group is linked (R6); a duplicate is 409."""
    rules = _rules(settings)
    scim_id = _new_id()

    def plan() -> Plan:
        name = group_name(group.display_name, rules)
        target = target_name(name, rules)
        with reading(store) as session:
            holder = admin_group(session, rules.admin_group) if target != name else group_by_name(session, target)
            members = Members(resolve_users(session, directory, group.members))
        return plan_create_group(directory, group, scim_id, holder, members, rules)

    _write(settings, store, directory, plan, request)
    return _created(lambda: get_group(settings, store, directory, scim_id), plan)


def update_group(settings: Settings, store: Store, directory: str, scim_id: str, change: GroupChange, *,
                 request: str) -> None:
    """PATCH or PUT /Groups/{id}: rename, externalId, and members: deltas cost the size of
    the delta, not of the group (the membership fast path)."""
    rules = _rules(settings)

    def plan() -> Plan:
        with reading(store) as session:
            current = group_by_scim_id(session, directory, scim_id)
            if current is None:
                raise Problem(404, f"Group {scim_id} not found")
            holder = None
            if isinstance(change.display_name, str) and not current.reserved \
                    and not is_admin_alias(change.display_name, rules):
                holder = group_by_name(session, change.display_name)
            ids = [*change.add, *change.remove, *(change.members or ())]
            members = Members(resolve_users(session, directory, ids)) if ids else Members()
            present = directory_members(session, current.id, directory) if change.members is not None else []
        return plan_update_group(directory, current, change, holder, members, present, rules)

    _write(settings, store, directory, plan, request)


def replace_group(settings: Settings, store: Store, directory: str, scim_id: str, change: GroupChange, *,
                  request: str) -> GroupView:
    update_group(settings, store, directory, scim_id, change, request=request)
    return get_group(settings, store, directory, scim_id)


def delete_group(settings: Settings, store: Store, directory: str, scim_id: str, *, request: str) -> None:
    """DELETE /Groups/{id}: the group becomes local, members kept (R7)."""
    def plan() -> Plan:
        with reading(store) as session:
            current = group_by_scim_id(session, directory, scim_id)
        if current is None:
            raise Problem(404, f"Group {scim_id} not found")
        return plan_delete_group(directory, current)

    _write(settings, store, directory, plan, request)


def _group_view(settings: Settings, row: StoredGroup, members: list[tuple[str, str]] | None) -> GroupView:
    name = settings.rules.admin_alias.strip() if row.reserved else row.name
    return GroupView(row, name, tuple(members) if members is not None else None)


# --- writing -----------------------------------------------------------------------------------

_RETRY = frozenset({CHANGED})


def _write(settings: Settings, store: Store, directory: str, plan: Callable[[], Plan], request: str) -> None:
    """Plan and apply atomically; plan again when a concurrent writer changed a row first."""
    for attempt in range(_ATTEMPTS):
        the_plan = plan()
        if the_plan.is_empty:
            return  # nothing to change: nothing is written (a no-op PUT)
        scim_runs.hold_deactivations(settings, store, directory, the_plan, request)
        result = scim_runs.apply_request(store, directory, the_plan, request, apply_plan=_apply)
        problem = _problem(result)
        if problem is None:
            return
        if problem.reason in _RETRY and attempt + 1 < _ATTEMPTS:
            continue
        raise problem


def _created(view: Callable[[], T], plan: Callable[[], Plan]) -> T:
    """The resource a POST created. When it is not there, a concurrent POST of the same
    resource committed between this request's plan and its write, and apply made this
    create a noop (same binding): this request is that one's retry, answered as a retry
    after it is (409, R1/R6), by planning again against what is now stored."""
    try:
        return view()
    except Problem as missing:
        if missing.status != 404:
            raise
        plan()  # raises the retry's 409 now that the first request's row is stored
        raise Problem(409, "a concurrent request created the same resource first", "uniqueness", CHANGED) from None


def _apply(store: Store, plan: Plan, run_id: int, generation: int, request: str) -> ApplyResult:
    return apply(store, plan, run_id=run_id, directory=plan.directory, atomic=True, detail=request,
                 generation=generation)


def _problem(result: ApplyResult) -> Problem | None:
    """The SCIM error for an all-or-nothing apply that wrote nothing, if it did not apply."""
    if result.aborted:
        return Problem(409, "the directory was disabled while this request ran", None, DISABLED)
    causes = [f for f in result.failures if f.reason != "request-refused"]
    if not causes and not result.failures:
        return None
    cause = (causes or list(result.failures))[0]
    if cause.reason == ADMIN_EMPTY:
        return Problem(400, "R4 (admin-group-would-be-empty): Administrators would be left without an active"
                            " member; nothing was changed", "invalidValue", ADMIN_EMPTY)
    if cause.reason == OTHER_OWNER:
        return Problem(409, f"R6 (owned-by-other-directory): {cause.target!r} is managed by another directory",
                       "uniqueness", OTHER_OWNER)
    if cause.reason == MANAGED:
        return Problem(409, f"R5 (managed): {cause.target!r} is managed", None, MANAGED)
    if cause.reason == CHANGED:
        return Problem(409, f"{cause.target!r} changed while this request ran; retry", None, CHANGED)
    if cause.reason.startswith("conflict:"):  # a unique key a concurrent request took first
        return Problem(409, f"{cause.target!r} is taken", "uniqueness", CHANGED)
    return Problem(500, f"{cause.action.value} {cause.target!r} failed: {cause.reason}", None, "failed")


def filter_of(text: str | None, resource: str) -> Filter | None:
    return parse_filter(text, resource) if text else None
