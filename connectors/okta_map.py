"""Okta JSON -> `reconcile.model` records, one record at a time, never failing a page.

Users (rule R9): ACTIVE, PASSWORD_EXPIRED, LOCKED_OUT, RECOVERY, PROVISIONED -> active;
SUSPENDED, DEPROVISIONED -> inactive; STAGED -> left out (None). Any other status, or a
field of the wrong type, gives a `Rejection` carrying the user's id, so the plan leaves
its local twin untouched.

Email is `profile.email` and nothing else. `login` is not used as a fallback: it is a
username that merely often looks like an email, and R1 makes email the key that matches
and links local users, so guessing it could bind the wrong person. A user without an email
is passed on with `email=None` and the rules reject it (`missing-email`). A field of the
wrong type is `malformed-record`, as in every connector.
Display name: `profile.displayName`, else "firstName lastName", else None.
"""

from __future__ import annotations

from typing import Any

from reconcile.id_sets import Members
from reconcile.model import ExternalGroup, ExternalUser, Kind, Rejection
from reconcile.rules import OKTA_ACTIVE, OKTA_INACTIVE, OKTA_NOT_CREATED, okta_status_active

# R9 is defined once, in the rules: the connector only applies it.
ACTIVE = OKTA_ACTIVE
INACTIVE = OKTA_INACTIVE
NOT_CREATED = OKTA_NOT_CREATED
IN_SCOPE_STATUSES = ACTIVE | frozenset({"SUSPENDED"})  # group members we report


def _text(profile: dict[str, Any], key: str) -> str | None:
    value = profile.get(key)
    if value is None or isinstance(value, str):
        return value
    raise TypeError(key)


def user_id_of(raw: Any) -> str | None:
    return raw.get("id") if isinstance(raw, dict) and isinstance(raw.get("id"), str) and raw.get("id") else None


def map_user(raw: Any) -> ExternalUser | Rejection | None:
    """One Okta user as a record, a rejection, or None when it is not to be created (STAGED)."""
    user_id = user_id_of(raw)
    if user_id is None:
        return Rejection(Kind.USER, "(unknown)", "malformed-record", "Okta sent a user without an id")
    status = raw.get("status")
    profile = raw.get("profile")
    target = user_id
    if isinstance(profile, dict) and isinstance(profile.get("login"), str):
        target = profile["login"]
    try:
        active = okta_status_active(status) if isinstance(status, str) else okta_status_active("")
    except ValueError:
        shown = status if isinstance(status, str) else type(status).__name__
        return Rejection(Kind.USER, target, "unknown-status", f"Okta status {shown[:40]!r} is not one dirsync knows",
                         external_id=user_id)
    if active is None:
        return None  # STAGED: not created (R9)
    if not isinstance(profile, dict):
        return Rejection(Kind.USER, target, "malformed-record", "the user has no profile", external_id=user_id)
    try:
        email = _text(profile, "email")
        first = _text(profile, "firstName")
        last = _text(profile, "lastName")
        display = _text(profile, "displayName")
    except TypeError as field:
        return Rejection(Kind.USER, target, "malformed-record", f"profile.{field} is not text", external_id=user_id)
    if not (display and display.strip()):
        joined = " ".join(part.strip() for part in (first, last) if part and part.strip())
        display = joined or None
    return ExternalUser(
        external_id=user_id,
        email=email,
        given_name=first,
        family_name=last,
        display_name=display,
        active=active,
        suspended=status == "SUSPENDED",
    )


def is_member_in_scope(raw: Any) -> bool:
    """Whether a group member (a full user object) counts as a member: not STAGED/DEPROVISIONED."""
    return isinstance(raw, dict) and raw.get("status") not in NOT_CREATED | {"DEPROVISIONED"}


def group_name(raw: Any) -> str | None:
    profile = raw.get("profile") if isinstance(raw, dict) else None
    name = profile.get("name") if isinstance(profile, dict) else None
    return name if isinstance(name, str) else None


def map_group(raw: Any, member_ids: Members) -> ExternalGroup | Rejection:
    group_id = raw.get("id") if isinstance(raw, dict) else None
    if not isinstance(group_id, str) or not group_id:
        return Rejection(Kind.GROUP, "(unknown)", "malformed-record", "Okta sent a group without an id")
    profile = raw.get("profile")
    name = profile.get("name") if isinstance(profile, dict) else None
    if name is not None and not isinstance(name, str):
        return Rejection(Kind.GROUP, group_id, "malformed-record", "profile.name is not text", external_id=group_id)
    # A missing name is the rules' to refuse (R2, `empty-name`), as for every connector.
    return ExternalGroup(external_id=group_id, name=name, member_ids=member_ids)


def is_built_in(raw: Any) -> bool:
    return isinstance(raw, dict) and raw.get("type") == "BUILT_IN"
