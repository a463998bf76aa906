"""`dirsync staged [NAME] [--json]`, `dirsync approve RUN_ID`, `dirsync reject RUN_ID`.

A run halted by a safety limit (S2) leaves its plan staged until someone decides:
`approve` applies exactly the staged operations the directory still confirms (a fresh full
read, under the directory's lock; for a push directory, the held SCIM requests' operations
that still hold against the store), `reject` closes the plan without applying anything.

Exit codes: `staged` 0; `approve` 0 applied, 1 the read or some operations failed or a
cycle holds the lock (the plan stays open unless it was applied), 4 RUN_ID is not an open
staged plan or its directory is disabled; `reject` 0 closed, 1 a cycle holds the lock,
4 not an open staged plan. 2 on a configuration error, as everywhere.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from service.staging import Decision, NotStaged
from cli.base import EXIT_FAILED, EXIT_OK, EXIT_REFUSED, Context, Exit, echo_json, pass_ctx

# A listing shows this many emails per plan; `--json` shows them all.
SHOWN = 20


@click.command("staged")
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (every email and group).")
@pass_ctx
def staged_command(ctx: Context, name: str | None, as_json: bool) -> None:
    """Plans halted by a safety limit that wait for `approve` or `reject` (of NAME, or all)."""
    from service.staging import open_staged

    if name is not None:
        ctx.settings.directory(name)  # an unknown name is a usage error, not an empty list
    plans = [_plan_dict(row) for row in open_staged(ctx.reader, name)]
    if as_json:
        echo_json(plans)
        return
    if not plans:
        click.echo("no staged plans" + (f" for {name}" if name else ""))
    for plan in plans:
        click.echo(_plan_text(plan))


@click.command("approve")
@click.argument("run_id", type=int)
@click.option("--by", default=None, help="Who approves (default: the OS user).")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def approve_command(ctx: Context, run_id: int, by: str | None, as_json: bool) -> None:
    """Apply the staged operations of RUN_ID that the directory still confirms."""
    from service.staging import approve

    decision = _decide(lambda: approve(ctx.settings, run_id, by=by, store=ctx.store))
    _report(decision, as_json)
    if decision.status == "refused":
        raise Exit(EXIT_REFUSED)
    raise Exit(EXIT_OK if decision.ok and decision.error is None else EXIT_FAILED)


@click.command("reject")
@click.argument("run_id", type=int)
@click.option("--by", default=None, help="Who rejects (default: the OS user).")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def reject_command(ctx: Context, run_id: int, by: str | None, as_json: bool) -> None:
    """Close the staged plan of RUN_ID without applying anything."""
    from service.staging import reject

    decision = _decide(lambda: reject(ctx.settings, run_id, by=by, store=ctx.store))
    _report(decision, as_json)
    raise Exit(EXIT_OK if decision.ok else EXIT_FAILED)


def _decide(call: Callable[[], Decision]) -> Decision:
    try:
        return call()
    except NotStaged as exc:
        raise Exit(EXIT_REFUSED, str(exc)) from None


def _report(decision: Decision, as_json: bool) -> None:
    if as_json:
        echo_json(_decision_dict(decision))
        return
    who = f"{decision.directory}: staged plan of run {decision.staged_run_id}"
    if decision.status == "approved":
        applied = decision.applied.applied if decision.applied else 0
        click.echo(f"{who} approved by {decision.by}: {applied} operations applied in run {decision.run_id}")
        if decision.dropped:
            click.echo(f"  {len(decision.dropped)} staged operations dropped, not in the fresh plan"
                       f" (why: `dirsync events {decision.run_id}`)")
        for op in decision.dropped[:SHOWN]:
            click.echo(f"  - not applied: {op.action.value} {op.target}")
        if decision.note:
            click.echo(f"  {decision.note}")
    elif decision.status == "rejected":
        click.echo(f"{who} rejected by {decision.by}; nothing applied")
    if decision.error:
        click.echo(f"dirsync: {who}: {decision.error}", err=True)


def _plan_dict(row: Any) -> dict[str, Any]:
    return {
        "run_id": row.run_id,
        "directory": row.directory,
        "created_at": row.created_at,
        "limit": row.safety_limit,
        "reason": row.reason,
        "operations": row.operations,
        "deactivations": list(row.deactivations),
        "removals": list(row.removals),
    }


def _plan_text(plan: dict[str, Any]) -> str:
    run = plan["run_id"]
    lines = [
        f"run {run}  {plan['directory']}  staged {plan['created_at']:%Y-%m-%d %H:%M:%SZ}  limit {plan['limit']}",
        f"  {plan['reason']}",
        f"  {plan['operations']} operations: {len(plan['deactivations'])} deactivations,"
        f" {len(plan['removals'])} membership removals",
    ]
    lines += [f"  deactivate {email}" for email in plan["deactivations"][:SHOWN]]
    lines += [f"  remove {r['email']} from {r['group']}" for r in plan["removals"][:SHOWN]]
    hidden = max(len(plan["deactivations"]) - SHOWN, 0) + max(len(plan["removals"]) - SHOWN, 0)
    if hidden:
        lines.append(f"  ... and {hidden} more (--json lists them all)")
    lines.append(f"  decide: dirsync approve {run}  |  dirsync reject {run}")
    return "\n".join(lines)


def _decision_dict(decision: Decision) -> dict[str, Any]:
    return {
        "run_id": decision.staged_run_id,
        "directory": decision.directory,
        "status": decision.status,
        "by": decision.by,
        "approval_run_id": decision.run_id,
        "outcomes": dict(decision.applied.outcomes) if decision.applied else {},
        "dropped": [{"action": op.action.value, "target": op.target} for op in decision.dropped],
        "error": decision.error,
        "note": decision.note,
    }


COMMANDS = [staged_command, approve_command, reject_command]

__all__ = ["COMMANDS"]
