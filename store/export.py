"""A canonical, sorted dump of users, groups and invites: equal stores export equal dicts.

Shape (keys in this order):
    {"users":   [{"email", "display_name", "given_name", "family_name", "active",
                  "managed_by", "external_id"}],            sorted by email
     "groups":  [{"name", "managed_by", "external_id",
                  "members": [email, ...]}],                sorted by name; members sorted
     "invites": [{"email", "status"}]}                      sorted by email
`managed_by` and `external_id` are None for local objects. Sorting is by the exact text
(code point order, as Python's `sorted` does), ties by row id, so the order never depends
on the backend's collation.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from store.models import groups, invites, memberships, users


def export_state(session: Session) -> dict[str, list[dict[str, Any]]]:
    """The store's users, groups (with member emails) and invites in the shape above."""
    conn = session.connection()
    u = users.c
    rows = list(
        conn.execute(
            select(
                u.id, u.email, u.display_name, u.given_name, u.family_name, u.active, u.managed_by, u.external_id
            )
        )
    )
    rows.sort(key=lambda r: (r.email, r.id))
    email_of = {r.id: r.email for r in rows}
    exported_users = [
        {
            "email": r.email,
            "display_name": r.display_name,
            "given_name": r.given_name,
            "family_name": r.family_name,
            "active": bool(r.active),
            "managed_by": r.managed_by,
            "external_id": r.external_id,
        }
        for r in rows
    ]

    members: defaultdict[int, list[str]] = defaultdict(list)
    for group_id, user_id in conn.execute(select(memberships.c.group_id, memberships.c.user_id)):
        members[group_id].append(email_of[user_id])
    g = groups.c
    group_rows = list(conn.execute(select(g.id, g.name, g.managed_by, g.external_id)))
    group_rows.sort(key=lambda r: (r.name, r.id))
    exported_groups = [
        {
            "name": r.name,
            "managed_by": r.managed_by,
            "external_id": r.external_id,
            "members": sorted(members.get(r.id, [])),
        }
        for r in group_rows
    ]

    i = invites.c
    invite_rows = list(conn.execute(select(i.id, i.email, i.status)))
    invite_rows.sort(key=lambda r: (r.email, r.id))
    exported_invites = [{"email": r.email, "status": r.status} for r in invite_rows]
    return {"users": exported_users, "groups": exported_groups, "invites": exported_invites}
