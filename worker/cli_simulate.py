"""`dirsync simulate okta|entra`: a local, stateful Okta or Microsoft Graph API over HTTPS.

For trying dirsync without a tenant: it prints the URL, credentials and CA bundle to put
in a `[directories.NAME]` table, and serves until interrupted (Ctrl-C).
"""

from __future__ import annotations

import click


def _options(command: click.Command) -> click.Command:
    for option in reversed((
        click.option("--users", default=200, show_default=True, type=click.IntRange(min=0), help="Users to generate."),
        click.option("--groups", default=20, show_default=True, type=click.IntRange(min=0), help="Groups to generate."),
        click.option("--seed", default=1, show_default=True, help="Random seed: the same seed, the same org."),
        click.option("--port", default=0, show_default=True, type=click.IntRange(0, 65535), help="Port (0: any free port)."),
    )):
        command = option(command)
    return command


@click.group()
def simulate() -> None:
    """Serve a local Okta or Microsoft Graph API to sync from."""


@simulate.command()
@_options
def okta(users: int, groups: int, seed: int, port: int) -> None:
    """An Okta org (Management API, System Log, OAuth token endpoint)."""
    from connectors.simulator.okta import run_cli

    run_cli(users=users, groups=groups, seed=seed, port=port)


@simulate.command()
@_options
def entra(users: int, groups: int, seed: int, port: int) -> None:
    """A Microsoft Entra tenant (Graph v1.0 with delta queries, identity platform tokens)."""
    from connectors.simulator.graph import run_cli

    run_cli(users=users, groups=groups, seed=seed, port=port)


COMMANDS = [simulate]
