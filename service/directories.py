"""Turning a directory's sync on and off (R8), for every face."""

from __future__ import annotations

from dataclasses import dataclass

from config import Settings
from reconcile.apply import apply
from reconcile.model import Plan
from reconcile.plan import plan_disable, revoke_invites
from service.audit import Audit, record
from store import Store, ensure_directory, finish_run, load_local_state, set_enabled
from store.directories import get_directory, reset_failures


@dataclass(frozen=True, slots=True)
class Enabled:
    directory: str
    invites_revoked: int


@dataclass(frozen=True, slots=True)
class Conversion:
    """What disabling converts to local (or converted), and what did not convert."""

    directory: str
    users: int
    groups: int
    failed: int = 0


def enable(settings: Settings, store: Store, name: str, *, audit: Audit | None = None) -> Enabled:
    """Turn sync on for `name`: a new generation starts and open invites are revoked (R8);
    the next cycle links by email and name. Recorded for `audit` (`service.audit`)."""
    directory = settings.directory(name)
    with store.session(write=True) as session:
        ensure_directory(session, name, directory.kind)
        set_enabled(session, name, True)
        local = load_local_state(session)
    revoked = revoke_invites(local)
    run_id = record(store, audit, name, "enable-sync",
                    f"sync turned on; {len(revoked)} open invites revoked; the next cycle links by email and name")
    apply(store, Plan(name, tuple(revoked)), run_id=run_id, directory=name)
    return Enabled(name, len(revoked))


def disable_preview(settings: Settings, store: Store, name: str) -> Conversion:
    """What `disable` would convert now, changing nothing."""
    settings.directory(name)
    with store.session() as session:
        the_plan = plan_disable(load_local_state(session), name)
    return _counted(name, the_plan)


def disable(settings: Settings, store: Store, name: str, *, audit: Audit | None = None) -> Conversion:
    """Turn sync off for `name`: off first (a new generation, so a running cycle stops
    writing), the watermark cleared (turning it on again reads everything), then every
    user and group it manages converted to local, losing nothing (R8). Recorded for
    `audit` (`service.audit`), the conversions as that run's events."""
    directory = settings.directory(name)
    with store.session(write=True) as session:
        ensure_directory(session, name, directory.kind)
        set_enabled(session, name, False).watermark = None
    with store.session() as session:
        the_plan = plan_disable(load_local_state(session), name)
    done = _counted(name, the_plan)
    run_id = record(store, audit, name, "disable-sync",
                    f"sync turned off; {done.users} users and {done.groups} groups converted to local")
    result = apply(store, the_plan, run_id=run_id, directory=name)
    failed = result.failed + result.conflicts
    if run_id is not None and failed:
        with store.session(write=True) as session:
            finish_run(session, run_id, "partial", {"disable-sync": 1, "failed": failed},
                       f"{failed} conversions failed; disable again to retry them")
    return Conversion(name, done.users, done.groups, failed=failed)


def _counted(name: str, the_plan: Plan) -> Conversion:
    users = sum(1 for op in the_plan.operations if op.user is not None)
    return Conversion(name, users, len(the_plan.operations) - users)


def end_quarantine(settings: Settings, store: Store, name: str, *, audit: Audit | None = None) -> int:
    """Clear `name`'s failure streak and quarantine (`resume`); the failed cycles it
    cleared (0 when it was not quarantined). History stays in the runs. Recorded for
    `audit` (`service.audit`)."""
    settings.directory(name)
    with store.session(write=True) as session:
        row = get_directory(session, name)
        failures = int(row.consecutive_failures or 0) if row is not None else 0
        cleared = 0
        if row is not None and (failures or row.auth_failure):
            reset_failures(session, name)
            cleared = max(failures, 1)
    record(store, audit, name, "resume",
           f"quarantine ended; {cleared} failed cycles cleared; the next cycle runs when due" if cleared
           else "resume asked; the directory was not quarantined")
    return cleared
