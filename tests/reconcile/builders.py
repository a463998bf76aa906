"""Small builders for directory snapshots and local stores, so tests read as the rule."""

from __future__ import annotations

from reconcile.model import (
    ExternalGroup,
    ExternalUser,
    LocalGroup,
    LocalInvite,
    LocalState,
    LocalUser,
    Rejection,
    Snapshot,
)


def user(external_id: str, email: str | None = None, *, active: bool = True, name: str | None = None) -> ExternalUser:
    return ExternalUser(external_id, email if email is not None else f"{external_id}@example.com",
                        display_name=name, active=active)


def group(external_id: str, name: str, *members: str) -> ExternalGroup:
    return ExternalGroup(external_id, name, frozenset(members))


def directory(users: list[ExternalUser] | None = None, groups: list[ExternalGroup] | None = None,
              rejections: list[Rejection] | None = None) -> Snapshot:
    return Snapshot(tuple(users or ()), tuple(groups or ()), tuple(rejections or ()))


def local_user(id: int, email: str, *, active: bool = True, managed_by: str | None = None,
               external_id: str | None = None, name: str | None = None) -> LocalUser:
    return LocalUser(id, email, None, None, name, active, managed_by, external_id)


def local_group(id: int, name: str, *members: int, managed_by: str | None = None,
                external_id: str | None = None, reserved: bool = False) -> LocalGroup:
    return LocalGroup(id, name, managed_by, external_id, reserved, frozenset(members))


ADMIN_ID = 999


def store(users: list[LocalUser] | None = None, groups: list[LocalGroup] | None = None,
          invites: list[LocalInvite] | None = None, *, admin: bool = True) -> LocalState:
    """A local store; like every real one it has the reserved admin group (empty) unless
    `groups` brings its own or `admin=False`."""
    groups = list(groups or ())
    if admin and not any(g.reserved for g in groups):
        groups.append(local_group(ADMIN_ID, "Administrators", reserved=True))
    return LocalState(tuple(users or ()), tuple(groups), tuple(invites or ()))
