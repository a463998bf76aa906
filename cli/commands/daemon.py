"""`dirsync worker`, `dirsync beat`, `dirsync status [--json]`, `dirsync resume NAME`.

`worker` and `beat` are thin conveniences over `celery -A worker.app worker|beat` using the
configuration `dirsync` loaded (`--config`), so both ways start the same thing.

Exit codes: `worker` and `beat` return Celery's (0 after a clean shutdown, 1 when Celery
could not start, e.g. the broker is unreachable), 2 on a configuration error; `status` 0;
`resume` those of `dirsync sync` for the cycle it runs (0 ok, 1 failed, 3 halted, 4
refused), 2 for a directory the configuration does not name.
"""

from __future__ import annotations

import click

from reconcile import clock
from config.settings import DEFAULT_PATH
from cli.base import EXIT_USAGE, Context, Exit, pass_ctx, progress_printer


@click.command("worker")
@click.option("-c", "--concurrency", type=int, default=None, help="Pool processes or threads (default: CPUs).")
@click.option(
    "--pool", type=click.Choice(["prefork", "threads", "solo"]), default="prefork", show_default=True,
    help="prefork enforces the hard time limit; threads and solo do not.",
)
@click.option("-B", "--beat", "embed_beat", is_flag=True, help="Also run the scheduler (one host only).")
@click.option("-n", "--hostname", default=None, help="Node name, e.g. sync1@%h.")
@pass_ctx
def worker_command(ctx: Context, concurrency: int | None, pool: str, embed_beat: bool, hostname: str | None) -> None:
    """Run a Celery worker that executes sync cycles (blocks until stopped)."""
    from worker.app import create_app

    app = create_app(ctx.settings)
    app.set_default()
    argv = ["worker", f"--loglevel={ctx.settings.worker.log_level}", f"--pool={pool}"]
    if concurrency:
        argv.append(f"--concurrency={concurrency}")
    if embed_beat:
        argv.append("--beat")
    if hostname:
        argv.append(f"--hostname={hostname}")
    app.worker_main(argv=argv)


@click.command("beat")
@click.option(
    "-s", "--schedule", "schedule_file", default="celerybeat-schedule", show_default=True,
    help="Where beat remembers when its tick and the daily prune last ran.",
)
@pass_ctx
def beat_command(ctx: Context, schedule_file: str) -> None:
    """Run the scheduler: every 30 s, start a cycle of each directory that is due.

    Due times come from the store (last run + cycle_minutes), so a restart neither delays
    nor repeats a cycle. Run one beat; a second one is harmless (the tick never sends a
    directory twice in its interval) but useless.
    """
    from worker.app import create_app

    app = create_app(ctx.settings)
    app.set_default()
    app.start(argv=["beat", f"--loglevel={ctx.settings.worker.log_level}", f"--schedule={schedule_file}"])


@click.command("status")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_ctx
def status_command(ctx: Context, as_json: bool) -> None:
    """Each directory: last run, next cycle and its mode, watermark age, quarantine."""
    from service import status
    from cli import status_view

    from service.heartbeat import read_for

    now = clock.now()
    statuses = status.collect(ctx.settings, ctx.reader, now, heartbeats=read_for(ctx.settings))
    if as_json:
        click.echo(status_view.as_json(statuses))
    else:
        click.echo(_where(ctx))
        click.echo(status_view.render_text(statuses, now))


def _where(ctx: Context) -> str:
    """Which configuration and store this status describes: the first question on call."""
    from store import safe_url

    source = ctx.settings.source
    read = (f"config: {source}" if source is not None
            else f"no config file: looked for ./{DEFAULT_PATH.name} and $DIRSYNC_CONFIG (built-in defaults)")
    return f"{read}\nstore:  {safe_url(ctx.settings.store.url)}\n"


@click.command("resume")
@click.argument("name")
@click.option("--async", "use_async", is_flag=True, help="Enqueue the cycle on the workers instead of running it here.")
@pass_ctx
def resume_command(ctx: Context, name: str, use_async: bool) -> None:
    """End the quarantine of NAME and start a cycle of it now."""
    from service.directories import end_quarantine

    if name not in ctx.settings.directories:
        known = ", ".join(sorted(ctx.settings.directories)) or "none configured"
        raise Exit(EXIT_USAGE, f"directories.{name}: no such directory ({known})")
    cleared = end_quarantine(ctx.settings, ctx.store, name)
    if cleared:
        click.echo(f"{name} resumed after {cleared} failed cycle(s); starting a cycle now.")
    else:
        click.echo(f"{name} is not quarantined; starting a cycle now.")
    if use_async:
        from worker.client import submit_sync

        (queued,) = submit_sync(ctx.settings, [name], wait=False)
        click.echo(f"{name}: cycle queued (task {queued['task_id']})")
        return
    from cli import render
    from cli.commands.sync import exit_code
    from service.sync import sync

    with progress_printer(True) as progress:
        result = sync(ctx.settings, ctx.store, name, trigger="cli", progress=progress)
    click.echo(render.summary(result))
    code = exit_code([result])
    if code:
        raise Exit(code)


COMMANDS = [worker_command, beat_command, status_command, resume_command]

__all__ = ["COMMANDS"]
