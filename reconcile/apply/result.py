"""What an apply did: one `Failure` per operation not written, and the `ApplyResult`
counts (per outcome and per action) a run records. Also the two shapes the writers pass
around: an operation with its position in the plan, and its outcome with a reason."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from reconcile.model import Action, Operation
from store.models import Outcome

_Result = tuple[Outcome, str | None]
_Indexed = tuple[int, Operation]


@dataclass(frozen=True, slots=True)
class Failure:
    """One operation that could not be applied."""

    seq: int
    action: Action
    target: str
    reason: str
    outcome: Outcome = Outcome.FAILED


@dataclass(frozen=True)
class ApplyResult:
    """What an apply did: counts per outcome (`applied`, `noop`, `failed`, `rejected`),
    per action and outcome, and the failures themselves."""

    outcomes: Mapping[str, int] = field(default_factory=dict)
    actions: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    failures: tuple[Failure, ...] = ()
    # Why the apply stopped before its end (the directory was disabled or re-enabled).
    aborted: str | None = None

    @property
    def applied(self) -> int:
        return self.outcomes.get(Outcome.APPLIED.value, 0)

    @property
    def noop(self) -> int:
        return self.outcomes.get(Outcome.NOOP.value, 0)

    @property
    def failed(self) -> int:
        return self.outcomes.get(Outcome.FAILED.value, 0)

    @property
    def rejected(self) -> int:
        return self.outcomes.get(Outcome.REJECTED.value, 0)

    @property
    def conflicts(self) -> int:
        return self.outcomes.get(Outcome.CONFLICT.value, 0)

    def counts(self) -> dict[str, int]:
        """Flat counts for a run row: every outcome, and `<action>.<outcome>` pairs."""
        flat = {o.value: self.outcomes.get(o.value, 0) for o in Outcome if o is not Outcome.STAGED}
        for action, per in self.actions.items():
            for outcome, n in per.items():
                flat[f"{action}.{outcome}"] = n
        return dict(sorted(flat.items()))
