"""Planning users: bind, match by email, create, update, (de)activate (R1, R4, R5, R7, R9)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace

from reconcile.model import (
    Action,
    ExternalUser,
    Fields,
    Kind,
    LocalUser,
    Operation,
    Pairs,
    Ref,
    Rejection,
    RuleSettings,
    Section,
)
from reconcile.rules import Violation, check_email, check_text, email_key

USER_FIELDS = ("email", "given_name", "family_name", "display_name")

# Why a row that a departed record was bound to is re-bound and loses its memberships.
IDENTITY_CHANGED = "identity-changed"
# Why a deactivation happened (the event log says it): the record is gone from the
# directory's scope (unassigned, deleted), or the directory reports it disabled (R9).
LEFT_SCOPE = "left-scope"
DISABLED_IN_IDP = "disabled-in-idp"
SUSPENDED = "suspended"


@dataclass(frozen=True, slots=True)
class CleanUser:
    """A directory user that passed R1 and the field checks."""

    external_id: str
    email: str
    given_name: str | None
    family_name: str | None
    display_name: str | None
    active: bool
    suspended: bool = False

    def fields(self) -> dict[str, object]:
        return {name: getattr(self, name) for name in USER_FIELDS}


# A user as the groups that list them gain them: one this plan creates, by its clean
# record, or a row that exists, by the row (with the address the plan gives it, where it
# moves). `member_of` makes the reference and values, so the plan keeps one pointer per
# member, and for an unchanged row not even a record of its own.
Member = CleanUser | LocalUser


def member_of(member: Member) -> tuple[Ref, Pairs]:
    """The user reference and the `values` of adding `member` to a group."""
    if isinstance(member, CleanUser):
        return Ref(key=member.external_id), member_values(member.email)
    return Ref(local_id=member.id), member_values(member.email)


@dataclass(slots=True)
class UserPlan:
    """What planning users decided, for the group planner and the final ordering."""

    # every operation but the creates
    operations: list[Operation] = field(default_factory=list)
    # the users this plan creates, in order (`UserCreates`)
    created: list[CleanUser] = field(default_factory=list)
    rejections: list[Rejection] = field(default_factory=list)
    # external id -> the user as the groups listing it gain it, for every user that has a
    # row after the plan (`final_row`: the row that exists)
    final_member: dict[str, Member] = field(default_factory=dict)
    # external ids whose final local row exists and is inactive; every other user in
    # `final_member` is active (a set of the active ones would hold nearly every id)
    final_inactive: set[str] = field(default_factory=set)
    # local ids left exactly as they are (a rejected record of a bound user)
    held_local_ids: set[int] = field(default_factory=set)
    # local ids this plan deactivates, and those it activates
    deactivated_local_ids: set[int] = field(default_factory=set)
    activated_local_ids: set[int] = field(default_factory=set)
    # local ids this plan binds to a directory record they were not bound to
    linked_local_ids: set[int] = field(default_factory=set)
    # local ids whose directory record left scope (deactivated, or held active)
    left_local_ids: set[int] = field(default_factory=set)
    # local ids re-bound to a different directory record: a new person, who keeps none
    # of the old one's memberships (R7)
    identity_changed_local_ids: set[int] = field(default_factory=set)
    # external ids the directory reported, valid or not (to tell unknown members apart)
    seen: set[str] = field(default_factory=set)
    # Whether `seen` holds every user in the directory's scope (a full read). An
    # incremental one names only the users that changed: a member it does not name may
    # be an inactive user never created here, not an unknown one.
    seen_everyone: bool = True

    def final_row(self, external_id: str) -> int | None:
        """The id of the row that exists and that `external_id` is bound to after the
        plan (None for a user the plan creates, or one with no row)."""
        member = self.final_member.get(external_id)
        return member.id if isinstance(member, LocalUser) else None

    def final_rows(self) -> Iterator[tuple[str, int]]:
        """(external id, `final_row`) of every user bound to a row that exists."""
        return ((ext, member.id) for ext, member in self.final_member.items() if isinstance(member, LocalUser))


def clean_user(user: ExternalUser, rules: RuleSettings) -> CleanUser | Violation:
    email = check_email(user.email)
    if isinstance(email, Violation):
        return email
    texts: dict[str, str | None] = {}
    for name in ("given_name", "family_name", "display_name"):
        checked = check_text(getattr(user, name), name.replace("_", " "), rules)
        if isinstance(checked, Violation):
            return checked
        texts[name] = checked
    if not isinstance(user.active, bool):
        return Violation("invalid-field", "the user's status is not true or false")
    return CleanUser(user.external_id, email, active=user.active, suspended=user.suspended, **texts)


def plan_users(
    users: Iterable[ExternalUser],
    local_users: Iterable[LocalUser],
    directory: str,
    rules: RuleSettings,
    held_external_ids: frozenset[str],
    departed: frozenset[str] | None = None,
) -> UserPlan:
    """Decide every user operation for one directory.

    With `departed` None, `users` is the directory's complete list and every bound user
    missing from it has left scope. Otherwise `users` are only the records that changed,
    `departed` the ids that left, and every other bound user stays exactly as it is.
    """
    out = UserPlan(seen_everyone=departed is None)
    local = list(local_users)
    bound = {u.external_id: u for u in local if u.managed_by == directory and u.external_id}
    by_key = {email_key(u.email): u for u in local}

    # 1. Validate; a bound user whose record is bad is held exactly as it is.
    valid: list[CleanUser] = []
    # The ids reported, valid or not (held ones too, after this loop): one set of a
    # million ids at a million users, so there is no second one.
    seen_ids = out.seen
    for record in users:
        if record.external_id in seen_ids:
            out.rejections.append(_reject(record, "duplicate-id", "another user has this id"))
            continue
        seen_ids.add(record.external_id)
        if record.external_id in held_external_ids:
            _hold(out, bound.get(record.external_id))
            continue
        checked = clean_user(record, rules)
        if isinstance(checked, Violation):
            out.rejections.append(_reject(record, checked.reason, checked.detail))
            _hold(out, bound.get(record.external_id))
            continue
        valid.append(checked)
    for external_id in held_external_ids - seen_ids:
        seen_ids.add(external_id)  # reported, though unreadable: not an unknown member
        _hold(out, bound.get(external_id))
    if departed is not None:
        for external_id, row in bound.items():
            if external_id not in seen_ids and external_id not in departed:
                seen_ids.add(external_id)
                _keep(out, row)

    # 2. One directory user per email (R1): a bound user keeping its address wins, then
    #    the order the directory listed them in.
    def keeps_own(u: CleanUser) -> bool:
        own = bound.get(u.external_id)
        return own is not None and email_key(own.email) == email_key(u.email)

    claims: dict[str, CleanUser] = {}
    for clean in sorted(valid, key=lambda u: not keeps_own(u)):  # stable sort
        key = email_key(clean.email)
        if key in claims:
            out.rejections.append(
                _reject_clean(
                    clean,
                    "duplicate-email",
                    f"{claims[key].email!r} (id {claims[key].external_id}) already has this"
                    " address; emails are compared without case",
                )
            )
            _hold(out, bound.get(clean.external_id))
            continue
        claims[key] = clean

    # The local rows that leave their address if this plan runs: those whose bound user
    # claims another one. Every other row keeps its own.
    moving: set[int] = set()
    for key, user in claims.items():
        own = bound.get(user.external_id)
        if own is not None and email_key(own.email) != key:
            moving.add(own.id)

    for clean in valid:
        key = email_key(clean.email)
        if claims[key] is not clean:
            continue  # refused above: another user has this address
        target = bound.get(clean.external_id)
        if target is not None:
            holder = by_key.get(key)
            if holder is not None and holder.id != target.id and holder.id not in moving:
                out.rejections.append(
                    _reject_clean(clean, "email-taken", f"another local user already has {clean.email!r}")
                )
                _hold(out, target)
                continue
            _update(out, clean, target, directory, rules, link=False)
            continue

        candidate = by_key.get(key)
        if candidate is not None and candidate.id in moving:
            candidate = None  # its bound owner moves it to another address first
        if candidate is None:
            if clean.active:  # a disabled account is never created (Entra's rule too)
                out.created.append(clean)
                out.final_member[clean.external_id] = clean
            continue
        if candidate.managed_by is not None and candidate.managed_by != directory:
            out.rejections.append(
                _reject_clean(
                    clean,
                    "owned-by-other-directory",
                    f"{candidate.email!r} is managed by directory {candidate.managed_by!r}",
                )
            )
            continue
        if candidate.id in out.held_local_ids or (
            candidate.managed_by == directory and candidate.external_id in seen_ids
        ):
            out.rejections.append(
                _reject_clean(
                    clean,
                    "email-taken",
                    f"{candidate.email!r} belongs to directory record {candidate.external_id}",
                )
            )
            continue
        # An unmanaged local account, or this directory's account whose directory record
        # is gone (the address was given to someone else, or the person recreated): bind
        # it to this record.
        _update(out, clean, candidate, directory, rules, link=True)

    # 3. Bound users the directory no longer reports have left scope (R7).
    for external_id, row in bound.items():
        if external_id in seen_ids or row.id in out.held_local_ids:
            continue
        if row.id in out.linked_local_ids:
            continue  # rebound to a new directory record above
        out.left_local_ids.add(row.id)
        if row.active:
            _deactivate(out, row, rules, reason=LEFT_SCOPE)

    return out


def _update(
    out: UserPlan, user: CleanUser, target: LocalUser, directory: str, rules: RuleSettings, link: bool
) -> None:
    ref = Ref(local_id=target.id)
    # A row this directory bound to another record now belongs to a new person, who
    # inherits none of the old one's memberships (R7).
    identity_changed = link and target.managed_by == directory
    if identity_changed:
        out.identity_changed_local_ids.add(target.id)
    if link:
        out.operations.append(
            Operation(
                Action.LINK_USER,
                user.email,
                user=ref,
                values=(("external_id", user.external_id), ("managed_by", directory)),
                old=(("external_id", target.external_id), ("managed_by", target.managed_by)),
                reason=IDENTITY_CHANGED if identity_changed else None,
            )
        )
    new = user.fields()
    changed = [name for name in USER_FIELDS if getattr(target, name) != new[name]]
    if changed:
        out.operations.append(
            Operation(
                Action.UPDATE_USER,
                user.email,
                user=ref,
                values=tuple((name, new[name]) for name in changed),
                old=tuple((name, getattr(target, name)) for name in changed),
            )
        )
    if user.active and not target.active:
        out.operations.append(
            Operation(
                Action.ACTIVATE_USER,
                user.email,
                user=ref,
                values=(("active", True),),
                old=(("active", False),),
            )
        )
        out.activated_local_ids.add(target.id)
    elif target.active and not user.active:
        _deactivate(out, target, rules, target=user.email, reason=SUSPENDED if user.suspended else DISABLED_IN_IDP)
    out.final_member[user.external_id] = target if target.email == user.email else replace(target, email=user.email)
    if link:
        out.linked_local_ids.add(target.id)
    if not user.active:
        out.final_inactive.add(user.external_id)


def _deactivate(out: UserPlan, row: LocalUser, rules: RuleSettings, target: str | None = None, *,
                reason: str) -> None:
    """Deactivate `row` (saying why: `reason`), unless it is a break-glass account (R4):
    then refuse, with a reason."""
    if is_protected(row, rules):
        out.rejections.append(
            Rejection(
                Kind.USER,
                row.email,
                "protected",
                f"{row.email!r} is a protected account ([safety] protected_users);"
                " no directory deactivates it",
                external_id=row.external_id,
            )
        )
        return
    out.operations.append(
        Operation(
            Action.DEACTIVATE_USER,
            target or row.email,
            user=Ref(local_id=row.id),
            values=(("active", False),),
            old=(("active", True),),
            reason=reason,
        )
    )
    out.deactivated_local_ids.add(row.id)


def is_protected(row: LocalUser, rules: RuleSettings) -> bool:
    """Whether `row` is one of the break-glass accounts no directory may take away."""
    return bool(rules.protected_users) and email_key(row.email) in rules.protected_users


def member_values(email: str) -> tuple[tuple[str, object], ...]:
    """The `values` of an add-member operation for the user with address `email`."""
    return (("member", email),)


# The fields a user's create sets, sorted, as every operation's pairs are.
CREATE_FIELDS = ("active", "display_name", "email", "external_id", "family_name", "given_name", "managed_by")


def _create(user: CleanUser, directory: str) -> Operation:
    """Create `user`, named by its external id."""
    return Operation(
        Action.CREATE_USER,
        user.email,
        user=Ref(key=user.external_id),
        # A first cycle creates every user: their field names are one shared tuple.
        values=Fields(CREATE_FIELDS, (user.active, user.display_name, user.email, user.external_id,
                                      user.family_name, user.given_name, directory)),
    )


class UserCreates(Section):
    """The `CREATE_USER` of each of `users` (in order), made when reached: a clean record
    is a third of the operation and its values."""

    __slots__ = ("users", "directory")
    action = Action.CREATE_USER

    def __init__(self, users: Sequence[CleanUser], directory: str) -> None:
        self.users = tuple(users)
        self.directory = directory

    def __len__(self) -> int:
        return len(self.users)

    def __iter__(self) -> Iterator[Operation]:
        return (_create(user, self.directory) for user in self.users)

    def _at(self, index: int) -> Operation:
        return _create(self.users[index], self.directory)


def _hold(out: UserPlan, local: LocalUser | None) -> None:
    if local is None or local.external_id is None:
        return
    out.held_local_ids.add(local.id)
    _keep(out, local)


def _keep(out: UserPlan, local: LocalUser) -> None:
    """`local` stays bound exactly as it is."""
    assert local.external_id is not None
    out.final_member[local.external_id] = local
    if not local.active:
        out.final_inactive.add(local.external_id)


def _reject(user: ExternalUser, reason: str, detail: str) -> Rejection:
    target = user.email.strip() if isinstance(user.email, str) and user.email.strip() else user.external_id
    return Rejection(Kind.USER, target[:200], reason, detail, external_id=user.external_id)


def _reject_clean(user: CleanUser, reason: str, detail: str) -> Rejection:
    return Rejection(Kind.USER, user.email, reason, detail, external_id=user.external_id)
