"""The local state a cycle plans a read against: what the read can touch, loaded by
`store.scope.load_scope`, or the whole store when that is the cheaper read.

A directory's full read used to load every row of every directory. With many directories
in one store each cycle then cost in proportion to the store, not to its directory; the
scope keeps it to the directory's own rows and the rows its records' keys meet.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from reconcile.model import Changes, LocalState, Snapshot
from store.models import RunMode, RunStatus, SyncEvent, SyncRun, users
from store.scope import load_scope
from store.state import load_local_state

# A full read at least this large, of a directory holding at least half of the store's
# users, loads the whole store: a few scans cost less than looking its records up by key.
WHOLE_STORE_READ = 2000


def load_for_read(
    session: Session,
    directory: str,
    source: Snapshot | Changes,
    *,
    links: Mapping[str, str],
    reserved_names: Collection[str],
) -> LocalState:
    """What planning `source` of `directory` needs from the store (`links`: the
    directory's configured group links; `reserved_names`: the admin group's name and
    alias, always loaded whole for R3 and R4)."""
    held = {r.external_id for r in source.rejections if r.external_id}
    if isinstance(source, Snapshot):
        return _for_snapshot(session, directory, source, held, links, reserved_names)
    touched = {g.external_id for g in source.groups} | {d.group_external_id for d in source.memberships}
    members = {m for g in source.groups for m in g.member_ids}
    members |= {m for d in source.memberships for m in d.added | d.removed}
    own_names = {(g.external_id, g.name) for g in source.groups if isinstance(g.name, str)}
    own_names |= {(ext, links[ext]) for ext in touched if ext in links}
    return load_scope(
        session,
        directory,
        user_ids={u.external_id for u in source.users} | source.removed_user_ids | members | held,
        emails={u.email for u in source.users if isinstance(u.email, str)},
        group_ids=touched | source.removed_group_ids | held,
        group_names={name for _, name in own_names} | set(reserved_names),
        complete_group_ids=source.members_complete,
        deactivating=source.removed_user_ids | {u.external_id for u in source.users if not u.active} | held,
        own_names=own_names,
    )


def held_since_full(session: Session, directory: str, reasons: Collection[str], *, approval: str) -> bool:
    """Whether a run of `directory` since its last full cycle (that one included) recorded
    an event for one of `reasons`. A full cycle judges every record again, so what an
    older run held that it did not hold anew is no longer held. Runs of trigger `approval`
    apply only part of their read: they do not count as full cycles."""
    r, e = SyncRun, SyncEvent
    last_full = session.scalar(
        select(r.id)
        .where(r.directory == directory, r.mode == RunMode.FULL.value, r.status == RunStatus.SUCCEEDED.value,
               r.trigger != approval)
        .order_by(r.id.desc())
        .limit(1)
    )
    # Led by the reason's index: R4 events are few, the events since a full cycle are many.
    query = (
        select(e.id)
        .where(e.reason.in_(list(reasons)), e.run_id >= (last_full or 0),
               e.run_id.in_(select(r.id).where(r.directory == directory)))
        .limit(1)
    )
    return session.scalar(query) is not None


def _for_snapshot(
    session: Session,
    directory: str,
    source: Snapshot,
    held: set[str],
    links: Mapping[str, str],
    reserved_names: Collection[str],
) -> LocalState:
    read = len(source.users)
    if read >= WHOLE_STORE_READ:
        stored = session.connection().execute(select(func.count()).select_from(users)).scalar_one()
        if stored <= 2 * read:
            # The rows share the records' strings; an empty store has no row to share them.
            return load_local_state(session, sharing=source.users if stored else ())
    return load_scope(
        session,
        directory,
        user_ids={u.external_id for u in source.users} | held,
        emails={u.email for u in source.users if isinstance(u.email, str)},
        group_ids=(),
        group_names={g.name for g in source.groups if isinstance(g.name, str)}
        | set(links.values()) | set(reserved_names),
        whole_directory=True,
    )
