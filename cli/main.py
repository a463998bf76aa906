"""The `dirsync` command line.

Exit codes: 0 done (also when there was nothing to do), 1 a cycle failed, 2 usage or
configuration error, 3 halted by a safety guard (plan staged, nothing applied),
4 refused by a rule. Errors are one line on stderr, never a traceback
(set DIRSYNC_DEBUG=1 to see one).
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import NoReturn

import click

from config import ConfigError
from reconcile.admin import Refused
from store import StoreError
from cli.base import EXIT_FAILED, EXIT_OK, EXIT_REFUSED, EXIT_USAGE, Context, Exit

@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", metavar="PATH", envvar="DIRSYNC_CONFIG",
              help="Configuration file (default: $DIRSYNC_CONFIG, else ./dirsync.toml, else built-in defaults).")
@click.version_option(package_name="dirsync")
@click.pass_context
def dirsync(click_ctx: click.Context, config_path: str | None) -> None:
    """dirsync keeps this application's users and groups in step with Okta and Microsoft Entra ID."""
    if click_ctx.invoked_subcommand in ("demo", "simulate"):
        return  # these build their own configuration
    ctx = Context(config_path)
    from worker import logs

    logs.configure(ctx.settings.worker)
    click_ctx.obj = ctx
    click_ctx.call_on_close(ctx.close)


# Every command module, in the order they were written; each names its click commands in
# COMMANDS. This list is the one way a command joins `dirsync`.
COMMAND_MODULES = ("sync", "admin", "staged", "explain", "daemon", "prune", "scim", "simulate", "demo", "console")


def _register_commands() -> None:
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"cli.commands.{name}")
        for command in module.COMMANDS:
            if command.name not in dirsync.commands:
                dirsync.add_command(command)


def main() -> NoReturn:
    """Console entry point: run the CLI and turn every error into one line and an exit code."""
    debug = os.environ.get("DIRSYNC_DEBUG") == "1"
    stdout = sys.stdout
    try:
        _register_commands()
        dirsync.main(standalone_mode=False)
        code = EXIT_OK
    except SystemExit as exc:
        # click turns a closed pipe into exit 1 and quiet streams: it replaces stdout with
        # a wrapper that swallows the final flush. The reader went away (`dirsync events 2
        # | head -1`) and got what it wanted: that is not a failure.
        code = EXIT_OK if sys.stdout is not stdout else exc.code  # type: ignore[assignment]
    except Exit as exc:
        if exc.message:
            click.echo(f"dirsync: {exc.message}", err=True)
        code = exc.code
    except click.exceptions.Exit as exc:
        code = exc.exit_code
    except click.Abort:
        click.echo("dirsync: aborted", err=True)
        code = EXIT_FAILED
    except click.ClickException as exc:
        click.echo(f"dirsync: {exc.format_message()}", err=True)
        code = EXIT_USAGE
    except ConfigError as exc:
        click.echo(f"dirsync: configuration error: {exc}", err=True)
        code = EXIT_USAGE
    except Refused as exc:
        click.echo(f"dirsync: refused ({exc.reason}): {exc.detail}", err=True)
        code = EXIT_REFUSED
    except StoreError as exc:
        click.echo(f"dirsync: store error: {exc}", err=True)
        code = EXIT_FAILED
    except Exception as exc:
        if debug:
            raise
        click.echo(f"dirsync: internal error: {type(exc).__name__}: {exc} (DIRSYNC_DEBUG=1 shows the traceback)", err=True)
        code = EXIT_FAILED
    sys.exit(code)




if __name__ == "__main__":
    main()
