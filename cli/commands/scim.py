"""`dirsync scim token NAME [--regenerate] [--json]` and `dirsync serve`.

Exit codes: `scim token` 0 (the token is printed once), 2 for a directory that is not
configured or not of kind "scim", 4 when a token exists and --regenerate is not given;
`scim approve` / `scim reject` 0, or 4 when RUN_ID is not an open held request (approve: 1
when some of it no longer holds); `serve` runs until stopped (0), 2 on a configuration error.
"""

from __future__ import annotations

import click

from cli.base import EXIT_FAILED, EXIT_REFUSED, Context, Exit, echo_json, pass_ctx


@click.group("scim")
def scim_group() -> None:
    """SCIM push directories: their bearer tokens."""


@scim_group.command("token")
@click.argument("name")
@click.option("--regenerate", is_flag=True, help="Replace the existing token; the old one is refused at once.")
@click.option("--json", "as_json", is_flag=True, help='Print {"directory", "base_url", "token", "expires_at"}.')
@pass_ctx
def token_command(ctx: Context, name: str, regenerate: bool, as_json: bool) -> None:
    """Create NAME's SCIM bearer token and print it once, with the base URL to paste into the IdP."""
    from service.scim_tokens import issue_token

    issued = issue_token(ctx.settings, ctx.store, name, regenerate=regenerate)
    expires = issued.expires_at.isoformat(timespec="seconds")
    if as_json:
        echo_json({"directory": issued.directory, "base_url": issued.base_url, "token": issued.token,
                   "expires_at": expires})
        return
    click.echo(f"SCIM connector base URL: {issued.base_url}")
    click.echo(f"Bearer token:            {issued.token}")
    click.echo(f"Expires:                 {expires}")
    click.echo("Copy the token now: it is shown only this once (only a hash is stored).")


@scim_group.command("held")
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def held_command(ctx: Context, name: str | None, as_json: bool) -> None:
    """SCIM requests held by the push deactivation limit (S2), awaiting approval."""
    from service.scim_hold import held_requests

    found = held_requests(ctx.store, name)
    if as_json:
        echo_json([{"run_id": h.run_id, "directory": h.directory, "at": h.at, "reason": h.reason,
                    "request": h.request, "deactivations": list(h.deactivations)} for h in found])
        return
    if not found:
        click.echo("no held SCIM requests")
    for h in found:
        click.echo(f"{h.run_id:>6}  {h.at:%Y-%m-%d %H:%M}  {h.directory:<12} {h.request or ''}  "
                   f"deactivates: {', '.join(h.deactivations)}")
        click.echo(f"        {h.reason}")


@scim_group.command("approve")
@click.argument("run_id", type=int)
@pass_ctx
def approve_command(ctx: Context, run_id: int) -> None:
    """Apply held SCIM request RUN_ID (what still holds), through the guarded write path."""
    from service.scim_hold import NotHeld, approve_held

    try:
        result = approve_held(ctx.settings, ctx.store, run_id)
    except NotHeld as exc:
        raise Exit(EXIT_REFUSED, str(exc)) from None
    click.echo(f"run {run_id} approved: {result.applied} applied, {result.noop} unchanged,"
               f" {result.conflicts + result.failed} refused")
    if result.conflicts or result.failed:
        raise Exit(EXIT_FAILED)


@scim_group.command("reject")
@click.argument("run_id", type=int)
@pass_ctx
def reject_command(ctx: Context, run_id: int) -> None:
    """Close held SCIM request RUN_ID without applying it."""
    from service.scim_hold import NotHeld, reject_held

    try:
        reject_held(ctx.store, run_id)
    except NotHeld as exc:
        raise Exit(EXIT_REFUSED, str(exc)) from None
    click.echo(f"run {run_id} rejected; nothing was applied")


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535), help="Port to listen on.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64), help="Server processes.")
@pass_ctx
def serve_command(ctx: Context, host: str, port: int, workers: int) -> None:
    """Run the web app (operator console at /console, SCIM 2.0 endpoint under /scim/v2/NAME) with uvicorn."""
    import os

    import uvicorn

    # Each server process builds the app itself (by import string: the CLI does not import
    # the web face), from the configuration this command loaded.
    if ctx.settings.source is not None:
        os.environ["DIRSYNC_CONFIG"] = str(ctx.settings.source)
    click.echo(f"dirsync web on http://{host}:{port} (console: {ctx.settings.web.public_url}/console;"
               f" SCIM base URLs: {ctx.settings.web.public_url}/scim/v2/NAME)", err=True)
    uvicorn.run("web.app:create_app_from_env", factory=True, host=host, port=port, workers=workers,
                log_level=ctx.settings.worker.log_level.lower(), access_log=False, server_header=False)


COMMANDS = [scim_group, serve_command]

__all__ = ["COMMANDS"]
