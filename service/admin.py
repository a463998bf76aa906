"""Local admin actions (add a user, a group, a member; deactivate; invite) under the same
rules as a sync, for every face. Each returns the operations it applied or raises
`Refused` (a rule refused it, when planned or when written)."""

from __future__ import annotations

from collections.abc import Callable

from config import Settings
from reconcile import admin as actions
from reconcile.admin import Refused
from reconcile.apply import apply
from reconcile.model import LocalState, Operation, Plan
from store import Store, list_directories, load_local_state

# Refusals met only when writing (the store changed after the action read it).
_WRITE_TIME = {
    "managed": "a directory manages it now; change it in the directory (R5)",
    "admin-group-would-be-empty": "the admin group must keep at least one active member (R4)",
}


class NotApplied(Exception):
    """The action's change could not be written (a concurrent change): try again."""


def add_user(settings: Settings, store: Store, email: str, name: str | None = None) -> tuple[Operation, ...]:
    rules = settings.rules.to_rules()
    return run_local_action(store, lambda local: actions.add_user(local, email, name, rules))


def add_group(settings: Settings, store: Store, name: str) -> tuple[Operation, ...]:
    rules = settings.rules.to_rules()
    return run_local_action(store, lambda local: actions.add_group(local, name, rules))


def add_member(settings: Settings, store: Store, group: str, email: str) -> tuple[Operation, ...]:
    rules = settings.rules.to_rules()
    return run_local_action(store, lambda local: actions.add_member(local, group, email, rules))


def remove_member(settings: Settings, store: Store, group: str, email: str) -> tuple[Operation, ...]:
    rules = settings.rules.to_rules()
    return run_local_action(store, lambda local: actions.remove_member(local, group, email, rules))


def deactivate_user(settings: Settings, store: Store, email: str) -> tuple[Operation, ...]:
    rules = settings.rules.to_rules()
    return run_local_action(store, lambda local: actions.deactivate_user(local, email, rules))


def activate_user(settings: Settings, store: Store, email: str) -> tuple[Operation, ...]:
    return run_local_action(store, lambda local: actions.activate_user(local, email))


def invite(settings: Settings, store: Store, email: str) -> tuple[Operation, ...]:
    """An invite, refused while any configured directory syncs (R8)."""
    syncing = syncing_directories(settings, store)
    return run_local_action(store, lambda local: actions.invite(local, email, syncing))


def syncing_directories(settings: Settings, store: Store) -> list[str]:
    """Configured directories that are not turned off: while any syncs, invites are closed."""
    with store.session() as session:
        disabled = {d.name for d in list_directories(session) if not d.enabled}
    return [name for name in sorted(settings.directories) if name not in disabled]


def run_local_action(store: Store, build: Callable[[LocalState], Plan]) -> tuple[Operation, ...]:
    """Plan a local action on the store as it is now (`build` raises `Refused` for a rule)
    and apply it through the guarded write path; the operations applied."""
    with store.session() as session:
        local = load_local_state(session)
    the_plan = build(local)
    result = apply(store, the_plan, run_id=None, directory=None)
    refused = [f for f in result.failures if f.reason in _WRITE_TIME]
    if refused:
        raise Refused(refused[0].reason, f"{refused[0].target}: {_WRITE_TIME[refused[0].reason]}")
    if result.failed or result.conflicts:
        raise NotApplied("the change could not be applied (a concurrent change?); try again")
    return tuple(the_plan.operations)
