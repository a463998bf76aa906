"""Who did what: an action a person takes on a directory outside a cycle (resume, reject
a staged plan, enable, disable, a new SCIM token) is recorded as a run of mode `admin`
with the person as its actor and one event saying what was done, so the provisioning log
shows it beside the cycles. Cycles a person starts carry the actor on their own run.

A service operation records its action when the face passes an `Audit` (the console
always does); without one it records only what it did before.
"""

from __future__ import annotations

from dataclasses import dataclass

from store import Store, record_admin_action

CONSOLE = "console"


@dataclass(frozen=True, slots=True)
class Audit:
    """The person acting (`actor`, e.g. a console admin's email) and the face (`trigger`)."""

    actor: str
    trigger: str = CONSOLE


def record(store: Store, audit: Audit | None, directory: str, action: str, detail: str,
           *, target: str | None = None) -> int | None:
    """Record `action` on `directory` for `audit` (nothing without one); the run id."""
    if audit is None:
        return None
    with store.session(write=True) as session:
        return record_admin_action(session, directory=directory, action=action, actor=audit.actor,
                                   trigger=audit.trigger, detail=detail, target=target)
