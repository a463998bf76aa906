"""What one cycle returns (`RunResult`) and the messages its result carries: a dry run's
would-be halt, a halt's way to decide the staged plan, a partial apply's count."""

from __future__ import annotations

from dataclasses import dataclass, field

from reconcile.model import Plan
from reconcile.outcome import UserOutcome

# How a dry run says a safety limit would halt its plan.
DRY_RUN_HALT = "halted: "


@dataclass(frozen=True)
class RunResult:
    """What one cycle did. `status` is succeeded, failed, halted, skipped, refused or dry-run."""

    directory: str
    run_id: int | None
    status: str
    mode: str
    counts: dict[str, int] = field(default_factory=dict)
    error: str | None = None
    auth_failure: bool = False
    duration_seconds: float = 0.0
    plan: Plan | None = None
    # Provision on demand: what happened to the user asked for (None for a cycle).
    user_outcome: UserOutcome | None = None

    @property
    def ok(self) -> bool:
        return self.status in ("succeeded", "skipped", "dry-run")

    @property
    def would_halt(self) -> bool:
        """A dry run whose plan a safety limit would stage."""
        return self.status == "dry-run" and self.error is not None and self.error.startswith(DRY_RUN_HALT)


def partial_error(failed: int, conflicts: int, run_id: int | None) -> str:
    parts = [f"{failed} failed" if failed else "", f"{conflicts} conflicted" if conflicts else ""]
    return (f"{' and '.join(p for p in parts if p)} of this cycle's operations; the rest applied and"
            f" the next cycle plans again; see `dirsync events {run_id}`")


def halt_message(name: str, run_id: int, reason: str, refused_approval: bool) -> str:
    note = "; --allow-deactivations does not apply an empty read" if refused_approval else ""
    return (f"halted by a safety limit: {reason}{note}; nothing applied. Review with `dirsync staged {name}`,"
            f" then `dirsync approve {run_id}` or `dirsync reject {run_id}`")
