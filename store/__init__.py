"""The local store: SQLAlchemy models on SQLite (embedded default) or PostgreSQL.

Public API (everything else in this package is internal):

Opening
    open_store(url, *, check_schema=True) -> Store
        Fresh SQLite is migrated on the spot; any other database behind the newest
        revision raises StoreError("database at <url> is not migrated: run `dirsync db upgrade`").
    Store.session(*, write=False) -> ContextManager[Session]   commit on success, else roll back
    Store.begin_write() -> ContextManager[Connection]          a write-locked transaction
    Store.upgrade(revision="head"), Store.revision(), Store.head(), Store.dispose()
    StoreError, safe_url(url) (the URL with its password masked)

Reading
    load_local_state(session) -> reconcile.model.LocalState    (fast: Core selects)
    load_scope(session, directory, *, user_ids, emails, group_ids, group_names) -> LocalState
                                   only what an incremental plan can touch (see store.scope)
    load_for_read(session, directory, source, *, links, reserved_names) -> LocalState
                                   what planning a full or incremental read needs (store.read_scope)
    count_users(session, directory) -> (bound, active)
    count_memberships(session, directory) -> memberships of its groups
    export_state(session) -> dict                              (canonical, sorted; see store.export)

Directories (in the caller's session; the caller commits)
    get_directory, require_directory, list_directories, ensure_directory(session, name, kind, settings),
    set_enabled(session, name, enabled), record_run_started(session, name),
    record_success(session, name, *, watermark, full), record_failure(session, name, *, error, auth),
    reset_failures(session, name)

Runs and events (in the caller's session; the caller commits)
    start_run(session, *, directory, trigger, mode, dry_run, allow_deactivations, actor) -> run id
    record_admin_action(session, *, directory, action, actor, trigger, detail) -> run id
        (a finished run of mode `admin`: one action a person took, with its event)
    finish_run(session, run_id, status, counts, error)
    record_rejections(session, run_id, rejections), record_staged(session, run_id, plan)
    list_runs(session, *, directory=None, limit=20) (newest first), get_run, list_events(session, run_id)
    close_interrupted_runs(session, directory) (runs a dead process left `running`; under the lock)

Staged plans (a halted run's plan until someone decides; in the caller's session)
    stage_plan(session, *, run_id, directory, plan, reason) (supersedes the older open plan),
    record_approved(session, *, run_id, directory, plan, reason, by) (`--allow-deactivations`),
    decide(session, run_id, StagedStatus.APPROVED|REJECTED, *, by, decided_run_id) -> bool,
    supersede_open(session, directory, *, by_run), get_staged, open_plans(session, directory=None),
    has_open_plan(session, directory), staged_operations(row) -> tuple[Operation, ...],
    plan_views(session, directory=None) (what a person reads: from the runs' staged events),
    staged_deactivations(session, run_ids),
    open_staged_events(session, *, user_key|group_key, scim_id=None, bound_to=None)
    store.held: a push directory's held SCIM requests in its open plan (lock_held, hold,
    withdraw, carry_over; see its notes); store.held_read: how an approval reads them
    (held_operations, addressed_row)

Leases ("one cycle per directory at a time" without Redis; their own short transactions)
    acquire(store, name, holder, ttl_seconds, *, replacing=None) -> bool,
    release(store, name, holder) -> bool, extend(store, name, holder, ttl_seconds) -> bool,
    current_holder(store, name) -> LockHolder | None, new_holder(),
    is_live(session, name) -> bool (held and not expired, in the caller's transaction),
    held_lease(store, name, ttl_seconds) -> ContextManager[LockHandle]
        kept alive by a heartbeat every quarter TTL; a holder whose process is gone from
        this host is taken over at once
    LockHandle (truthy when held; .holder; .check() raises LockLost), LockHolder
    (host, pid, since; .describe()), LockLost, skipped_message(holder) (see store.locking)

Values: Outcome, RunStatus, RunMode, InviteStatus, StagedStatus. Models: User, Group,
Membership, Invite, Directory, SyncRun, SyncEvent, Lease, StagedPlan. Writes to users,
groups, memberships and invites go through `reconcile.apply.apply` only.
"""

from store.directories import (
    ensure_directory,
    get_directory,
    list_directories,
    record_failure,
    record_run_started,
    record_success,
    require_directory,
    reset_failures,
    set_enabled,
)
from store.engine import Store, StoreError, open_store, safe_url
from store.events import record_rejections, record_staged
from store.export import export_state
from store.lease import acquire, current_holder, extend, held_lease, is_live, release
from store.locking import LockHandle, LockHolder, LockLost, new_holder, skipped_message
from store.models import (
    Directory,
    Group,
    Invite,
    InviteStatus,
    Lease,
    Membership,
    Outcome,
    RunMode,
    RunStatus,
    StagedPlan,
    StagedStatus,
    SyncEvent,
    SyncRun,
    User,
)
from store.runs import (
    INTERRUPTED,
    close_interrupted_runs,
    finish_run,
    get_run,
    list_events,
    list_runs,
    record_admin_action,
    start_run,
)
from store.staged import (
    decide,
    get_staged,
    has_open_plan,
    open_plans,
    record_approved,
    stage_plan,
    staged_operations,
    supersede_open,
)
from store.read_scope import load_for_read
from store.scope import count_memberships, count_users, load_scope
from store.state import load_local_state

__all__ = [
    "count_memberships",
    "count_users",
    "current_holder",
    "load_for_read",
    "load_scope",
    "INTERRUPTED",
    "close_interrupted_runs",
    "Directory",
    "Group",
    "Invite",
    "InviteStatus",
    "Lease",
    "LockHandle",
    "LockHolder",
    "LockLost",
    "Membership",
    "Outcome",
    "RunMode",
    "RunStatus",
    "StagedPlan",
    "StagedStatus",
    "Store",
    "StoreError",
    "SyncEvent",
    "SyncRun",
    "User",
    "acquire",
    "ensure_directory",
    "decide",
    "export_state",
    "extend",
    "finish_run",
    "get_directory",
    "get_run",
    "get_staged",
    "has_open_plan",
    "held_lease",
    "is_live",
    "list_directories",
    "list_events",
    "list_runs",
    "load_local_state",
    "new_holder",
    "open_plans",
    "open_store",
    "record_admin_action",
    "record_approved",
    "record_failure",
    "record_rejections",
    "record_run_started",
    "record_staged",
    "record_success",
    "release",
    "require_directory",
    "reset_failures",
    "safe_url",
    "set_enabled",
    "skipped_message",
    "stage_plan",
    "staged_operations",
    "start_run",
    "supersede_open",
]
