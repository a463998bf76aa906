"""`dirsync admin ...`: local actions on users, groups and invites, under the same rules.

Users and groups a directory manages are read-only here (R5); invites are closed while a
directory syncs (R8); the admin group keeps an active member (R4). A refusal exits 4.
"""

from __future__ import annotations

from collections.abc import Callable

import click

from reconcile.model import Operation
from service import admin as admin_actions
from cli.base import EXIT_FAILED, Context, Exit, pass_ctx
from cli.render import describe


def _show(ctx: Context, action: Callable[..., tuple[Operation, ...]], *args: object) -> None:
    from service.admin import NotApplied

    try:
        done = action(ctx.settings, ctx.store, *args)
    except NotApplied as exc:
        raise Exit(EXIT_FAILED, str(exc)) from None
    for op in done:
        click.echo(describe(op))


@click.group()
def admin() -> None:
    """Local changes to users, groups and invites (refused on directory-managed objects)."""


@admin.command("add-user")
@click.argument("email")
@click.option("--name", default=None, help="Display name.")
@pass_ctx
def add_user(ctx: Context, email: str, name: str | None) -> None:
    """Create a local user."""
    _show(ctx, admin_actions.add_user, email, name)


@admin.command("add-group")
@click.argument("name")
@pass_ctx
def add_group(ctx: Context, name: str) -> None:
    """Create a local group (names shorter than 25 characters)."""
    _show(ctx, admin_actions.add_group, name)


@admin.command("add-member")
@click.argument("group")
@click.argument("email")
@pass_ctx
def add_member(ctx: Context, group: str, email: str) -> None:
    """Add a user to a local group."""
    _show(ctx, admin_actions.add_member, group, email)


@admin.command("remove-member")
@click.argument("group")
@click.argument("email")
@pass_ctx
def remove_member(ctx: Context, group: str, email: str) -> None:
    """Remove a user from a local group."""
    _show(ctx, admin_actions.remove_member, group, email)


@admin.command("deactivate-user")
@click.argument("email")
@pass_ctx
def deactivate_user(ctx: Context, email: str) -> None:
    """Deactivate a local user."""
    _show(ctx, admin_actions.deactivate_user, email)


@admin.command("activate-user")
@click.argument("email")
@pass_ctx
def activate_user(ctx: Context, email: str) -> None:
    """Reactivate a local user."""
    _show(ctx, admin_actions.activate_user, email)


@admin.command("invite")
@click.argument("email")
@pass_ctx
def invite(ctx: Context, email: str) -> None:
    """Invite someone by email (refused while any directory syncs)."""
    _show(ctx, admin_actions.invite, email)


COMMANDS = [admin]
