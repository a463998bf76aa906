"""`explain`: the decision trace of one user or group, from what the store recorded.

Answers what an on-call admin asks about one object (Entra's "provision on demand" and
Okta's per-user provisioning errors are the anchors): which directory manages it and
since when, how it was matched, its current state and groups, the last decision a rule
made about it (with the reason), staged operations waiting on it, and its recent events.
For an object of a push (SCIM) directory also its SCIM binding (the id dirsync issued, the
IdP's `externalId`), the pushed requests that last changed it (method and path), and when
the directory's token expires.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from reconcile.push_label import addressed_user
from reconcile.rules import email_key, name_key
from service.history import EventFilter, EventView, event_page
from service.scim_tokens import token_status
from store import Store, get_directory
from store.models import SyncEvent, SyncRun, groups, memberships, users
from store.staged import open_staged_events

RECENT = 20
# How many of the pushed requests that changed an object `explain` shows.
REQUESTS = 5
PUSH_KIND = "scim"
PUSH_TRIGGER = "scim"

# How the first event binding an object to its directory says it was matched (§3, R6).
_MATCHED_BY = {
    "create-user": "created from the directory record (no local user had this email)",
    "link-user": "linked to the existing local user with this email",
    "create-group": "created from the directory group (no local group had this name)",
    "link-group": "linked to the existing local group with this name, or by an explicit link",
}


@dataclass(frozen=True, slots=True)
class PushedRequest:
    """One SCIM request that changed the object: when, its method and path, what it did."""

    at: datetime
    run_id: int | None
    request: str
    actions: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ScimView:
    """What a push directory says about the object. `scim_id` None: the IdP's DELETE ended
    the binding (the row stays managed). `external_id`: the IdP's own, None when it sent
    none (the binding is then the SCIM id)."""

    directory: str
    scim_id: str | None
    external_id: str | None
    token_expires_at: datetime | None
    token_warning: str | None
    requests: tuple[PushedRequest, ...] = ()  # newest first


@dataclass(frozen=True, slots=True)
class Explanation:
    kind: str  # "user" or "group"
    query: str
    found: bool
    state: dict[str, Any] = field(default_factory=dict)
    managed_by: str | None = None
    external_id: str | None = None
    managed_since: datetime | None = None
    matched_by: str | None = None
    groups: tuple[str, ...] = ()  # a user's groups, or a group's members (unless only counted)
    member_count: int = 0  # a group's members
    last_decision: EventView | None = None
    staged: tuple[EventView, ...] = ()
    recent: tuple[EventView, ...] = ()
    scim: ScimView | None = None

    @property
    def steps(self) -> list[str]:
        """The trace as sentences, in the order a person reads it."""
        if not self.found:
            out = [f"no {self.kind} {self.query!r} in the store"]
            if self.last_decision is not None:
                out.append(_decision(self.last_decision))
            return out
        who = self.state.get("email") or self.state.get("name")
        if self.managed_by is None:
            out = [f"{self.kind} {who!r} is local: no directory manages it (admin actions may change it)"]
        else:
            since = f" since {self.managed_since:%Y-%m-%d %H:%M:%S}" if self.managed_since else ""
            out = [f"managed by directory {self.managed_by!r} (its id {self.external_id!r}){since}: read-only here (R5)"]
        if self.matched_by:
            out.append(f"matched: {self.matched_by}")
        if self.scim is not None:
            out += _scim_steps(self.scim)
        if self.kind == "user":
            out.append("state: " + ("active" if self.state.get("active") else "inactive"))
            out.append("groups: " + (", ".join(self.groups) or "none"))
        else:
            out.append(f"members: {self.member_count}")
        if self.last_decision is not None:
            out.append(_decision(self.last_decision))
        for event in self.staged:
            out.append(f"staged in run {event.run_id}, awaiting approval: {event.action} {event.target}")
        return out


def explain(store: Store, query: str, *, directory: str | None = None, kind: str | None = None,
            list_members: bool = True) -> Explanation:
    """The trace of the user with email `query`, else of the group named `query`
    (`kind` forces one). `directory` narrows the events to that directory's runs. Without
    `list_members` a group's members are only counted (a page that shows the count need
    not read 100,000 emails)."""
    if kind in (None, "user") and ("@" in query or kind == "user"):
        return _explain_user(store, query, directory)
    return _explain_group(store, query, directory, list_members)


def _explain_user(store: Store, email: str, directory: str | None) -> Explanation:
    u = users.c
    with store.session() as session:
        conn = session.connection()
        row = conn.execute(select(u.id, u.email, u.given_name, u.family_name, u.display_name, u.active,
                                  u.managed_by, u.external_id, u.scim_id)
                           .where(u.email_key == email_key(email))).first()
        names: list[str] = []
        if row is not None:
            query = (select(groups.c.name).join(memberships, memberships.c.group_id == groups.c.id)
                     .where(memberships.c.user_id == row.id).order_by(groups.c.name))
            names = list(conn.execute(query).scalars())
    where = EventFilter(user=email, directory=directory)
    if row is None:
        recent, decision = _recent_and_decision(store, where)
        return Explanation("user", email, False, last_decision=decision, recent=recent)
    state = {"email": row.email, "given_name": row.given_name, "family_name": row.family_name,
             "display_name": row.display_name, "active": bool(row.active)}
    return _explained("user", email, state, row.managed_by, row.external_id, tuple(names), where, store,
                      row.scim_id, user_key=email_key(email))


def _explain_group(store: Store, name: str, directory: str | None, list_members: bool) -> Explanation:
    g = groups.c
    with store.session() as session:
        conn = session.connection()
        row = conn.execute(select(g.id, g.name, g.managed_by, g.external_id, g.reserved, g.scim_id)
                           .where(g.name_key == name_key(name))).first()
        members: list[str] = []
        count = 0
        if row is not None and list_members:
            query = (select(users.c.email).join(memberships, memberships.c.user_id == users.c.id)
                     .where(memberships.c.group_id == row.id).order_by(users.c.email))
            members = list(conn.execute(query).scalars())
            count = len(members)
        elif row is not None:
            count = conn.execute(select(func.count()).select_from(memberships)
                                 .where(memberships.c.group_id == row.id)).scalar_one()
    where = EventFilter(group=name, directory=directory)
    if row is None:
        recent, decision = _recent_and_decision(store, where)
        return Explanation("group", name, False, last_decision=decision, recent=recent)
    state = {"name": row.name, "reserved": bool(row.reserved)}
    return _explained("group", name, state, row.managed_by, row.external_id, tuple(members), where, store,
                      row.scim_id, group_key=name_key(name), member_count=count)


def _explained(kind: str, query: str, state: dict[str, Any], managed_by: str | None, external_id: str | None,
               related: tuple[str, ...], where: EventFilter, store: Store, scim_id: str | None, *,
               user_key: str | None = None, group_key: str | None = None, member_count: int = 0) -> Explanation:
    bound = _binding_event(store, where, kind, managed_by) if managed_by else None
    recent, decision = _recent_and_decision(store, where)
    return Explanation(
        kind, query, True, state, managed_by, external_id,
        managed_since=bound.at if bound else None,
        matched_by=_MATCHED_BY.get(bound.action) if bound else None,
        groups=related,
        member_count=member_count,
        last_decision=decision,
        staged=tuple(_open_staged(store, where, user_key, group_key, scim_id, managed_by, state.get("email"))),
        recent=recent,
        scim=_scim_view(store, managed_by, external_id, scim_id, where) if managed_by else None,
    )


def _scim_view(store: Store, directory: str, external_id: str | None, scim_id: str | None,
               where: EventFilter) -> ScimView | None:
    """The SCIM side of an object `directory` manages, when it is a push directory; its
    pushed requests are looked for among its newest `PAGE` events of that directory."""
    with store.session() as session:
        row = get_directory(session, directory)
        if row is None or row.kind != PUSH_KIND:
            return None
        if where.directory not in (None, directory):
            history: Sequence[EventView] = ()
        else:
            history = event_page(store, replace(where, directory=directory), limit=PAGE).events
        ids = {e.run_id for e in history if e.run_id is not None and e.directory == directory}
        pushed = set(session.execute(select(SyncRun.id).where(SyncRun.id.in_(ids), SyncRun.trigger == PUSH_TRIGGER))
                     .scalars()) if ids else set()
    token = token_status(store, directory)
    requests: list[PushedRequest] = []
    for event in history:  # newest first; a request's events share its run, detail and time
        if event.run_id not in pushed or event.outcome != "applied" or not event.detail:
            continue
        last = requests[-1] if requests else None
        if last is not None and (last.run_id, last.request, last.at) == (event.run_id, event.detail, event.at):
            requests[-1] = PushedRequest(last.at, last.run_id, last.request, (event.action, *last.actions))
        elif len(requests) < REQUESTS:
            requests.append(PushedRequest(event.at, event.run_id, event.detail, (event.action,)))
        else:
            break
    idp_id = None if external_id in (None, scim_id) else external_id
    return ScimView(directory, scim_id, idp_id, token.expires_at, token.warning, tuple(requests))


def _scim_steps(view: ScimView) -> list[str]:
    if view.scim_id is None:
        out = [f"SCIM: the IdP's DELETE ended the binding (GET is 404); still managed by {view.directory!r}"
               " so nobody changes it locally by mistake"]
    else:
        sent = f"externalId {view.external_id!r}" if view.external_id else "no externalId (the binding is the SCIM id)"
        out = [f"SCIM: id {view.scim_id!r}, {sent}"]
    if view.token_expires_at is not None:
        out.append(f"SCIM token of {view.directory!r} expires {view.token_expires_at:%Y-%m-%d %H:%M} UTC")
    if view.token_warning:
        out.append(view.token_warning)
    for request in view.requests:
        out.append(f"pushed {request.at:%Y-%m-%d %H:%M:%S} (run {request.run_id}): {request.request}:"
                   f" {', '.join(request.actions)}")
    return out


# The history is read in pages from the newest (a group of 100,000 members has at least as
# many events): most questions are answered by the first page or by one indexed lookup.
PAGE = 100


def _recent_and_decision(store: Store, where: EventFilter) -> tuple[tuple[EventView, ...], EventView | None]:
    """The newest events, and the newest one a rule decided: a rejection, a conflict or a
    failure, else the newest applied change."""
    page = event_page(store, where, limit=PAGE)
    recent = page.events[:RECENT]
    decision = _last_decision(page.events)
    while decision is None and page.older is not None:
        page = event_page(store, where, limit=PAGE, older_than=page.older)
        decision = _last_decision(page.events)
    return recent, decision


def _binding_event(store: Store, where: EventFilter, kind: str, directory: str) -> EventView | None:
    """The latest applied create or link that bound the object to `directory`."""
    if where.directory not in (None, directory):
        return None
    found = [event for action in _MATCHED_BY if action.endswith(f"-{kind}")
             for event in event_page(store, replace(where, directory=directory, action=action, outcome="applied"),
                                     limit=1).events]
    return max(found, key=lambda e: (e.at, e.id), default=None)


def _last_decision(history: Sequence[EventView]) -> EventView | None:
    for event in history:  # newest first
        if event.outcome in ("rejected", "conflict", "failed"):
            return event
        if event.outcome == "applied":
            return event
    return None


def _open_staged(store: Store, where: EventFilter, user_key: str | None, group_key: str | None,
                 scim_id: str | None, managed_by: str | None, email: str | None) -> list[EventView]:
    """Staged events that open plans still hold (a decided, superseded or withdrawn one
    waits for nothing), newest first. A user's are those of requests about them
    (`store.staged.open_staged_events`): a request to their SCIM id held while they had
    another email is theirs, one to another SCIM id held under their email is not, and
    it is shown under `email`, the one they have now, as the approval will find them."""
    with store.session() as session:
        held = open_staged_events(session, user_key=user_key, group_key=group_key,
                                  scim_id=scim_id if user_key is not None else None, bound_to=managed_by)
        if not held:
            return []
        run_ids = {e.run_id for e in held}
        runs: dict[int | None, SyncRun] = {run.id: run for run in session.scalars(
            select(SyncRun).where(SyncRun.id.in_(run_ids)))}
        views = [_event_view(e, runs[e.run_id]) for e in held]
    if email is not None and scim_id is not None:  # a held request to their id names the email they had then
        views = [replace(v, target=email) if v.kind == "user" and addressed_user(v.detail) == scim_id else v
                 for v in views]
    return sorted((v for v in views if where.directory in (None, v.directory)), key=lambda v: (v.at, v.id),
                  reverse=True)


def _event_view(event: SyncEvent, run: SyncRun) -> EventView:
    return EventView(event.id, event.run_id, run.directory, event.seq, event.at, event.action, event.kind,
                     event.target, event.outcome, event.reason, event.detail, event.old, event.new, event.user_key,
                     event.group_key, run.actor)


def _decision(event: EventView) -> str:
    where = f"run {event.run_id}" if event.run_id is not None else "an admin action"
    if event.outcome in ("rejected", "conflict", "failed"):
        detail = f" ({event.detail})" if event.detail else ""
        return f"last decision ({where}, {event.at:%Y-%m-%d %H:%M:%S}): {event.outcome} {event.action}: {event.reason}{detail}"
    return f"last change ({where}, {event.at:%Y-%m-%d %H:%M:%S}): {event.action} applied"
