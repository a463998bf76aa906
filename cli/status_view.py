"""`dirsync status` as text for a person and as JSON for machines (the facts come from
`service.status`)."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Any

from service.status import DirectoryStatus


def as_json(statuses: list[DirectoryStatus]) -> str:
    """Machine-readable: a JSON list, times as ISO 8601 UTC, sorted by name."""

    def encode(value: Any) -> Any:
        if isinstance(value, datetime):
            return value.isoformat()
        raise TypeError(type(value).__name__)

    return json.dumps([asdict(s) for s in statuses], default=encode, indent=2, sort_keys=True)


def render_text(statuses: list[DirectoryStatus], now: datetime) -> str:
    """For a person: one block per directory, the problem first when there is one."""
    if not statuses:
        return "No directories configured."
    blocks = []
    for s in statuses:
        state = _headline(s)
        lines = [f"{s.name} ({s.kind}): {state}"]
        if s.quarantined:
            why = "authentication refused" if s.auth_failure else f"{s.consecutive_failures} failed cycles in a row"
            lines.append(f"  quarantined: {why}")
            if s.last_error:
                lines.append(f"  last error:  {s.last_error}")
            lines.append(f"  next try:    {_when(s.next_attempt, now)}   (dirsync resume {s.name} to retry now)")
        elif s.consecutive_failures:
            lines.append(f"  failing:     {s.consecutive_failures} failed cycle(s) in a row; last error: {s.last_error}")
        if s.overdue_seconds is not None:
            lines.append(f"  overdue by {_age(s.overdue_seconds)}: {s.overdue_reason}")
        elif s.overdue_reason is not None:
            lines.append(f"  overdue:     never run, due since it was configured; {s.overdue_reason}")
        if s.halted:
            lines.append(f"  halted:      {s.staged_deactivations} deactivations awaiting approval"
                         f" (run {s.staged_run_id}, since {_when(s.staged_since, now)})")
            lines.append(f"  decide:      dirsync staged {s.name}, then dirsync approve|reject {s.staged_run_id}")
        if s.kind == "scim":
            expires = _when(s.scim_token_expires_at, now) if s.scim_token_expires_at else "no token"
            lines.append(f"  SCIM token:  expires {expires}")
            if s.scim_token_warning:
                lines.append(f"  warning:     {s.scim_token_warning}")
        r = s.last_run
        if r is None:
            lines.append("  last run:    never")
        else:
            counts = _counts(r.counts)
            mode = f" {r.mode}" if r.mode else ""
            lines.append(f"  last run:    {r.status}{mode}, {_when(r.finished_at or r.started_at, now)} ({counts})")
            if r.error and r.status not in ("succeeded",) and not s.quarantined:
                lines.append(f"  reason:      {r.error}")
            if r.status == "failed" and r.trigger == "cli":
                lines.append("  (a manual run: its failure does not count towards quarantine)")
        lines.append(f"  succeeded:   {_when(s.last_success_at, now) if s.last_success_at else 'never'}")
        if s.next_due is not None:
            lines.append(f"  next cycle:  {s.next_mode}, {_when(s.next_due, now)}")
        if s.watermark_at is not None:
            lines.append(f"  watermark:   {_age(s.watermark_age_seconds)} old")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def _counts(counts: dict[str, int]) -> str:
    """Operations by action; the apply outcomes only when some failed."""
    parts = [f"{k} {v}" for k, v in sorted(counts.items()) if v and ":" not in k]
    if counts.get("outcome:failed"):
        parts.append(f"{counts['outcome:failed']} failed")
    return ", ".join(parts) or "no changes"


def _headline(s: DirectoryStatus) -> str:
    if not s.configured:
        return "NOT CONFIGURED (known to the store only)"
    if not s.enabled:
        return "DISABLED"
    if s.quarantined:
        return "QUARANTINED"
    if s.halted:
        return "HALTED (waiting for approval)"
    if s.consecutive_failures:
        return "FAILING"
    if s.overdue_seconds is not None or s.overdue_reason is not None:
        return "OVERDUE"
    if s.last_run is None:
        return "never run"
    if s.last_run.status == "failed":
        return "ok (last manual run failed)" if s.last_run.trigger == "cli" else "LAST RUN FAILED"
    return "ok"


def _when(at: datetime | None, now: datetime) -> str:
    if at is None:
        return "now"
    stamp = at.strftime("%Y-%m-%d %H:%M:%SZ")
    delta = (at - now).total_seconds()
    if abs(delta) < 1:
        return f"{stamp} (now)"
    return f"{stamp} (in {_age(delta)})" if delta > 0 else f"{stamp} ({_age(-delta)} ago)"


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    left = timedelta(seconds=int(seconds))
    days, rest = left.days, left.seconds
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours}h"
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m"
    return f"{secs}s"


# --- reading the store -------------------------------------------------------------------
# Plain queries on the store's models; nothing here writes.


