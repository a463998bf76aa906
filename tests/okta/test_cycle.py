"""End to end: cycles of an Okta directory through the engine on SQLite, with the real SDK and
connector against the simulator; the store is compared with the org after every cycle."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from config import Settings, parse
from connectors.okta import OktaConnector
from simulators.clocks import ManualClock
from simulators.faults import Fault
from simulators.okta import OktaOrg, OktaSimulator
from reconcile.cycle import RunResult, run_cycle
from store import Store, open_store
from store.export import export_state
from tests.okta.conftest import MakeConnector
from tests.okta.expected import app_users, org_users

View = tuple[dict[str, str], dict[str, set[str]]]


@pytest.fixture()
def store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(f"sqlite:///{tmp_path / 'dirsync.db'}", check_schema=False)
    opened.upgrade()
    yield opened
    opened.dispose()


def settings_for(sim: OktaSimulator, store: Store, **keys: Any) -> Settings:
    table = {"kind": "okta", "org_url": sim.base_url, "token_env": "OKTA_TEST_TOKEN", "ca_bundle": sim.ca_path, **keys}
    return parse({"store": {"url": str(store.engine.url)}, "directories": {"okta": table}}, {})


class Engine:
    """Runs cycles of directory `okta` the way the worker does, one cycle-length apart."""

    def __init__(self, make_connector: MakeConnector, sim: OktaSimulator, store: Store, clock: ManualClock,
                 **keys: Any) -> None:
        self.settings = settings_for(sim, store, **keys)
        self.make_connector = make_connector
        self.store = store
        self.clock = clock
        self.keys = keys

    def cycle(self, connector: OktaConnector | None = None, **overrides: Any) -> RunResult:
        connector = connector or self.make_connector(**{**self.keys, **overrides})
        result = run_cycle(self.settings, "okta", store=self.store, connector=connector, allow_deactivations=True)
        self.clock.advance(minutes=40)
        return result

    def view(self) -> View:
        """Active managed users (external id -> email) and managed groups (name -> member emails)."""
        with self.store.session() as session:
            state = export_state(session)
        users = {u["external_id"]: u["email"] for u in state["users"] if u["managed_by"] == "okta" and u["active"]}
        groups = {g["name"]: set(g["members"]) for g in state["groups"] if g["managed_by"] == "okta"}
        return users, groups


def org_view(org: OktaOrg, app_id: str | None = None) -> View:
    scope = app_users(org, app_id) if app_id else org_users(org)
    emails = {uid: org.users[uid]["profile"]["email"] for uid, active in scope.items() if active}
    group_ids = sorted(org.app_groups[app_id]) if app_id else [g for g in org.group_ids if g != org.everyone_id]
    groups = {org.groups[g]["profile"]["name"]: {emails[m] for m in org.members[g] if m in emails} for g in group_ids}
    return emails, groups


@pytest.fixture()
def engine(make_connector: MakeConnector, sim: OktaSimulator, store: Store, clock: ManualClock) -> Engine:
    return Engine(make_connector, sim, store, clock)


def test_first_cycle_brings_the_store_to_the_org(engine: Engine, org: OktaOrg) -> None:
    result = engine.cycle()

    assert (result.status, result.mode) == ("succeeded", "full"), result.error
    assert engine.view() == org_view(org)


def test_incremental_cycles_follow_every_kind_of_change(engine: Engine, org: OktaOrg, sim: OktaSimulator) -> None:
    assert engine.cycle().status == "succeeded"
    group = org.group_ids[1]
    steps = [
        lambda: org.hire("Ada", "Lovelace", groups=[group]),
        lambda: org.rename(org.user_ids[2], email="renamed@example.com"),
        lambda: org.suspend(org.user_ids[3]),
        lambda: org.unsuspend(org.user_ids[3]),
        lambda: org.deactivate(org.user_ids[4]),
        lambda: org.leave(org.user_ids[5], delete=True),
        lambda: org.remove_member(group, sorted(org.members[group])[0]),
        lambda: org.rename_group(org.group_ids[2], "Renamed Team"),
        lambda: org.create_group("Newcomers"),
        lambda: org.delete_group(org.group_ids[3]),
    ]
    for step in steps:
        step()
        sim.reset_counts()

        result = engine.cycle()

        assert (result.status, result.mode) == ("succeeded", "incremental"), result.error
        assert sum(sim.counts().values()) <= 3 + len(org.group_ids)  # never a page of every user
        users, groups = engine.view()
        expected_users, expected_groups = org_view(org)
        assert users == expected_users
        # a deleted group is unlinked (kept locally), never deleted (R7)
        assert {n: m for n, m in groups.items() if n in expected_groups} == expected_groups, \
            _debug_diff((users, groups), (expected_users, expected_groups))


def test_a_returning_users_groups_are_read_once_by_the_read_not_again_by_the_engine(
    engine: Engine, org: OktaOrg, sim: OktaSimulator
) -> None:
    member = next(uid for uid in org.user_ids if any(uid in org.members[g] for g in org.group_ids
                                                      if g != org.everyone_id))
    engine.cycle()
    org.suspend(member)
    engine.cycle()  # deactivated here: out of every group (R7)
    org.unsuspend(member)
    sim.reset_counts()

    engine.cycle()

    assert engine.view() == org_view(org)
    counts = sim.counts()
    # the read lists the user's groups to bring their memberships back; the engine, told so,
    # reads neither the user nor the members of those groups again
    assert counts.get("users.groups") == 1 and "groups.users" not in counts, counts


def test_a_second_cycle_without_changes_plans_nothing(engine: Engine) -> None:
    engine.cycle()

    result = engine.cycle()

    assert result.status == "succeeded" and result.plan is not None and result.plan.is_empty


def test_a_failed_read_deactivates_nobody_and_the_next_cycle_converges(
    engine: Engine, org: OktaOrg, sim: OktaSimulator
) -> None:
    engine.cycle()
    before = engine.view()
    for uid in org.user_ids[:3]:
        org.deactivate(uid)
    sim.inject(Fault.TRUNCATED, endpoint="users.list", times=5)

    failed = engine.cycle(max_retries=1)

    assert failed.status == "failed" and engine.view() == before
    assert engine.cycle().status == "succeeded"
    assert engine.view() == org_view(org)


def test_a_rejected_record_leaves_its_local_twin_untouched(engine: Engine, org: OktaOrg) -> None:
    engine.cycle()
    odd = org.user_ids[6]
    email = org.users[odd]["profile"]["email"]
    org.set_status(odd, "HIBERNATING")

    result = engine.cycle(connector=None)

    assert result.status == "succeeded"
    assert engine.view()[0][odd] == email


def test_app_scoped_cycles_follow_assignments(
    make_connector: MakeConnector, sim: OktaSimulator, store: Store, clock: ManualClock, org: OktaOrg
) -> None:
    app = org.app_id
    assert app is not None
    engine = Engine(make_connector, sim, store, clock, app_id=app)
    assert engine.cycle().status == "succeeded"
    assert engine.view() == org_view(org, app)
    direct = sorted(org.app_users[app])[0]
    outsider = next(u for u in org.user_ids if u not in org.app_user_ids(app)[1])

    org.unassign_user(app, direct)
    org.assign_user(app, outsider)
    result = engine.cycle()

    assert (result.status, result.mode) == ("succeeded", "incremental"), result.error
    assert engine.view() == org_view(org, app)


def _debug_diff(a: View, b: View) -> str:
    users_a, groups_a = a
    users_b, groups_b = b
    lines = [f"users only in store: {set(users_a.items()) - set(users_b.items())}",
             f"users only in org: {set(users_b.items()) - set(users_a.items())}"]
    for name in sorted(set(groups_a) | set(groups_b)):
        if groups_a.get(name) != groups_b.get(name):
            lines.append(f"{name}: store-only {groups_a.get(name, set()) - groups_b.get(name, set())} "
                         f"org-only {groups_b.get(name, set()) - groups_a.get(name, set())}")
    return "\n".join(lines)
