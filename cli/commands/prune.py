"""`dirsync prune [--days N] [--json]`: delete old runs and their events now.

What beat's daily `prune-runs` entry does, on demand. The newest run of every directory,
every run a staged plan belongs to and every `running` one are kept (see
`store.runs.prune_runs`).

Exit codes: 0 (also when nothing was old enough), 2 for a `--days` below 1.
"""

from __future__ import annotations

import click

from reconcile import clock
from cli.base import Context, echo_json, pass_ctx


@click.command("prune")
@click.option("--days", type=click.IntRange(min=1), default=None,
              help="Keep runs this many days (default: [store] keep_runs_days, 90).")
@click.option("--json", "as_json", is_flag=True, help="Print what was deleted as JSON.")
@pass_ctx
def prune_command(ctx: Context, days: int | None, as_json: bool) -> None:
    """Delete runs (and their events) older than keep_runs_days."""
    from worker.tasks import prune_store

    keep = ctx.settings.store.keep_runs_days if days is None else days
    deleted = prune_store(ctx.store, keep, clock.now())
    if as_json:
        echo_json({"keep_runs_days": keep, **deleted})
    else:
        click.echo(f"deleted {deleted['runs']} run(s) and {deleted['events']} event(s) older than {keep} days")


COMMANDS = [prune_command]

__all__ = ["COMMANDS"]
