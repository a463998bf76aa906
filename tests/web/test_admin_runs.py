"""An admin's action is a run of mode `admin`: the log shows it, but it is no cycle of the
directory (status's last run, and the metrics, leave it out)."""

from __future__ import annotations

from config import Settings
from reconcile import clock
from service.audit import Audit
from service.directories import end_quarantine
from service.status import collect, metrics_facts
from service.heartbeat import Heartbeats
from service.sync import sync
from store import Store


def test_an_admin_action_is_not_the_directorys_last_run(settings: Settings, store: Store) -> None:
    cycle = sync(settings, store, "hr")
    end_quarantine(settings, store, "hr", audit=Audit("ann@example.com"))

    [hr] = [s for s in collect(settings, store, clock.now(), Heartbeats()) if s.name == "hr"]

    assert hr.last_run is not None and hr.last_run.id == cycle.run_id


def test_admin_actions_are_not_counted_as_cycles(settings: Settings, store: Store) -> None:
    sync(settings, store, "hr")
    end_quarantine(settings, store, "hr", audit=Audit("ann@example.com"))

    facts = metrics_facts(settings, store, heartbeats=Heartbeats())

    assert facts.cycles == {("hr", "succeeded"): 1}


def test_without_an_audit_nothing_more_is_recorded(settings: Settings, store: Store) -> None:
    from service.run_series import recent_runs

    end_quarantine(settings, store, "hr")

    assert recent_runs(store, "hr") == []
