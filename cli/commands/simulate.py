"""`dirsync simulate okta|entra`: a local, stateful Okta or Microsoft Graph API over HTTPS,
and `dirsync simulate admin ...`: change a running one as its admin would.

For trying dirsync without a tenant: it prints the URL, credentials and CA bundle to put
in a `[directories.NAME]` table, and serves until interrupted (Ctrl-C or SIGTERM).
`--state-dir DIR` keeps its CA, credentials, port and directory across restarts.
See docs/simulators.md.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import click

from simulators.admin_client import ADMIN_TOKEN_ENV
from cli.base import EXIT_FAILED, EXIT_NOT_FOUND, EXIT_USAGE, Exit



def _options(command: Callable[..., None]) -> Callable[..., None]:
    for option in reversed((
        click.option("--users", default=200, show_default=True, type=click.IntRange(min=0), help="Users to generate."),
        click.option("--groups", default=20, show_default=True, type=click.IntRange(min=0), help="Groups to generate."),
        click.option("--seed", default=1, show_default=True, help="Random seed: the same seed, the same org."),
        click.option("--port", default=0, show_default=True, type=click.IntRange(0, 65535),
                     help="Port (0: the saved one with --state-dir, else any free port)."),
        click.option("--state-dir", type=click.Path(file_okay=False, path_type=Path),
                     help="Keep the CA, credentials, port and directory here across restarts "
                          "(without it they are temporary and removed on stop)."),
    )):
        command = option(command)
    return command


@click.group()
def simulate() -> None:
    """Serve a local Okta or Microsoft Graph API to sync from, and change it while it runs."""


def _serve(kind: Literal["okta", "entra"], users: int, groups: int, seed: int, port: int, state_dir: Path | None) -> None:
    from simulators.serve import ServeError, serve

    try:
        serve(kind, users=users, groups=groups, seed=seed, port=port, state_dir=state_dir)
    except ServeError as error:
        raise Exit(EXIT_FAILED, str(error)) from None


@simulate.command()
@_options
def okta(users: int, groups: int, seed: int, port: int, state_dir: Path | None) -> None:
    """An Okta org (Management API, System Log, OAuth token endpoint)."""
    _serve("okta", users, groups, seed, port, state_dir)


@simulate.command()
@_options
def entra(users: int, groups: int, seed: int, port: int, state_dir: Path | None) -> None:
    """A Microsoft Entra tenant (Graph v1.0 with delta queries, identity platform tokens)."""
    _serve("entra", users, groups, seed, port, state_dir)


# --- admin -------------------------------------------------------------------------------


@simulate.group()
@click.option("--state-dir", type=click.Path(file_okay=False, path_type=Path),
              help="The --state-dir the simulator was started with (gives URL, token and CA).")
@click.option("--url", help="The simulator's URL (without --state-dir).")
@click.option("--ca-bundle", type=click.Path(dir_okay=False), help="The CA bundle it printed (without --state-dir).")
@click.option("--token", envvar=ADMIN_TOKEN_ENV, help=f"Its admin token (default: ${ADMIN_TOKEN_ENV}).")
@click.pass_context
def admin(ctx: click.Context, state_dir: Path | None, url: str | None, ca_bundle: str | None,
          token: str | None) -> None:
    """Change a running simulator: users, groups, app assignments.

    USER is a user's id, login (Okta) or UPN (Entra), or email; GROUP is a group's id or
    name. Connectors see each change as the real API shows it (Okta: lastUpdated and System
    Log events; Graph: delta links).
    """
    from simulators.admin_client import AdminClient, AdminRequestError

    try:
        if state_dir is not None:
            client = AdminClient.from_state_dir(state_dir)
        elif url and ca_bundle and token:
            client = AdminClient(url, token, ca_bundle)
        else:
            raise Exit(EXIT_USAGE, f"give --state-dir DIR, or --url, --ca-bundle and --token (or ${ADMIN_TOKEN_ENV})")
    except AdminRequestError as error:
        raise Exit(EXIT_USAGE, str(error)) from None
    ctx.obj = client


def _call(action: str, body: dict[str, Any] | None = None) -> None:
    from simulators.admin_client import AdminClient, AdminRequestError

    client = click.get_current_context().find_object(AdminClient)
    assert client is not None
    try:
        answer = client.call(action, body)
    except AdminRequestError as error:
        raise Exit(EXIT_NOT_FOUND if error.status == 404 else EXIT_FAILED, str(error)) from None
    click.echo(answer.get("message") or " ".join(f"{k}: {v}" for k, v in answer.items()))


@admin.command()
def info() -> None:
    """What kind of simulator it is and how many users and groups it holds."""
    _call("info")


@admin.command("add-user")
@click.argument("email")
@click.option("--first-name", help="Given name (default: from the email).")
@click.option("--last-name", help="Family name (default: User).")
@click.option("--group", "groups", multiple=True, metavar="GROUP", help="Also make them a member (repeatable).")
def add_user(email: str, first_name: str | None, last_name: str | None, groups: tuple[str, ...]) -> None:
    """Create an active user."""
    _call("add-user", {"email": email, "first_name": first_name, "last_name": last_name, "groups": list(groups)})


_GROUP_MEMBERS = click.option("--group", metavar="GROUP", help="Every member of GROUP as well.")


@admin.command("disable-user")
@click.argument("users", nargs=-1, metavar="[USER]...")
@_GROUP_MEMBERS
def disable_user(users: tuple[str, ...], group: str | None) -> None:
    """Disable users (Okta: deactivate; Entra: accountEnabled false): a mass deactivation
    with --group."""
    _call("disable-user", {"users": list(users), "group": group})


@admin.command("delete-user")
@click.argument("users", nargs=-1, metavar="[USER]...")
@_GROUP_MEMBERS
def delete_user(users: tuple[str, ...], group: str | None) -> None:
    """Delete users (Okta: deactivate then delete; Entra: soft delete)."""
    _call("delete-user", {"users": list(users), "group": group})


@admin.command("move-user")
@click.argument("users", nargs=-1, required=True, metavar="USER...")
@click.option("--from", "source", metavar="GROUP", help="Remove them from GROUP.")
@click.option("--to", "target", metavar="GROUP", help="Add them to GROUP.")
def move_user(users: tuple[str, ...], source: str | None, target: str | None) -> None:
    """Move users from one group to another (or only out of --from, or only into --to)."""
    _call("move-user", {"users": list(users), "from": source, "to": target})


@admin.command("rename-group")
@click.argument("group")
@click.argument("new_name")
def rename_group(group: str, new_name: str) -> None:
    """Rename a group."""
    _call("rename-group", {"group": group, "name": new_name})


@admin.command("delete-group")
@click.argument("group")
def delete_group(group: str) -> None:
    """Delete a group."""
    _call("delete-group", {"group": group})


_PRINCIPALS = (
    click.option("--user", "users", multiple=True, metavar="USER", help="A user (repeatable)."),
    click.option("--group", "groups", multiple=True, metavar="GROUP", help="A group (repeatable)."),
)


@admin.command()
@_PRINCIPALS[0]
@_PRINCIPALS[1]
def assign(users: tuple[str, ...], groups: tuple[str, ...]) -> None:
    """Assign users or groups to the app (Okta: app assignment; Entra: appRoleAssignedTo)."""
    _call("assign", {"users": list(users), "groups": list(groups)})


@admin.command()
@_PRINCIPALS[0]
@_PRINCIPALS[1]
def unassign(users: tuple[str, ...], groups: tuple[str, ...]) -> None:
    """Remove users' or groups' assignment to the app."""
    _call("unassign", {"users": list(users), "groups": list(groups)})


COMMANDS = [simulate]
