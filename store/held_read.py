"""How an approval reads a push directory's held plan (`store.held` holds, withdraws and
carries over): each held operation against the rows as they are now (`held_operations`),
the user row the request that held it addressed (`addressed_row`: by the SCIM id of a
request to `/Users/{id}`, by the email of a `POST /Users`, which its own held link may
bind: `_Links`).

Functions work in the caller's session and write nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from reconcile.model import Action, Operation, Ref
from reconcile.push import StoredUser
from reconcile.push_label import addressed_user
from store.models import Outcome, SyncEvent, groups
from store.push import user_by_email, user_by_scim_id
from store.staged import withdrawals

# The reason of a held update applied without the fields a later request changed since.
OVERTAKEN_IN_PART = "overtaken-in-part"


@dataclass(frozen=True, slots=True)
class Held:
    """One held operation as an approval finds it: the event that holds it, the
    operation against the rows as they are now, or None with why it no longer holds, and
    the user row its request addressed as it is now (None when there is none)."""

    event: SyncEvent
    operation: Operation | None
    why_not: str | None = None
    user: StoredUser | None = None


def held_operations(session: Session, run_id: int, directory: str, *, upto_seq: int) -> list[Held]:
    """The operations plan `run_id` holds (events up to `upto_seq`), in the order they were
    held, each against the rows as they are now, with the user row its request addressed
    (`addressed_row`); withdrawn ones and ones whose user is gone or no longer bound to
    `directory` come with why they no longer hold. A held `POST /Users` that links a
    user binds it (`_Links`): its operations hold, all of them, while the user is bound
    as the request found it, or as its link binds it."""
    events = list(session.scalars(select(SyncEvent).where(SyncEvent.run_id == run_id, SyncEvent.seq <= upto_seq)
                                  .order_by(SyncEvent.seq)))
    taken_back_by = {id(staged): withdrawal for withdrawal, staged in withdrawals(events)}
    out: list[Held] = []
    links = _Links(directory)
    rows = _AddressedRows(session, directory)
    for event in events:
        if event.outcome != Outcome.STAGED.value:
            continue
        user = rows.of(event)
        taken_back = taken_back_by.get(id(event))
        if taken_back is not None:
            out.append(Held(event, None, taken_back.detail, user))
            continue
        op, why = _operation(session, directory, event, user, links)
        out.append(Held(event, op, why, user))
    return out


def addressed_row(session: Session, directory: str, event: SyncEvent) -> StoredUser | None:
    """The user row the request that held `event` is about, as it is now. A request to
    `/Users/{id}` addressed that SCIM resource: the user `directory` binds under that id,
    whatever its email is now (never whoever has since taken the email the user had). A
    `POST /Users` addressed an email: the user with that email (for a change of email,
    the one it changes from)."""
    scim_id, email = _addressee(event)
    if scim_id is not None:
        return user_by_scim_id(session, directory, scim_id)
    return user_by_email(session, email) if email else None


class _AddressedRows:
    """`addressed_row` for the events of one plan, each request's user read once."""

    def __init__(self, session: Session, directory: str) -> None:
        self.session, self.directory = session, directory
        self._found: dict[tuple[str | None, str | None], StoredUser | None] = {}

    def of(self, event: SyncEvent) -> StoredUser | None:
        addressee = _addressee(event)
        if addressee not in self._found:
            self._found[addressee] = addressed_row(self.session, self.directory, event)
        return self._found[addressee]


def _addressee(event: SyncEvent) -> tuple[str | None, str | None]:
    """Whom `event`'s request addressed: (its SCIM id, None), or for a POST (None, the email)."""
    scim_id = addressed_user(event.detail)
    if scim_id is not None:
        return scim_id, None
    key = (event.old or {}).get("email") or event.user_key
    return None, str(key) if key else None


class _Links:
    """What the held `POST /Users` requests judged so far do to the users they link, in
    the order they were held. Such a request names a user by email, and its link is what
    binds the user to the directory: the request holds, whole, while the user is bound as
    it was when the request was held (a local user, say), or already as the link binds it
    (this directory, the same SCIM id); it is dropped, whole, once the user is bound
    otherwise (by another directory, or under another SCIM id: a later request, or an
    earlier held one, the IdP's retry, linked it)."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self._bound: dict[int, tuple[str | None, str | None]] = {}  # row -> (managed_by, scim_id) once linked
        self._why_not: dict[str | None, str | None] = {}  # user key -> its latest held link's verdict

    def link(self, event: SyncEvent, user: StoredUser) -> str | None:
        """Judge the link `event` holds (the first operation of its request): why it no
        longer holds, or None when it binds `user`."""
        old, new = event.old or {}, event.new or {}
        found_as = (old.get("managed_by"), old.get("scim_id"))
        links_as = (self.directory, new.get("scim_id"))
        now = self._bound.get(user.id, (user.managed_by, user.scim_id))
        why = None if now in (found_as, links_as) else self._why_bound(now, user.id in self._bound)
        if why is None:
            self._bound[user.id] = links_as
        self._why_not[event.user_key] = why
        return why

    def rest(self, event: SyncEvent, user: StoredUser) -> str | None:
        """Judge another operation of a held POST: it goes with its request's link (held
        just before it); without one, its user must be bound to the directory."""
        if event.user_key in self._why_not:
            return self._why_not[event.user_key]
        if user.managed_by != self.directory or user.scim_id is None:
            return f"the user is no longer bound to {self.directory!r}"
        return None

    def _why_bound(self, now: tuple[str | None, str | None], by_a_held_request: bool) -> str:
        owner, scim_id = now
        if owner not in (None, self.directory):
            return f"the user has since been bound to directory {owner!r}"
        if scim_id is not None and by_a_held_request:
            return f"an earlier held request links the user to {self.directory!r} under another SCIM id ({scim_id})"
        if scim_id is not None:
            return f"the user has since been bound to {self.directory!r} under another SCIM id ({scim_id})"
        return "the user's binding has changed since the request was held"


def _operation(session: Session, directory: str, event: SyncEvent, user: StoredUser | None,
               links: _Links) -> tuple[Operation | None, str | None]:
    """The operation `event` holds, against the rows as they are now, on `user` (the row
    its request addressed, see `addressed_row`), who must still be bound to `directory`,
    or be bound by the held POST it came with (`links`); what the operation changes is
    checked where it is written. Held requests are /Users requests: user operations and
    the removals of a DELETE (or of a POST that re-binds)."""
    action = Action(event.action)
    if event.kind != "user" and action is not Action.REMOVE_MEMBER:
        return None, f"{action.value} is not an operation a held request carries"
    scim_id = addressed_user(event.detail)
    if user is None:
        return None, (f"no user is bound to {directory!r} under SCIM id {scim_id} any more" if scim_id is not None
                      else "the user no longer exists")
    if scim_id is None:  # a POST /Users: found by email, bound by its own link
        why = links.link(event, user) if action is Action.LINK_USER else links.rest(event, user)
        if why is not None:
            return None, why
    new = tuple(sorted((event.new or {}).items()))
    old = tuple(sorted((event.old or {}).items()))
    if action is Action.REMOVE_MEMBER:
        group = session.execute(select(groups.c.id).where(groups.c.name_key == event.group_key)).scalar()
        if group is None:
            return None, "the group no longer exists"
        return Operation(action, event.target, group=Ref(local_id=int(group)), user=Ref(local_id=user.id),
                         values=new, old=_member_now(old, user), reason=event.reason), None
    target, reason = user.email, event.reason  # not the email the user had when it was held
    if action is Action.UPDATE_USER:
        new, old, newer = _not_overtaken(new, old, user)
        if not new:
            return None, f"a later request changed the user's {', '.join(newer)} since it was held"
        target = str(dict(new).get("email", user.email))  # an email change names the new one
        reason = OVERTAKEN_IN_PART if newer else reason
    return Operation(action, target, user=Ref(local_id=user.id), values=new, old=old,
                     expect=(("external_id", user.external_id), ("managed_by", user.managed_by)),
                     reason=reason), None


def _not_overtaken(new: tuple[tuple[str, Any], ...], old: tuple[tuple[str, Any], ...], user: StoredUser
                   ) -> tuple[tuple[tuple[str, Any], ...], tuple[tuple[str, Any], ...], list[str]]:
    """A held update less the fields a later request changed since (the user's field holds
    neither the value the update was planned from nor its own): the IdP's later word on
    them stands. The update's new and old values of the rest, and the fields left out."""
    now = {"email": user.email, "given_name": user.given_name, "family_name": user.family_name,
           "display_name": user.display_name}
    wanted = dict(new)
    newer = sorted(name for name, was in old if name in now and now[name] not in (was, wanted.get(name)))
    return (tuple(p for p in new if p[0] not in newer), tuple(p for p in old if p[0] not in newer), newer)


def event_operation(event: SyncEvent, user: StoredUser | None = None) -> Operation:
    """An event's operation as it reads (for a listing of what was dropped), naming
    `user`, the row its request addressed (`Held.user`), by the email they have now
    rather than the one they had when it was held (nor, for an email change it did not
    make, the one it would have given them: someone else may have that one)."""
    action = Action(event.action)
    old = tuple(sorted((event.old or {}).items()))
    target = event.target
    if user is not None and action is Action.REMOVE_MEMBER:
        old = _member_now(old, user)
    elif user is not None and event.kind == "user":
        target = user.email
    return Operation(action, target, values=tuple(sorted((event.new or {}).items())), old=old)


def _member_now(old: tuple[tuple[str, Any], ...], user: StoredUser) -> tuple[tuple[str, Any], ...]:
    """A held removal's `old` naming its member by the email they have now."""
    return tuple((name, user.email if name == "member" else value) for name, value in old)


__all__ = ["OVERTAKEN_IN_PART", "Held", "addressed_row", "event_operation", "held_operations"]
