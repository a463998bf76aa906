"""Completing a read before a cycle plans it: the groups of the users an incremental read
(re)activates (`regain_groups`), and, for provision on demand from a connector that cannot
read one user, a full read narrowed to that user (`one_user`)."""

from __future__ import annotations

import logging
from dataclasses import replace

from connectors import Connector
from reconcile.model import Changes, LocalState, Snapshot
from reconcile.rules import email_key

log = logging.getLogger("dirsync.cycle")

# Users an incremental cycle activates whose groups it re-reads (a request or so each);
# past this, the periodic full cycle restores the rest.
MAX_REGAINED_USERS = 200


def regain_groups(connector: Connector, changes: Changes, local: LocalState, name: str) -> Changes:
    """Changes that also carry the complete groups of every user they (re)activate.

    A deactivated user lost their groups here (R7), and a user seen disabled or out of
    scope was never added to the groups that already listed them; the directory's
    groups did not change, so an incremental read that only says "active now" would not
    bring those memberships. A connector that can read one user with their groups
    (`read_user`) is asked, once per such user, for the groups not already held
    complete (a large group several returning users share is read once); without it
    the next full cycle does. Users whose groups the changes already carry whole
    (`user_groups_complete`: created since the last read, or their groups read by the
    connector) are not read again.
    """
    read_user = getattr(connector, "read_user", None)
    active = {u.external_id for u in local.users if u.managed_by == name and u.active}
    returning = [u.external_id for u in changes.users if u.active and u.external_id not in active
                 and u.external_id not in changes.user_groups_complete]
    if read_user is None or not returning:
        return changes
    groups = {g.external_id: g for g in changes.groups}
    complete = set(changes.members_complete)
    for external_id in returning[:MAX_REGAINED_USERS]:
        found: Changes = read_user(external_id, known_groups=frozenset(complete))
        for group in found.groups:
            if group.external_id in found.members_complete and group.external_id not in changes.removed_group_ids:
                groups[group.external_id] = group
                complete.add(group.external_id)
    if len(returning) > MAX_REGAINED_USERS:
        log.warning("%d users became active; the groups of %d are read now, the rest at the next full cycle",
                    len(returning), MAX_REGAINED_USERS, extra={"directory": name})
    return replace(changes, groups=tuple(groups.values()), members_complete=frozenset(complete))


def one_user(snapshot: Snapshot, key: str) -> Changes:
    """Narrow a full read to one user and the groups that list them."""
    wanted = email_key(key)
    user = next(
        (u for u in snapshot.users
         if u.external_id == key or (isinstance(u.email, str) and email_key(u.email) == wanted)),
        None,
    )
    if user is None:
        return Changes(watermark=None)
    groups = tuple(g for g in snapshot.groups if user.external_id in g.member_ids)
    return Changes(
        users=(user,),
        groups=groups,
        members_complete=frozenset(g.external_id for g in groups),
        rejections=tuple(r for r in snapshot.rejections if r.external_id == user.external_id),
    )
