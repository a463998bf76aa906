"""`dirsync sync`, `sync-user`, `export`, `runs`, `events`, `enable`, `disable`, `db upgrade`."""

from __future__ import annotations

import click

from reconcile.cycle import RunResult, run_cycle, sync_user
from worker import render
from worker.cli_base import (
    EXIT_FAILED,
    EXIT_HALTED,
    EXIT_OK,
    EXIT_REFUSED,
    EXIT_USAGE,
    Context,
    Exit,
    echo_json,
    pass_ctx,
    progress_printer,
)


def exit_code(results: list[RunResult]) -> int:
    """The worst outcome decides: failed (or partial, or aborted), then halted, then refused."""
    statuses = {r.status for r in results}
    if statuses & {"failed", "partial", "aborted"}:
        return EXIT_FAILED
    if "halted" in statuses:
        return EXIT_HALTED
    if "refused" in statuses:
        return EXIT_REFUSED
    return EXIT_OK


@click.command()
@click.argument("names", nargs=-1, metavar="[NAME]...")
@click.option("--full", is_flag=True, help="Read everything, not only changes since the last cycle.")
@click.option("--dry-run", is_flag=True, help="Print the plan; change nothing.")
@click.option("--allow-deactivations", is_flag=True, help="Approve a plan a safety limit halted.")
@click.option("--json", "as_json", is_flag=True, help="Print results as JSON.")
@click.option("--async", "use_async", is_flag=True, help="Enqueue on the Celery workers instead of running here.")
@click.option("--wait/--no-wait", default=True, help="With --async: wait for the results (default).")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=3600.0, show_default=True,
              help="With --async --wait: give up waiting after this many seconds (the cycle goes on).")
@pass_ctx
def sync(ctx: Context, names: tuple[str, ...], full: bool, dry_run: bool, allow_deactivations: bool,
         as_json: bool, use_async: bool, wait: bool, timeout: float) -> None:
    """Run a cycle for each NAME (default: every configured directory)."""
    targets = list(names) or sorted(n for n, d in ctx.settings.directories.items() if d.kind != "scim")
    if not targets:
        raise Exit(EXIT_USAGE, "no directories configured: add a [directories.NAME] table to the config")
    for name in targets:
        ctx.settings.directory(name)  # unknown names fail before anything runs
    if use_async:
        _sync_async(ctx, targets, full, dry_run, allow_deactivations, wait, timeout, as_json)
        return
    results = []
    with progress_printer(not as_json) as progress:
        for name in targets:
            result = run_cycle(ctx.settings, name, trigger="cli", full=full, dry_run=dry_run,
                               allow_deactivations=allow_deactivations, store=ctx.store, progress=progress)
            results.append(result)
            if not as_json:
                _print_result(result, dry_run)
    if as_json:
        echo_json([render.result_json(r) for r in results])
    raise Exit(exit_code(results))


def _print_result(result: RunResult, dry_run: bool) -> None:
    if dry_run and result.plan is not None:
        click.echo(f"plan for {result.directory} ({result.mode}):")
        lines = list(render.plan_lines(result.plan))
        for line in lines or ["  (nothing to do)"]:
            click.echo(f"  {line}")
    elif result.plan is not None and result.plan.rejections:
        for rejection in result.plan.rejections:
            click.echo(f"  ! {render.rejected(rejection)}")
    click.echo(render.summary(result))


def _sync_async(ctx: Context, targets: list[str], full: bool, dry_run: bool, allow: bool,
                wait: bool, timeout: float, as_json: bool) -> None:
    from worker.tasks import submit_sync

    results = submit_sync(ctx.settings, targets, full=full, dry_run=dry_run,
                          allow_deactivations=allow, wait=wait, timeout=timeout)
    if as_json or not wait:
        echo_json(results)
    else:
        for item in results:
            click.echo(f"{item.get('directory')}: {item.get('status')} {item.get('error') or ''}".rstrip())
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
    result = sync_user(ctx.settings, name, key, store=ctx.store)
    if as_json:
        echo_json(render.result_json(result))
    else:
        if result.plan is not None:
            for line in render.plan_lines(result.plan):
                click.echo(f"  {line}")
        click.echo(render.summary(result))
    raise Exit(exit_code([result]))


@click.command()
@click.option("--json", "as_json", is_flag=True, help="The whole store as JSON (users, groups, invites).")
@pass_ctx
def export(ctx: Context, as_json: bool) -> None:
    """Print the store: users, groups with members, invites — sorted."""
    from store import export_state

    with ctx.store.session() as session:
        state = export_state(session)
    if as_json:
        echo_json(state)
    else:
        for line in render.store_lines(state):
            click.echo(line)


@click.command()
@click.option("--limit", default=20, show_default=True, help="How many of the newest runs.")
@click.option("--directory", "directory", default=None, help="Only this directory's runs.")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def runs(ctx: Context, limit: int, directory: str | None, as_json: bool) -> None:
    """The newest cycles: when, which directory, how it ended, what it changed."""
    from store import list_runs

    with ctx.store.session() as session:
        rows = [_run_dict(r) for r in list_runs(session, limit=limit, directory=directory)]
    if as_json:
        echo_json(rows)
        return
    if not rows:
        click.echo("no runs yet")
    for row in rows:
        counts = ", ".join(f"{k}={v}" for k, v in sorted(row["counts"].items()) if not k.startswith("outcome:"))
        error = f"  error: {row['error']}" if row["error"] else ""
        click.echo(f"{row['id']:>6}  {row['started_at']}  {row['directory']:<12} {row['status']:<9} "
                   f"{row['mode']:<11} {row['trigger']:<9} {counts}{error}")


@click.command()
@click.argument("run_id", type=int)
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def events(ctx: Context, run_id: int, as_json: bool) -> None:
    """What one run did, operation by operation, with reasons for rejections."""
    from store import get_run, list_events

    with ctx.store.session() as session:
        if get_run(session, run_id) is None:
            raise Exit(EXIT_USAGE, f"no run {run_id}")
        rows = [_event_dict(e) for e in list_events(session, run_id)]
    if as_json:
        echo_json(rows)
        return
    if not rows:
        click.echo(f"run {run_id} recorded no events")
    for row in rows:
        detail = f": {row['detail']}" if row["detail"] else ""
        # A SCIM write's detail is its request ("PATCH /Users/..."): shown even without a reason.
        reason = f"  {row['reason']}{detail}" if row["reason"] else (f"  ({row['detail']})" if row["detail"] else "")
        change = ""
        if row["old"] or row["new"]:
            change = f"  {row['old'] or {}} -> {row['new'] or {}}"
        click.echo(f"{row['seq']:>6}  {row['outcome']:<8} {row['action']:<16} {row['target']}{change}{reason}")


@click.command()
@click.argument("name")
@pass_ctx
def enable(ctx: Context, name: str) -> None:
    """Turn sync on for NAME: open invites are revoked (R8); the next cycle links by email and name."""
    from reconcile.apply import apply
    from reconcile.plan import revoke_invites
    from reconcile.model import Plan
    from store import ensure_directory, load_local_state, set_enabled

    directory = ctx.settings.directory(name)
    with ctx.store.session() as session:
        ensure_directory(session, name, directory.kind)
        set_enabled(session, name, True)
        local = load_local_state(session)
    revoked = revoke_invites(local)
    apply(ctx.store, Plan(name, tuple(revoked)), run_id=None, directory=name)
    click.echo(f"{name}: sync enabled; {len(revoked)} open invites revoked; run `dirsync sync {name}` to link")


@click.command()
@click.argument("name")
@pass_ctx
def disable(ctx: Context, name: str) -> None:
    """Turn sync off for NAME: its users and groups become local, nothing is lost (R8)."""
    from reconcile.apply import apply
    from reconcile.plan import plan_disable
    from store import ensure_directory, load_local_state, set_enabled

    directory = ctx.settings.directory(name)
    with ctx.store.session() as session:
        ensure_directory(session, name, directory.kind)
        # Off first, so no cycle links objects again while they are converted.
        row = set_enabled(session, name, False)
        row.watermark = None  # turning it on again re-reads everything and relinks by match
    with ctx.store.session() as session:
        local = load_local_state(session)
    the_plan = plan_disable(local, name)
    result = apply(ctx.store, the_plan, run_id=None, directory=name)
    users = sum(1 for op in the_plan.operations if op.user is not None)
    groups = len(the_plan.operations) - users
    failed = result.failed
    click.echo(f"{name}: sync disabled; {users} users and {groups} groups are local now")
    if failed:
        raise Exit(EXIT_FAILED, f"{failed} conversions failed; run `dirsync disable {name}` again")


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


def _run_dict(run: object) -> dict[str, object]:
    return {name: getattr(run, name) for name in (
        "id", "directory", "trigger", "mode", "dry_run", "status", "started_at", "finished_at",
        "counts", "error", "allow_deactivations")}


def _event_dict(event: object) -> dict[str, object]:
    return {name: getattr(event, name) for name in (
        "seq", "action", "kind", "target", "outcome", "reason", "detail", "old", "new", "at")}


COMMANDS = [sync, sync_user_command, export, runs, events, enable, disable, db]
