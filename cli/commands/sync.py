"""`dirsync sync`, `sync-user`, `export`, `runs`, `events`, `enable`, `disable`, `db upgrade`."""

from __future__ import annotations

import sys
from datetime import UTC, datetime

import click

from config import check_secrets

from service.sync import RunResult, sync_user
from service.sync import sync as run_sync
from cli import render
from cli.base import (
    EXIT_FAILED,
    EXIT_HALTED,
    EXIT_NOT_FOUND,
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_USAGE,
    Context,
    Exit,
    echo_json,
    pass_ctx,
    progress_printer,
)


# A dry run shows this many operations of each kind (`--all`: every one).
DRY_RUN_LINES = 20


def exit_code(results: list[RunResult]) -> int:
    """The worst outcome decides: failed (or partial, or aborted), then halted, then refused."""
    statuses = {r.status for r in results}
    if statuses & {"failed", "partial", "aborted"}:
        return EXIT_FAILED
    if "halted" in statuses or any(r.would_halt for r in results):
        return EXIT_HALTED
    if "refused" in statuses:
        return EXIT_REFUSED
    return EXIT_OK


@click.command()
@click.argument("names", nargs=-1, metavar="[NAME]...")
@click.option("--full", is_flag=True, help="Read everything, not only changes since the last cycle.")
@click.option("--dry-run", is_flag=True, help="Print the plan; change nothing (exit 3 if a safety limit would halt it).")
@click.option("--all", "show_all", is_flag=True, help="With --dry-run: every operation, not the first 20 of each kind.")
@click.option("--allow-deactivations", is_flag=True,
              help="Approve the plan this run computes from a full read, even over a safety limit (never an empty read).")
@click.option("--json", "as_json", is_flag=True, help="Print results as JSON.")
@click.option("--async", "use_async", is_flag=True, help="Enqueue on the Celery workers instead of running here.")
@click.option("--wait/--no-wait", default=True, help="With --async: wait for the results (default).")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=3600.0, show_default=True,
              help="With --async --wait: give up waiting after this many seconds (the cycle goes on).")
@pass_ctx
def sync(ctx: Context, names: tuple[str, ...], full: bool, dry_run: bool, show_all: bool,
         allow_deactivations: bool, as_json: bool, use_async: bool, wait: bool, timeout: float) -> None:
    """Run a cycle for each NAME (default: every configured directory)."""
    targets = list(names) or sorted(n for n, d in ctx.settings.directories.items() if d.kind != "scim")
    if not targets:
        raise Exit(EXIT_USAGE, "no directories configured: add a [directories.NAME] table to the config")
    for name in targets:
        directory = ctx.settings.directory(name)  # unknown names fail before anything runs
        if not use_async:  # a worker reads its own environment, and records its failures
            check_secrets(directory)  # an unset secret variable is a configuration error
    full = full or allow_deactivations  # an admin approves only what a full read plans
    if use_async:
        _sync_async(ctx, targets, full, dry_run, allow_deactivations, wait, timeout, as_json)
        return
    results = []
    with progress_printer(not as_json) as progress:
        for name in targets:
            result = run_sync(ctx.settings, ctx.store, name, trigger="cli", full=full, dry_run=dry_run,
                              allow_deactivations=allow_deactivations, progress=progress)
            results.append(result)
            if not as_json:
                _print_result(result, dry_run, show_all)
    if as_json:
        echo_json([render.result_json(r) for r in results])
    raise Exit(exit_code(results))


def _print_result(result: RunResult, dry_run: bool, show_all: bool = False) -> None:
    if dry_run and result.plan is not None:
        counts = ", ".join(f"{n} {action}" for action, n in result.plan.counts().items() if n)
        click.echo(f"plan for {result.directory} ({result.mode}): {counts or 'nothing to do'}")
        lines = list(render.plan_lines(result.plan, per_action=None if show_all else DRY_RUN_LINES))
        for line in lines or ["  (nothing to do)"]:
            click.echo(f"  {line}")
    elif result.plan is not None and result.plan.rejections:
        for rejection in result.plan.rejections:
            click.echo(f"  ! {render.rejected(rejection)}")
    click.echo(render.summary(result))


def _sync_async(ctx: Context, targets: list[str], full: bool, dry_run: bool, allow: bool,
                wait: bool, timeout: float, as_json: bool) -> None:
    from worker.client import submit_sync

    results = submit_sync(ctx.settings, targets, full=full, dry_run=dry_run,
                          allow_deactivations=allow, wait=wait, timeout=timeout)
    if as_json:
        echo_json(results)
    elif not wait:
        for item in results:
            click.echo(f"{item.get('directory')}: queued as task {item.get('task_id')}")
    else:
        for item in results:
            if item.get("status") == "timeout":
                click.echo(f"{item.get('directory')}: {item.get('error')}")
            else:
                click.echo(render.summary(render.result_from_task(item)))
    statuses = {str(item.get("status")) for item in results}
    # No result in time is not success: the caller asked to wait and cannot know.
    code = EXIT_FAILED if statuses & {"failed", "partial", "aborted", "timeout"} else EXIT_HALTED if "halted" in statuses else (
        EXIT_REFUSED if "refused" in statuses else EXIT_OK)
    raise Exit(code)


@click.command("sync-user")
@click.argument("name")
@click.argument("key")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def sync_user_command(ctx: Context, name: str, key: str, as_json: bool) -> None:
    """Provision one user now (by email or directory id), with the groups that list them."""
    check_secrets(ctx.settings.directory(name))
    result = sync_user(ctx.settings, ctx.store, name, key)
    outcome = result.user_outcome
    if as_json:
        echo_json({**render.result_json(result),
                   "user": {"found": outcome.found, "outcome": outcome.text} if outcome else None})
    else:
        if result.plan is not None:
            for line in render.plan_lines(result.plan):
                click.echo(f"  {line}")
        if outcome is not None:
            click.echo(outcome.text)
        click.echo(render.summary(result))
    if outcome is not None and not outcome.found and result.ok:
        raise Exit(EXIT_NOT_FOUND)
    raise Exit(exit_code([result]))


@click.command()
@click.option("--json", "as_json", is_flag=True, help="The whole store as JSON (users, groups, invites).")
@pass_ctx
def export(ctx: Context, as_json: bool) -> None:
    """Print the store: users, groups with members, invites — sorted."""
    from service.sync import export as export_store

    state = export_store(ctx.reader)
    if as_json:
        echo_json(state)
    else:
        for line in render.store_lines(state):
            click.echo(line)


@click.command()
@click.option("--limit", default=20, show_default=True, help="How many of the newest runs.")
@click.option("--directory", "directory", default=None, help="Only this directory's runs.")
@click.option("--status", "statuses", multiple=True, metavar="STATUS",
              help="Only runs that ended so (succeeded, partial, failed, halted, skipped, aborted...); repeatable.")
@click.option("--hide-noop", is_flag=True, help="Leave out runs that changed nothing.")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def runs(ctx: Context, limit: int, directory: str | None, statuses: tuple[str, ...], hide_noop: bool,
         as_json: bool) -> None:
    """The newest cycles: when, which directory, how it ended, what it changed."""
    from service import history

    rows = history.runs(ctx.reader, directory=directory, status=statuses, hide_noop=hide_noop, limit=limit)
    if as_json:
        echo_json([render.run_json(r) for r in rows])
        return
    if not rows:
        click.echo("no runs match" if statuses or hide_noop or directory else "no runs yet")
        return
    for line in render.runs_table(rows):
        click.echo(line)


@click.command()
@click.argument("run_id", type=int, required=False)
@click.option("--directory", default=None, help="Only events of this directory's runs.")
@click.option("--user", "user", metavar="EMAIL", default=None, help="Only events about this user.")
@click.option("--group", "group", metavar="NAME", default=None, help="Only events about this group.")
@click.option("--action", default=None, help="Only this action (create-user, deactivate-user, reject...).")
@click.option("--outcome", default=None, help="Only this outcome (applied, noop, rejected, conflict, failed, staged).")
@click.option("--reason", default=None, help="Only this reason code (left-scope, name-too-long...).")
@click.option("--since", type=click.DateTime(), default=None, help="Only events at or after this time (UTC).")
@click.option("--until", type=click.DateTime(), default=None, help="Only events before this time (UTC).")
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="At most this many (default: all of one run; the newest 100 across runs).")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def events(ctx: Context, run_id: int | None, directory: str | None, user: str | None, group: str | None,
           action: str | None, outcome: str | None, reason: str | None, since: datetime | None,
           until: datetime | None, limit: int | None, as_json: bool) -> None:
    """What happened, operation by operation: of one run, or across runs for one user or group."""
    from service import history

    if run_id is not None and not history.run_exists(ctx.reader, run_id):
        raise Exit(EXIT_USAGE, f"no run {run_id}")
    where = history.EventFilter(run_id=run_id, directory=directory, user=user, group=group, action=action,
                                outcome=outcome, reason=reason,
                                since=since.replace(tzinfo=UTC) if since is not None else None,
                                until=until.replace(tzinfo=UTC) if until is not None else None)
    if limit is None and run_id is None:
        limit = history.DEFAULT_LIMIT
    rows = history.events(ctx.reader, where, limit=limit)
    if as_json:
        echo_json([render.event_json(e) for e in rows])
        return
    if not rows:
        click.echo(f"run {run_id} recorded no events" if run_id is not None and where == history.EventFilter(run_id)
                   else "no events match")
        return
    for line in render.events_table(rows, with_run=run_id is None):
        click.echo(line)


@click.command()
@click.argument("name")
@pass_ctx
def enable(ctx: Context, name: str) -> None:
    """Turn sync on for NAME: open invites are revoked (R8); the next cycle links by email and name."""
    from service.directories import enable as turn_on

    done = turn_on(ctx.settings, ctx.store, name)
    click.echo(f"{name}: sync enabled; {done.invites_revoked} open invites revoked; run `dirsync sync {name}` to link")


@click.command()
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation (scripts).")
@click.option("--dry-run", is_flag=True, help="Only say what would be converted.")
@pass_ctx
def disable(ctx: Context, name: str, yes: bool, dry_run: bool) -> None:
    """Turn sync off for NAME: its users and groups become local, nothing is lost (R8)."""
    from service.directories import disable as turn_off
    from service.directories import disable_preview

    preview = disable_preview(ctx.settings, ctx.store, name)
    what = f"{preview.users} users and {preview.groups} groups managed by {name} would become local"
    if dry_run:
        click.echo(f"{name}: {what}; nothing changed (--dry-run)")
        return
    if not yes:
        if not sys.stdin.isatty():
            raise Exit(EXIT_USAGE, f"{what}; confirm with --yes (no terminal to ask on)")
        click.confirm(f"{what}. Turn sync off for {name}?", abort=True, err=True)
    done = turn_off(ctx.settings, ctx.store, name)
    click.echo(f"{name}: sync disabled; {done.users} users and {done.groups} groups are local now")
    if done.failed:
        raise Exit(EXIT_FAILED, f"{done.failed} conversions failed; run `dirsync disable {name} --yes` again")


@click.group()
def db() -> None:
    """Database schema management."""


@db.command()
@pass_ctx
def upgrade(ctx: Context) -> None:
    """Migrate the store's schema to the newest revision."""
    from store import open_store

    store = open_store(ctx.settings.store.url, check_schema=False)
    try:
        store.upgrade()
        click.echo(f"store at {store.url} is at revision {store.revision()}")
    finally:
        store.dispose()


COMMANDS = [sync, sync_user_command, export, runs, events, enable, disable, db]
