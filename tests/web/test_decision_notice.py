"""The console's notice after an approval says everything the decision reports: what it
applied, dropped, failed, and what it left for later (its note)."""

from __future__ import annotations

from reconcile.apply import ApplyResult
from reconcile.staging import Decision
from web.console.actions import _decided


def test_an_approval_notice_carries_the_decisions_note() -> None:
    note = "1 approved change held: 'Administrators' must keep an active member (R4); see `dirsync events 9`"
    decision = Decision(7, "okta", "approved", "ann@example.com", run_id=9, applied=ApplyResult(), note=note)
    text = _decided(decision)
    assert text.startswith("Staged plan of run 7 approved by ann@example.com: 0 operations applied in run 9.")
    assert text.endswith(note)


def test_a_rejection_notice_applies_nothing() -> None:
    assert _decided(Decision(7, "okta", "rejected", "ann@example.com")) == (
        "Staged plan of run 7 rejected by ann@example.com; nothing applied.")
