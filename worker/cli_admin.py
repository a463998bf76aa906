"""`dirsync admin ...`: local actions on users, groups and invites, under the same rules.

Users and groups a directory manages are read-only here (R5); invites are closed while a
directory syncs (R8); the admin group keeps an active member (R4). A refusal exits 4.
"""

from __future__ import annotations

from collections.abc import Callable

import click

from reconcile import admin as actions
from reconcile.model import LocalState, Plan
from worker.cli_base import EXIT_FAILED, EXIT_REFUSED, Context, Exit, pass_ctx
from worker.render import describe


def _run(ctx: Context, build: Callable[[LocalState], Plan]) -> None:
    from reconcile.apply import apply
    from store import load_local_state

    with ctx.store.session() as session:
        local = load_local_state(session)
    the_plan = build(local)
    result = apply(ctx.store, the_plan, run_id=None, directory=None)
    refused = [f for f in result.failures if f.reason in _REFUSALS]
    if refused:
        raise Exit(EXIT_REFUSED, f"{refused[0].target}: {_REFUSALS[refused[0].reason]}")
    if result.failed or result.conflicts:
        raise Exit(EXIT_FAILED, "the change could not be applied (a concurrent change?); try again")
    for op in the_plan.operations:
        click.echo(describe(op))


# Write-time refusals (the store changed after the command read it): same rules, same exit.
_REFUSALS = {
    "managed": "a directory manages it now; change it in the directory (R5)",
    "admin-group-would-be-empty": "the admin group must keep at least one active member (R4)",
}


def syncing_directories(ctx: Context) -> list[str]:
    """Configured directories that are not turned off: while any syncs, invites are closed."""
    from store import list_directories

    with ctx.store.session() as session:
        disabled = {d.name for d in list_directories(session) if not d.enabled}
    return [name for name in sorted(ctx.settings.directories) if name not in disabled]


@click.group()
def admin() -> None:
    """Local changes to users, groups and invites (refused on directory-managed objects)."""


@admin.command("add-user")
@click.argument("email")
@click.option("--name", default=None, help="Display name.")
@pass_ctx
def add_user(ctx: Context, email: str, name: str | None) -> None:
    """Create a local user."""
    rules = ctx.settings.rules.to_rules()
    _run(ctx, lambda local: actions.add_user(local, email, name, rules))


@admin.command("add-group")
@click.argument("name")
@pass_ctx
def add_group(ctx: Context, name: str) -> None:
    """Create a local group (names shorter than 25 characters)."""
    rules = ctx.settings.rules.to_rules()
    _run(ctx, lambda local: actions.add_group(local, name, rules))


@admin.command("add-member")
@click.argument("group")
@click.argument("email")
@pass_ctx
def add_member(ctx: Context, group: str, email: str) -> None:
    """Add a user to a local group."""
    rules = ctx.settings.rules.to_rules()
    _run(ctx, lambda local: actions.add_member(local, group, email, rules))


@admin.command("remove-member")
@click.argument("group")
@click.argument("email")
@pass_ctx
def remove_member(ctx: Context, group: str, email: str) -> None:
    """Remove a user from a local group."""
    rules = ctx.settings.rules.to_rules()
    _run(ctx, lambda local: actions.remove_member(local, group, email, rules))


@admin.command("deactivate-user")
@click.argument("email")
@pass_ctx
def deactivate_user(ctx: Context, email: str) -> None:
    """Deactivate a local user."""
    rules = ctx.settings.rules.to_rules()
    _run(ctx, lambda local: actions.deactivate_user(local, email, rules))


@admin.command("activate-user")
@click.argument("email")
@pass_ctx
def activate_user(ctx: Context, email: str) -> None:
    """Reactivate a local user."""
    _run(ctx, lambda local: actions.activate_user(local, email))


@admin.command("invite")
@click.argument("email")
@pass_ctx
def invite(ctx: Context, email: str) -> None:
    """Invite someone by email (refused while any directory syncs)."""
    syncing = syncing_directories(ctx)
    _run(ctx, lambda local: actions.invite(local, email, syncing))


COMMANDS = [admin]
