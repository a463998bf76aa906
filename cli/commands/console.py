"""`dirsync console add-admin EMAIL [--password-stdin]`: who may sign in to the console.

The password is asked twice on the terminal (not echoed), or read from the first line of
standard input with `--password-stdin` (scripts); it is stored only as a slow salted hash.
Adding an existing admin sets their password and ends their sessions.

Exit codes: 0 the admin was added (or their password set), 2 a bad email, a password that
is too short, no terminal to ask on, or a configuration error.
"""

from __future__ import annotations

import sys

import click

from cli.base import EXIT_USAGE, Context, Exit, pass_ctx


@click.group("console")
def console_group() -> None:
    """The operator console (served by `dirsync serve` at /console): its admins."""


@console_group.command("add-admin")
@click.argument("email")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of standard input.")
@pass_ctx
def add_admin_command(ctx: Context, email: str, password_stdin: bool) -> None:
    """Let EMAIL sign in to the console, with a password asked for now."""
    from service.console_auth import InvalidEmail, WeakPassword, set_admin, valid_email

    try:
        valid_email(email)  # before asking for a password that would be thrown away
    except InvalidEmail as exc:
        raise Exit(EXIT_USAGE, f"not an email address: {exc}") from None
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    elif not sys.stdin.isatty():
        raise Exit(EXIT_USAGE, "no terminal to ask for the password on: use --password-stdin")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True, err=True)
    try:
        done = set_admin(ctx.store, email, password)
    except (InvalidEmail, WeakPassword) as exc:
        raise Exit(EXIT_USAGE, str(exc)) from None
    if done.created:
        click.echo(f"{done.email} is a console admin now; sign in at {ctx.settings.web.public_url}/console")
    else:
        click.echo(f"{done.email}: password changed; their open console sessions are signed out")


COMMANDS = [console_group]

__all__ = ["COMMANDS"]
