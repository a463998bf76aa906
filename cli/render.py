"""Text people read: a plan as a diff, a cycle's summary, the store as a table."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from service.sync import RunResult
from service.history import EventView, RunView
from reconcile.model import Action, Operation, Plan, Rejection, action_counts

_SIGNS = {
    Action.CREATE_USER: "+",
    Action.CREATE_GROUP: "+",
    Action.ADD_MEMBER: "+",
    Action.CREATE_INVITE: "+",
    Action.UPDATE_USER: "~",
    Action.RENAME_GROUP: "~",
    Action.ACTIVATE_USER: "~",
    Action.DEACTIVATE_USER: "-",
    Action.REMOVE_MEMBER: "-",
    Action.REVOKE_INVITE: "-",
    Action.LINK_USER: "=",
    Action.LINK_GROUP: "=",
    Action.UNLINK_USER: "=",
    Action.UNLINK_GROUP: "=",
}


def plan_lines(plan: Plan, per_action: int | None = None) -> Iterator[str]:
    """One line per operation (+ create, ~ update, - deactivate/remove, = link) and per
    rejection (! rejected, with its reason). With `per_action`, at most that many lines
    of each action, then one line saying how many more there are."""
    shown: dict[Action, int] = {}
    for op in plan.operations:
        n = shown[op.action] = shown.get(op.action, 0) + 1
        if per_action is None or n <= per_action:
            yield f"{_SIGNS[op.action]} {describe(op)}"
        elif n == per_action + 1:
            total = action_counts(plan.operations)[op.action]
            yield f"  ... and {total - per_action} more {op.action.value} operations"
    for rejection in plan.rejections:
        yield f"! {rejected(rejection)}"


def describe(op: Operation) -> str:
    values, old = dict(op.values), dict(op.old)
    match op.action:
        case Action.CREATE_USER:
            name = values.get("display_name")
            state = "" if values.get("active", True) else " (inactive)"
            return f"user {op.target}{f' ({name})' if name else ''}{state}"
        case Action.UPDATE_USER:
            changes = ", ".join(f"{k} {old.get(k)!r} -> {v!r}" for k, v in op.values)
            return f"user {op.target}: {changes}"
        case Action.ACTIVATE_USER:
            return f"user {op.target}: reactivate"
        case Action.DEACTIVATE_USER:
            return f"user {op.target}: deactivate"
        case Action.LINK_USER | Action.LINK_GROUP:
            kind = "user" if op.action is Action.LINK_USER else "group"
            return f"link {kind} {op.target} -> {values.get('managed_by')}:{values.get('external_id')}"
        case Action.UNLINK_USER | Action.UNLINK_GROUP:
            kind = "user" if op.action is Action.UNLINK_USER else "group"
            return f"unlink {kind} {op.target} (now local, kept as it is)"
        case Action.CREATE_GROUP:
            return f"group {op.target}"
        case Action.RENAME_GROUP:
            return f"group {old.get('name')} -> {op.target}"
        case Action.ADD_MEMBER:
            return f"member {op.target}: {values.get('member')}"
        case Action.REMOVE_MEMBER:
            return f"member {op.target}: {old.get('member')}"
        case Action.CREATE_INVITE:
            return f"invite {op.target}"
        case Action.REVOKE_INVITE:
            return f"invite {op.target}: revoke"
    return f"{op.action.value} {op.target}"


def rejected(rejection: Rejection) -> str:
    detail = f": {rejection.detail}" if rejection.detail else ""
    return f"rejected {rejection.kind.value} {rejection.target}: {rejection.reason}{detail}"


_SUMMARY = (
    ("create-user", "users created"),
    ("update-user", "updated"),
    ("link-user", "linked"),
    ("activate-user", "reactivated"),
    ("deactivate-user", "deactivated"),
    ("create-group", "groups created"),
    ("rename-group", "renamed"),
    ("link-group", "groups linked"),
    ("unlink-group", "groups unlinked"),
    ("add-member", "members added"),
    ("remove-member", "removed"),
    ("revoke-invite", "invites revoked"),
    ("rejected", "rejected"),
)


def summary(result: RunResult) -> str:
    """One line: directory, status, mode, what changed, where to look."""
    parts = [f"{result.counts[key]} {label}" for key, label in _SUMMARY if result.counts.get(key)]
    for outcome in ("failed", "conflict"):
        n = result.counts.get(f"outcome:{outcome}")
        if n:
            parts.append(f"{n} {'failed' if outcome == 'failed' else 'conflicted'}")
    # "no changes" only where that is the news: a failed or skipped run changed nothing
    # because it did not get that far.
    quiet = result.status in ("succeeded", "dry-run")
    changes = ", ".join(parts) if parts else ("no changes" if quiet else "")
    run = f"; run {result.run_id}" if result.run_id is not None else ""
    head = f"{result.directory}: {result.status} ({result.mode}, {result.duration_seconds:.1f}s)"
    line = f"{head} - {changes}{run}" if changes else f"{head}{run}"
    if result.error:
        # Errors may already name the directory ("entra: ..."): say it once.
        line += f"\n{result.directory}: {result.error.removeprefix(f'{result.directory}: ')}"
    return line


def result_from_task(item: dict[str, Any]) -> RunResult:
    """A cycle's result as a Celery task returned it, for the same summary as `sync`."""
    return RunResult(str(item.get("directory")), item.get("run_id"), str(item.get("status")), str(item.get("mode")),
                     dict(item.get("counts") or {}), item.get("error"), bool(item.get("auth_failure")),
                     float(item.get("duration_seconds") or 0.0))


def result_json(result: RunResult) -> dict[str, Any]:
    return {
        "directory": result.directory,
        "run_id": result.run_id,
        "status": result.status,
        "mode": result.mode,
        "counts": result.counts,
        "error": result.error,
        "duration_seconds": round(result.duration_seconds, 3),
        "plan": [describe(op) for op in result.plan.operations] if result.plan and result.status == "dry-run" else None,
        "rejections": [rejected(r) for r in result.plan.rejections] if result.plan else [],
    }


def store_lines(state: dict[str, Any]) -> Iterator[str]:
    """The exported store as aligned text."""
    users = state["users"]
    yield f"users ({len(users)})"
    for u in users:
        status = "active" if u["active"] else "inactive"
        owner = f"{u['managed_by']}:{u['external_id']}" if u["managed_by"] else "local"
        yield f"  {u['email']:<40} {status:<8} {owner:<20} {u['display_name'] or ''}"
    groups = state["groups"]
    yield f"groups ({len(groups)})"
    for g in groups:
        owner = f"{g['managed_by']}:{g['external_id']}" if g["managed_by"] else "local"
        members = ", ".join(g["members"]) or "-"
        yield f"  {g['name']:<25} {owner:<20} {members}"
    invites = state["invites"]
    yield f"invites ({len(invites)})"
    for i in invites:
        yield f"  {i['email']:<40} {i['status']}"


# --- tables ----------------------------------------------------------------------------------

TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


def when(at: datetime | None) -> str:
    """Every timestamp the CLI prints, in one format (UTC)."""
    if at is None:
        return "-"
    if at.tzinfo is not None:
        at = at.astimezone(UTC)
    return at.strftime(TIME_FORMAT)


def table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> Iterator[str]:
    """Aligned columns under a header; the last column is not padded."""
    cells = [[str(c) for c in header]] + [["" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    for row in cells:
        yield "  ".join(c.ljust(w) if i < len(row) - 1 else c for i, (c, w) in enumerate(zip(row, widths))).rstrip()


def runs_table(rows: Sequence[RunView]) -> Iterator[str]:
    def changes(run: RunView) -> str:
        parts = [f"{k}={v}" for k, v in sorted(run.counts.items()) if not k.startswith("outcome:")]
        text = ", ".join(parts) or "-"
        return f"{text}; {run.error}" if run.error else text

    yield from table(
        ("RUN", "STARTED (UTC)", "DIRECTORY", "STATUS", "MODE", "TRIGGER", "CHANGES"),
        ((r.id, when(r.started_at), r.directory, r.status, r.mode, r.trigger, changes(r)) for r in rows),
    )


def events_table(rows: Sequence[EventView], *, with_run: bool) -> Iterator[str]:
    def change(e: EventView) -> str:
        if not (e.old or e.new):
            return ""
        return f"{_pairs(e.old)} -> {_pairs(e.new)}"

    def why(e: EventView) -> str:
        if e.reason and e.detail:
            return f"{e.reason}: {e.detail}"
        return e.reason or e.detail or ""

    header = ("RUN", "AT (UTC)") if with_run else ("SEQ",)
    yield from table(
        (*header, "OUTCOME", "ACTION", "TARGET", "CHANGE", "REASON"),
        (((e.run_id if e.run_id is not None else "-", when(e.at)) if with_run else (e.seq,))
         + (e.outcome, e.action, e.target, change(e), why(e)) for e in rows),
    )


def _pairs(values: dict[str, Any] | None) -> str:
    if not values:
        return "{}"
    return "{" + ", ".join(f"{k}={v!r}" for k, v in sorted(values.items())) + "}"


def run_json(run: RunView) -> dict[str, Any]:
    return {name: getattr(run, name) for name in (
        "id", "directory", "trigger", "mode", "dry_run", "status", "started_at", "finished_at",
        "counts", "error", "allow_deactivations")}


def event_json(event: EventView) -> dict[str, Any]:
    return {name: getattr(event, name) for name in (
        "id", "run_id", "directory", "seq", "action", "kind", "target", "outcome", "reason", "detail",
        "old", "new", "at")}
