"""How an approval settles a push directory's held requests (`reconcile.staging`): by
request and by user row, never in part.

Every held request deactivates its user; the rest of the request goes where that
deactivation goes (`with_their_deactivation`), and when R4 holds a user's deactivation,
every other held change of that user waits with it (`whole_users`). A held operation is
about the user row its request addressed (`row_of`: `store.held_read.addressed_row`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from reconcile.apply import REQUEST_REFUSED
from reconcile.model import Action, Operation, Rejection
from reconcile.push_label import addressed_user
from store.events import kind_of
from store.held_read import Held


def row_of(h: Held) -> int | None:
    """The user row a held operation is about: the one its request addressed, found as
    `store.held_read.addressed_row` finds it (by SCIM id, or a POST's by email), also for a
    deactivation taken back, which has no operation."""
    return h.user.id if h.user is not None else None


def requests_of(held: Sequence[Held]) -> list[list[Held]]:
    """The held operations by request: runs of consecutive events with the same detail
    about the same user row (`store.held.hold` writes a request's operations together; a
    withdrawal or another request between two of them starts another run). Every `POST
    /Users` has the same detail: two of them back to back are one request only when they
    name the same email, even when a user is gone (else one vanished user's request would
    take the next user's down with it)."""
    requests: list[list[Held]] = []
    for h in held:
        last = requests[-1][-1] if requests else None
        if last is not None and last.event.detail == h.event.detail and h.event.seq == last.event.seq + 1:
            row, before = row_of(h), row_of(last)
            # A label with an id names its user; a POST's events name its email.
            same_user = addressed_user(h.event.detail) is not None or h.event.user_key == last.event.user_key
            if same_user and (row is None or before is None or row == before):
                requests[-1].append(h)
                continue
        requests.append([h])
    return requests


def with_their_deactivation(held: Sequence[Held], active: Mapping[int, bool]
                             ) -> tuple[list[Held], list[tuple[Operation, str]]]:
    """The held operations to judge, and those dropped (each with why). Every held request
    deactivates its user, and the rest of it goes where that deactivation goes: with a
    deactivation that no longer holds (the IdP took it back, the user is gone), the request
    is dropped. A request held after its user's deactivation was (a DELETE after a PATCH
    `active: false`, or its retry: only its new operations are held) follows the latest
    one held before it: judged with it when it still holds, dropped when it was taken back;
    with none in this plan, applied when the user is inactive now (an earlier approval
    deactivated them), dropped when the user is still active (taken back, or R4 held it).
    `active`: whether each user row is active now."""
    deactivation = Action.DEACTIVATE_USER.value
    holds: dict[int | None, bool] = {}  # row -> whether its latest held deactivation so far still holds
    live: list[Held] = []
    orphaned: list[tuple[Operation, str]] = []
    for request in requests_of(held):
        row = next((r for h in request if (r := row_of(h)) is not None), None)
        own = [h for h in request if h.event.action == deactivation]
        if own:
            goes = holds[row] = all(h.operation is not None for h in own)
        elif row in holds:
            goes = holds[row]
        else:
            goes = row is not None and active.get(row) is False
        for h in request:
            if h.operation is None:
                continue
            if goes:
                live.append(h)
            else:
                orphaned.append((h.operation, "not applied: the user's deactivation it came with was not applied"))
    return live, orphaned


def whole_users(live: Sequence[Held], kept: Sequence[Operation],
                 admin_group: str) -> tuple[tuple[Operation, ...], tuple[Rejection, ...]]:
    """`kept` (what R4 let through of `live`, in order) less every held change of a user row
    R4 held a change of, and a rejection for each of those. Every held request deactivates
    its user: when R4 holds that deactivation, the rest of the user's held requests (a
    DELETE's removals and unbinding, sent with it or after it) waits too, as the endpoint
    writes a request whole or not at all; the administrator stays bound and in their
    groups, and the IdP's retry is judged again as a request."""
    passed: list[bool] = []
    position = 0
    for h in live:  # `kept` is a subsequence of the live operations
        through = position < len(kept) and kept[position] == h.operation
        position += through
        passed.append(through)
    cut = {row_of(h) for h, through in zip(live, passed) if not through} - {None}
    whole = tuple(op for h, through in zip(live, passed)
                  if through and row_of(h) not in cut and (op := h.operation) is not None)
    refused = tuple(
        Rejection(kind_of(op.action), op.target, REQUEST_REFUSED,
                  f"held with the user's held deactivation ({h.event.detail}): {admin_group!r} must keep an"
                  " active member (R4)")
        for h, through in zip(live, passed) if through and row_of(h) in cut and (op := h.operation) is not None
    )
    return whole, refused


__all__ = ["requests_of", "row_of", "whole_users", "with_their_deactivation"]
