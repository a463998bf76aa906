"""Reading only the part of the store an incremental plan can touch.

An incremental read names the users and groups that changed. Planning it needs every
local row those records could bind to, collide with or change — and nothing else — so a
cycle with a handful of changes reads a handful of rows, whatever the store's size.

What the scope holds (see `load_scope`):
- users bound to the directory with a named external id, and every user whose email key
  a changed record carries (matching and collisions, R1);
- groups whose name key a changed record carries (linking and collisions, R6), the
  reserved admin group (R3, R4) and bound groups the changes list with complete members —
  each with all its members, who are loaded too;
- other bound groups the changes touch (a rename, membership deltas, a record that
  carries its own unchanged name), listing only the scoped users among their members:
  the plan changes no one else in them;
- every group that holds a user the changes may deactivate (`deactivating`), with only
  those members listed: enough to remove them from this directory's groups (R7), and
  from every group when the row is re-bound to a new person (a re-used email);
- open invites (R8).

For a full read (`whole_directory`), the scope also holds every user and group bound to
the directory — the groups with all their members, since a full read decides them whole —
and the groups outside it that hold a bound user the read no longer names (a row re-bound
to a new person leaves every group, R7). Nothing else of other directories is read.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Iterator
from typing import Any

from sqlalchemy import Connection, func, select
from sqlalchemy.orm import Session

from reconcile.id_sets import LocalIds
from reconcile.model import LocalGroup, LocalInvite, LocalState, LocalUser
from reconcile.rules import email_key, name_key
from store.models import InviteStatus, groups, invites, memberships, users

# Bound parameters per IN list: well under SQLite's and PostgreSQL's limits.
_CHUNK = 2000


def load_scope(
    session: Session,
    directory: str,
    *,
    user_ids: Collection[str],
    emails: Collection[str],
    group_ids: Collection[str],
    group_names: Collection[str],
    complete_group_ids: Collection[str] = (),
    deactivating: Collection[str] = (),
    own_names: Collection[tuple[str, str]] = (),
    whole_directory: bool = False,
) -> LocalState:
    """The rows an incremental plan of `directory` may read or change (module docstring).

    `user_ids`, `group_ids`, `complete_group_ids` and `deactivating` are external ids
    (`deactivating` ⊆ `user_ids`: users that left or were disabled); `emails` and
    `group_names` are compared by their keys (`reconcile.rules.email_key`, `name_key`).
    A bound group the changes name without its complete member list lists only the
    scoped users among its members: the plan changes only those. `own_names` pairs a
    changed group's external id with each name its own record claims (its name, its
    configured link): a bound group found only by a name its own record claims is no
    other record's link or collision, and stays partial too. `whole_directory` (a full
    read: `user_ids` are every id it reported) adds all of the directory's rows, and counts
    each bound user `user_ids` does not name as leaving.
    """
    conn = session.connection()
    u, g, m = users.c, groups.c, memberships.c
    columns = (u.id, u.email, u.given_name, u.family_name, u.display_name, u.active, u.managed_by, u.external_id)
    group_columns = (g.id, g.name, g.managed_by, g.external_id, g.reserved)

    user_rows: dict[int, Any] = {}
    if whole_directory:
        _collect(user_rows, conn, select(*columns).where(u.managed_by == directory))
    else:
        for chunk in _chunks(user_ids):
            _collect(user_rows, conn, select(*columns).where(u.managed_by == directory, u.external_id.in_(chunk)))
    for chunk in _chunks({email_key(e) for e in emails}):
        _collect(user_rows, conn, select(*columns).where(u.email_key.in_(chunk)))

    bound_rows: dict[int, Any] = {}
    if whole_directory:
        _collect(bound_rows, conn, select(*group_columns).where(g.managed_by == directory))
    else:
        for chunk in _chunks(group_ids):
            _collect(bound_rows, conn,
                     select(*group_columns).where(g.managed_by == directory, g.external_id.in_(chunk)))
    group_rows: dict[int, Any] = {}
    for chunk in _chunks({name_key(n) for n in group_names}):
        _collect(group_rows, conn, select(*group_columns).where(g.name_key.in_(chunk)))
    _collect(group_rows, conn, select(*group_columns).where(g.reserved.is_(True)))
    complete = set(complete_group_ids)
    claimed_by: defaultdict[str, set[str]] = defaultdict(set)  # name key -> external ids claiming it
    for external_id, name in own_names:
        claimed_by[name_key(name)].add(external_id)

    def needs_all_members(gid: int, row: Any) -> bool:
        # Found by a name another record claims (a link, a collision), or reserved (R4).
        return gid in group_rows and (bool(row[4]) or claimed_by.get(name_key(row[1])) != {row[3]})

    # Bound groups whose complete members the changes do not bring: only scoped members matter.
    partial_ids = set() if whole_directory else {
        gid for gid, row in bound_rows.items() if row[3] not in complete and not needs_all_members(gid, row)
    }
    for gid, row in bound_rows.items():
        group_rows.setdefault(gid, row)

    members: defaultdict[int, set[int]] = defaultdict(set)
    for chunk in _chunks(group_rows.keys() - partial_ids):
        for group_id, user_id in conn.execute(select(m.group_id, m.user_id).where(m.group_id.in_(chunk))):
            members[group_id].add(user_id)
    member_ids = {uid for ids in members.values() for uid in ids}
    for chunk in _chunks(member_ids - user_rows.keys()):
        _collect(user_rows, conn, select(*columns).where(u.id.in_(chunk)))

    # Managed groups holding a user the changes name, listing only such users: the partial
    # groups above, and any other group the changes may remove a deactivated user from (R7).
    maybe_leaving, named_ids = set(deactivating), set(user_ids)
    bound_users = [uid for uid, row in user_rows.items() if row[6] == directory]
    named = [uid for uid in bound_users if user_rows[uid][7] in named_ids]
    leaving = {uid for uid in named if user_rows[uid][7] in maybe_leaving}
    if whole_directory:
        leaving |= {uid for uid in bound_users if user_rows[uid][7] not in named_ids}
    partial: defaultdict[int, set[int]] = defaultdict(set)
    # Without partial groups only the leaving users' other groups are wanted.
    for chunk in _chunks(named if partial_ids else leaving):
        query = (
            select(m.group_id, m.user_id, g.managed_by)
            .join(groups, groups.c.id == m.group_id)
            .where(m.user_id.in_(chunk))
        )
        for group_id, user_id, owner in conn.execute(query):
            # A leaving user's row may be re-bound to a new person (a re-used email), who
            # then leaves every group, not only this directory's: those are loaded too.
            if (owner == directory and group_id in partial_ids) or (group_id not in group_rows and user_id in leaving):
                partial[group_id].add(user_id)
    for chunk in _chunks(partial.keys() - group_rows.keys()):
        _collect(group_rows, conn, select(*group_columns).where(g.id.in_(chunk)))

    local_groups = tuple(
        LocalGroup(gid, name, managed_by, external_id, reserved,
                   LocalIds(partial.get(gid, ()) if gid in partial_ids or gid in partial else members.get(gid, ())))
        for gid, (_, name, managed_by, external_id, reserved) in sorted(group_rows.items())
    )
    local_users = tuple(LocalUser(*row) for _, row in sorted(user_rows.items()))
    i = invites.c
    open_invites = tuple(
        LocalInvite(*row)
        for row in conn.execute(
            select(i.id, i.email, i.status).where(i.status == InviteStatus.OPEN.value).order_by(i.id)
        )
    )
    return LocalState(users=local_users, groups=local_groups, invites=open_invites)


def count_users(session: Session, directory: str) -> tuple[int, int]:
    """(bound, active bound) users of `directory`: what the S2 guard measures against."""
    u = users.c
    query = select(func.count(), func.count().filter(u.active.is_(True))).where(u.managed_by == directory)
    bound, active = session.connection().execute(query).one()
    return int(bound), int(active)


def count_memberships(session: Session, directory: str) -> int:
    """Memberships of the groups `directory` manages: what the S2 removal ratio measures."""
    m, g = memberships.c, groups.c
    query = select(func.count()).select_from(memberships.join(groups, g.id == m.group_id)).where(g.managed_by == directory)
    return int(session.connection().execute(query).scalar_one())


def _collect(into: dict[int, Any], conn: Connection, query: Any) -> None:
    for row in conn.execute(query):
        into.setdefault(row[0], tuple(row))


def _chunks(values: Iterable[Any]) -> Iterator[list[Any]]:
    items = sorted(values, key=str)
    for start in range(0, len(items), _CHUNK):
        yield items[start:start + _CHUNK]
