"""One cycle for one directory: lock -> read -> plan -> guard -> apply -> watermark -> report.

`run_cycle` never raises for a failed read or a tripped guard: it returns a `RunResult`
and leaves a `sync_runs` row saying what happened. Configuration errors (an unknown
directory) and an unusable store still raise, so callers can tell "the sync failed" from
"dirsync is misconfigured".
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from config import DirectorySettings, Settings
from connectors import Connector, build_connector
from connectors.errors import AuthError, ConnectorError
from reconcile import clock, guard
from reconcile.apply import CHUNK_SIZE, apply
from reconcile.apply.checks import ADMIN_EMPTY
from reconcile.cycle_lock import Lock, lease_lock
from reconcile.heap import long_lived
from reconcile.merge import reported_users
from reconcile.model import Changes, LocalState, Plan, RuleSettings, Snapshot
from reconcile.outcome import UserOutcome, user_outcome
from reconcile.plan import plan
from reconcile.plan_admin import LAST_ACTIVE_ADMINISTRATOR, meets_admins
from reconcile.plan_groups import find_admin_group
from reconcile.read_completion import one_user, regain_groups
from reconcile.run_result import DRY_RUN_HALT, RunResult, halt_message, partial_error
from store import (
    LockLost,
    Store,
    close_interrupted_runs,
    count_memberships,
    count_users,
    ensure_directory,
    finish_run,
    has_open_plan,
    load_for_read,
    open_store,
    record_failure,
    record_approved,
    record_run_started,
    record_success,
    skipped_message,
    stage_plan,
    start_run,
    supersede_open,
)
from store.read_scope import held_since_full
from store.staged import EMPTY_READ

log = logging.getLogger("dirsync.cycle")

# What R4 records when it holds a deactivation (the planner) or keeps the admin group's
# members (the planner, or the write-time check).
R4_HOLDS = (LAST_ACTIVE_ADMINISTRATOR, ADMIN_EMPTY)
# The trigger of an approval's run (`reconcile.staging`), which applies only part of its read.
APPROVAL_TRIGGER = "approval"
Progress = Callable[[str, int, int], None]


def run_cycle(
    settings: Settings,
    name: str,
    *,
    trigger: str = "cli",
    full: bool = False,
    dry_run: bool = False,
    allow_deactivations: bool = False,
    store: Store | None = None,
    connector: Connector | None = None,
    lock: Lock | None = None,
    progress: Progress | None = None,
    actor: str | None = None,
) -> RunResult:
    """Run one cycle of directory `name` and record it (with `actor`, the person who asked
    for it, when one did). See the module docstring.

    While `name` has an open staged plan the cycle reads in full whatever `full` says.
    `allow_deactivations` approves the plan this run computes even over a safety limit
    (recorded as an approved staged plan), except an empty read of a directory that has
    users, which only `reconcile.staging.approve` applies; a caller acting for a person
    passes `full=True` with it.
    """
    directory = settings.directory(name)
    if directory.kind == "scim":
        return RunResult(name, None, "refused", "full" if full else "incremental",
                         error=f"directory {name!r} is pushed by its IdP over SCIM; there is nothing to pull")
    own_store = store is None
    store = store or open_store(settings.store.url)
    try:
        return _Cycle(settings, directory, store, trigger, dry_run, allow_deactivations, progress, actor).run(
            full, connector, lock or lease_lock(store, settings.worker.lock_ttl_seconds)
        )
    finally:
        if own_store:
            store.dispose()


def sync_user(
    settings: Settings,
    name: str,
    key: str,
    *,
    store: Store | None = None,
    connector: Connector | None = None,
    lock: Lock | None = None,
    actor: str | None = None,
) -> RunResult:
    """Provision on demand: bring one user (by email or external id) and their groups in
    step now, through the same pipeline as a cycle (recorded with `actor`, when a person asked)."""
    directory = settings.directory(name)
    own_store = store is None
    store = store or open_store(settings.store.url)
    try:
        cycle = _Cycle(settings, directory, store, "on-demand", False, False, None, actor)
        return cycle.run(False, connector, lock or lease_lock(store, settings.worker.lock_ttl_seconds), user_key=key)
    finally:
        if own_store:
            store.dispose()


class _Cycle:
    def __init__(
        self,
        settings: Settings,
        directory: DirectorySettings,
        store: Store,
        trigger: str,
        dry_run: bool,
        allow_deactivations: bool,
        progress: Progress | None,
        actor: str | None = None,
    ) -> None:
        self.settings = settings
        self.actor = actor
        self.directory = directory
        self.name = directory.name
        self.store = store
        self.trigger = trigger
        self.dry_run = dry_run
        self.allow = allow_deactivations
        self.progress = progress or (lambda phase, done, total: None)
        self.rules: RuleSettings = settings.to_rules()
        self.started = time.monotonic()
        # The directory's generation when this cycle started: a disable or re-enable
        # since then stops its writes (DESIGN §2a).
        self.generation: int | None = None
        # Called before each write transaction: raises when the cycle lost its lock.
        self.checkpoint: Callable[[], None] | None = None
        self.user_outcome: UserOutcome | None = None
        self.open_run: int | None = None  # started, not finished yet

    def run(self, full: bool, connector: Connector | None, lock: Lock, user_key: str | None = None) -> RunResult:
        with self.store.session(write=True) as session:
            row = ensure_directory(session, self.name, self.directory.kind)
            enabled, watermark = row.enabled, row.watermark
            last_full = row.last_full_sync_at
            self.generation = row.generation
            # An open staged plan is decided only by a full read (S2), never an incremental one.
            full = full or has_open_plan(session, self.name)
        if not enabled:
            return self._result(None, "refused", "full" if full else "incremental",
                                error=f"directory {self.name!r} is disabled; run `dirsync enable {self.name}`")
        mode = self._mode(full, watermark, last_full) if user_key is None else "incremental"
        with lock(self.name) as acquired:
            self.checkpoint = getattr(acquired, "check", None)
            if not acquired:
                # A skipped attempt is no start: it must not push the next scheduled cycle back.
                run_id = None if self.dry_run else self._start(mode, started=False)
                return self._finish(run_id, "skipped", mode, error=skipped_message(getattr(acquired, "holder", None)))
            if not self.dry_run:
                with self.store.session(write=True) as session:
                    # Holding the lock, no live cycle owns a `running` row: a dead one left it.
                    closed = close_interrupted_runs(session, self.name)
                if closed:
                    log.warning("closed %d interrupted run(s) of directory %s", closed, self.name,
                                extra={"directory": self.name})
            try:
                return self._locked(mode, watermark, connector, user_key)
            except Exception as exc:
                # Whatever escaped (a bug, the store failing in bookkeeping): the run
                # says so instead of staying `running` until the next cycle closes it.
                if self.open_run is None:
                    raise
                log.exception("cycle crashed directory=%s", self.name)
                return self._fail(self.open_run, mode, f"internal error: {type(exc).__name__}: {exc}")

    def _still_locked(self) -> None:
        """Raise `LockLost` when this cycle no longer holds its directory's lock."""
        if self.checkpoint is not None:
            self.checkpoint()

    def _mode(self, full: bool, watermark: str | None, last_full: datetime | None) -> str:
        if full or watermark is None or last_full is None:
            return "full"
        due = last_full + timedelta(hours=self.directory.full_every_hours)
        return "full" if clock.now() >= due else "incremental"

    def _locked(self, mode: str, watermark: str | None, connector: Connector | None, user_key: str | None) -> RunResult:
        run_id = None if self.dry_run else self._start(mode)
        log.info("cycle start directory=%s mode=%s trigger=%s run=%s", self.name, mode, self.trigger, run_id,
                 extra={"directory": self.name, "mode": mode, "trigger": self.trigger, "run_id": run_id})
        own_connector = connector is None
        try:
            connector = connector or build_connector(self.settings, self.directory)
            source = self._read(connector, mode, watermark, user_key)
            with self.store.session() as session:
                local = self._local_state(session, source)
                reread = False
                if isinstance(source, Changes) and user_key is None:
                    regained = regain_groups(connector, source, local, self.name)
                    if regained is not source:
                        source, local = regained, self._local_state(session, regained)
                    reread = self._may_release_hold(session, source, local)
            if reread:
                # R4 held an administrator's deactivation or removal, which only the IdP's
                # record asked for, and a read of changes no longer carries that record:
                # these changes may release the hold, so the directory is read whole, as a
                # full cycle reads it (rare: a hold outstanding and the admin group changing).
                log.info("cycle directory=%s reads in full: an R4 hold may be released", self.name,
                         extra={"directory": self.name, "run_id": run_id})
                source = self._read(connector, "full", None, None)
                with self.store.session() as session:
                    local = self._local_state(session, source)
        except ConnectorError as exc:
            return self._fail(run_id, mode, str(exc), auth=isinstance(exc, AuthError))
        except Exception as exc:  # a bug must not leave a run "running" forever
            log.exception("cycle crashed directory=%s", self.name)
            return self._fail(run_id, mode, f"internal error: {type(exc).__name__}: {exc}")
        finally:
            if own_connector and connector is not None:
                connector.close()
        if isinstance(source, Snapshot) and mode == "incremental" and user_key is None:
            mode = "full"  # the connector had to resync (expired cursor or delta link)

        try:
            # A large full read leaves cyclic garbage (an Okta read: its retry states) worth
            # one full collection before it is frozen. Changes come from a few requests: the
            # collection would walk the whole heap (0.2 s of a 1 % change cycle at 100,000
            # users) to free little.
            large = isinstance(source, Snapshot) and len(source.users) + len(source.groups) > CHUNK_SIZE
            with long_lived(collect_first=large):  # the read and the store's state, walked by no collection while planning
                the_plan = plan(source, local, self.rules, directory=self.name, links=self.directory.links)
            if user_key is not None:
                self.user_outcome = user_outcome(user_key, source, the_plan)
            verdict, empty = self._judge(source, local, the_plan, allow=user_key is not None)
            if self.dry_run:
                return self._result(None, "dry-run", mode, counts=the_plan.counts(), plan=the_plan,
                                    error=f"{DRY_RUN_HALT}{verdict.reason}" if verdict.halted else None)
            assert run_id is not None
            if verdict.halted:
                self._still_locked()
                reason = verdict.reason or "a safety limit tripped"
                if not self.allow or empty:  # an empty read is applied only by `dirsync approve RUN_ID`
                    with self.store.session(write=True) as session:
                        stage_plan(session, run_id=run_id, directory=self.name, plan=the_plan, reason=reason,
                                   limit=EMPTY_READ if empty else None)
                    log.warning("cycle halted directory=%s reason=%s", self.name, reason)
                    return self._finish(run_id, "halted", mode, counts=the_plan.counts(), plan=the_plan,
                                        error=halt_message(self.name, run_id, reason, self.allow and empty))
                with self.store.session(write=True) as session:
                    record_approved(session, run_id=run_id, directory=self.name, plan=the_plan, reason=reason)
            elif mode == "full" and user_key is None:
                # A full read within the limits says what the directory wants now: it decides
                # instead of any plan staged before (superseded, and listed as such).
                with self.store.session(write=True) as session:
                    supersede_open(session, self.name, by_run=run_id)
        except LockLost as exc:
            return self._fail(run_id, mode, str(exc))
        except Exception as exc:  # a planning or staging bug ends the run failed, not running
            log.exception("planning failed directory=%s", self.name)
            return self._fail(run_id, mode, f"internal error while planning: {type(exc).__name__}: {exc}")
        # Past planning only the watermark of the read is needed: the read and the store's
        # state go before the apply, which needs the room for its writes and events.
        new_watermark = source.watermark
        del source, local
        try:
            outcome = apply(self.store, the_plan, run_id=run_id, directory=self.name,
                            progress=lambda done, total: self.progress("apply", done, total),
                            generation=self.generation, checkpoint=self.checkpoint)
            self._still_locked()  # the watermark and the run's end are writes too
        except LockLost as exc:
            return self._fail(run_id, mode, str(exc))
        except Exception as exc:
            log.exception("apply failed directory=%s", self.name)
            return self._fail(run_id, mode, f"apply failed: {type(exc).__name__}: {exc}")
        counts = {**the_plan.counts(), **{f"outcome:{k}": v for k, v in outcome.outcomes.items()}}
        if outcome.aborted is not None:
            # Disable (or a re-enable) won: nothing more is written, the watermark stays as
            # disable left it.
            log.warning("cycle aborted directory=%s reason=%s", self.name, outcome.aborted)
            return self._finish(run_id, "aborted", mode, counts=counts, plan=the_plan,
                                error=f"aborted: {outcome.aborted}")
        unapplied = outcome.failed + outcome.conflicts
        if unapplied:
            error = partial_error(outcome.failed, outcome.conflicts, run_id)
            # The old watermark stays, so the next read sees those records again; the
            # streak counts towards quarantine like a failure.
            if user_key is None:
                with self.store.session(write=True) as session:
                    record_failure(session, self.name, error=error, generation=self.generation, trigger=self.trigger)
            log.warning("cycle partial directory=%s %s", self.name, error)
            return self._finish(run_id, "partial", mode, counts=counts, plan=the_plan, error=error)
        if user_key is None:
            with self.store.session(write=True) as session:
                record_success(session, self.name, watermark=new_watermark, full=mode == "full",
                               generation=self.generation)
        return self._finish(run_id, "succeeded", mode, counts=counts, plan=the_plan)

    def _local_state(self, session: Session, source: Snapshot | Changes) -> LocalState:
        return load_for_read(session, self.name, source, links=self.directory.links,
                             reserved_names=self.rules.reserved_names)

    def _judge(self, source: Snapshot | Changes, local: LocalState, the_plan: Plan,
               allow: bool) -> tuple[guard.Verdict, bool]:
        """The safety guard's verdict on `the_plan`, and whether the read is empty (the
        guard's own test with nothing to do: only an empty read trips it). The store's
        bound users, active ones and managed memberships are counted only where a limit
        could trip: a count grows with the directory, a no-op cycle should not."""
        if not guard.may_halt(the_plan, source):
            return guard.Verdict(False), False
        with self.store.session() as session:
            bound, active = count_users(session, self.name)
            managed_memberships = count_memberships(session, self.name)
        reported = reported_users(source, local, self.name, bound)
        limits = self.settings.safety.to_limits()
        verdict = guard.check(the_plan, active_users=active, reported_users=reported, limits=limits,
                              managed_memberships=managed_memberships, allow_deactivations=allow)
        empty = verdict.halted and guard.check(
            Plan(self.name), active_users=active, reported_users=reported, limits=limits).halted
        return verdict, empty

    def _may_release_hold(self, session: Session, changes: Changes, local: LocalState) -> bool:
        """Whether `changes` meet the admin group while an R4 hold may be outstanding: the
        plan of these changes would judge R4 with a held member as the store keeps it
        (active, in the group), not as its directory says."""
        admin = find_admin_group(local.groups, self.rules)
        return (admin is not None and meets_admins(changes, admin, local.users, self.name, self.rules)
                and held_since_full(session, self.name, R4_HOLDS, approval=APPROVAL_TRIGGER))

    def _read(self, connector: Connector, mode: str, watermark: str | None, user_key: str | None) -> Snapshot | Changes:
        if user_key is not None:
            read_user = getattr(connector, "read_user", None)
            if read_user is not None:
                result: Changes = read_user(user_key)
                return result
            snapshot = connector.read(None)
            assert isinstance(snapshot, Snapshot)  # read(None) is a full read (the Connector contract)
            return one_user(snapshot, user_key)
        return connector.read(None if mode == "full" else watermark, progress=self.progress)

    def _start(self, mode: str, *, started: bool = True) -> int:
        with self.store.session(write=True) as session:
            if started:
                record_run_started(session, self.name)
            run_id = start_run(session, directory=self.name, trigger=self.trigger, mode=mode,
                               dry_run=self.dry_run, allow_deactivations=self.allow, actor=self.actor)
        self.open_run = run_id
        return run_id

    def _fail(self, run_id: int | None, mode: str, error: str, auth: bool = False) -> RunResult:
        if not self.dry_run:
            with self.store.session(write=True) as session:
                record_failure(session, self.name, error=error, auth=auth, trigger=self.trigger)
        log.error("cycle failed directory=%s error=%s", self.name, error,
                  extra={"directory": self.name, "run_id": run_id, "status": "failed"})
        return self._finish(run_id, "failed", mode, error=error, auth=auth)

    def _finish(self, run_id: int | None, status: str, mode: str, *, counts: dict[str, int] | None = None,
                error: str | None = None, plan: Plan | None = None, auth: bool = False) -> RunResult:
        if run_id is not None:
            with self.store.session(write=True) as session:
                finish_run(session, run_id, status, counts or {}, error, mode=mode)
            self.open_run = None
        result = self._result(run_id, status, mode, counts=counts, error=error, plan=plan, auth=auth)
        log.info("cycle end directory=%s status=%s mode=%s run=%s seconds=%.2f",
                 self.name, status, mode, run_id, result.duration_seconds,
                 extra={"directory": self.name, "status": status, "mode": mode, "run_id": run_id,
                        "trigger": self.trigger, "seconds": round(result.duration_seconds, 3)})
        return result

    def _result(self, run_id: int | None, status: str, mode: str, *, counts: dict[str, int] | None = None,
                error: str | None = None, plan: Plan | None = None, auth: bool = False) -> RunResult:
        return RunResult(self.name, run_id, status, mode, counts or {}, error, auth,
                         time.monotonic() - self.started, plan, self.user_outcome)


__all__ = ["Lock", "Progress", "RunResult", "UserOutcome", "lease_lock", "run_cycle", "sync_user"]
