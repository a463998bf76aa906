"""`dirsync explain EMAIL|GROUP`: why one user or group is as it is."""

from __future__ import annotations

from dataclasses import asdict

import click

from cli import render
from cli.base import EXIT_NOT_FOUND, Context, Exit, echo_json, pass_ctx


@click.command()
@click.argument("query", metavar="EMAIL|GROUP")
@click.option("--directory", default=None, help="Only this directory's runs in the history.")
@click.option("--group", "as_group", is_flag=True, help="QUERY is a group name even if it contains '@'.")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def explain(ctx: Context, query: str, directory: str | None, as_group: bool, as_json: bool) -> None:
    """The decision trace of one user (by email) or group (by name): who manages it and
    since when, how it was matched, its state, the last rule decision, what is staged on
    it and its last 20 events."""
    from service.explain import explain as trace

    found = trace(ctx.reader, query, directory=directory, kind="group" if as_group else None)
    if as_json:
        echo_json({**asdict(found), "steps": found.steps})
    else:
        for step in found.steps:
            click.echo(f"  {step}")
        if found.recent:
            click.echo("recent events:")
            for line in render.events_table(list(found.recent), with_run=True):
                click.echo(f"  {line}")
    if not found.found:
        raise Exit(EXIT_NOT_FOUND)


COMMANDS = [explain]
