"""End to end: cycles of an Entra directory through the engine on SQLite, with the real
msal client and connector against the simulator; the store is compared with the tenant."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from freezegun import freeze_time

from config import Settings, parse
from simulators.faults import Fault
from simulators.graph import GraphSimulator, GraphTenant
from reconcile.cycle import run_cycle, sync_user
from store import Store, open_store
from store.export import export_state
from tests.graph.conftest import connect, expected


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(f"sqlite:///{tmp_path / 'dirsync.db'}", check_schema=False)
    opened.upgrade()
    yield opened
    opened.dispose()


def _settings(sim: GraphSimulator, store_url: str, **extra: Any) -> Settings:
    return parse({"store": {"url": store_url},
                  "directories": {"entra": sim.directory_table(**extra)}}, {})


def _cycle(sim: GraphSimulator, store: Store, **options: Any) -> Any:
    settings = _settings(sim, str(store.engine.url))
    connector = connect(sim, **{k: v for k, v in options.items() if k in ("max_retries",)})
    try:
        return run_cycle(settings, "entra", store=store, connector=connector,
                         allow_deactivations=True)
    finally:
        connector.close()


def _export(store: Store) -> dict[str, Any]:
    with store.session() as session:
        return export_state(session)


def _store_view(store: Store) -> tuple[dict[str, tuple[str, bool]], dict[str, set[str]]]:
    """(external id -> (email, active)) of managed users and (group name -> member emails)."""
    state = _export(store)
    users = {u["external_id"]: (u["email"], u["active"]) for u in state["users"]
             if u["managed_by"] == "entra"}
    groups = {g["name"]: set(g["members"]) for g in state["groups"] if g["managed_by"] == "entra"}
    return users, groups


def _tenant_view(t: GraphTenant) -> tuple[dict[str, tuple[str, bool]], dict[str, set[str]]]:
    view = expected(t)
    users = {uid: (email, active) for uid, (email, active, _, _) in view.users.items()}
    emails = {uid: email for uid, (email, _) in users.items()}
    groups = {name: {emails[m] for m in members if m in emails and users[m][1]}
              for name, members in view.groups.values() if name}
    return users, groups


def _active_only(view: tuple[dict[str, tuple[str, bool]], dict[str, set[str]]]
                 ) -> tuple[dict[str, str], dict[str, set[str]]]:
    users, groups = view
    return {uid: email for uid, (email, active) in users.items() if active}, groups


def test_first_cycle_brings_the_store_to_the_tenant(sim: GraphSimulator, store: Store) -> None:
    result = _cycle(sim, store)

    assert result.status == "succeeded", result.error
    assert _active_only(_store_view(store)) == _active_only(_tenant_view(sim.tenant))


def test_incremental_cycles_follow_every_kind_of_change(sim: GraphSimulator,
                                                       store: Store) -> None:
    t = sim.tenant
    assert _cycle(sim, store).status == "succeeded"
    g0, g1 = t.group_order[0], t.group_order[1]
    renamed, disabled, deleted = t.user_order[1], t.user_order[2], t.user_order[3]
    t.rename_upn(renamed, "renamed.person@contoso.example")
    t.disable(disabled)
    t.soft_delete(deleted)
    hired = t.hire("hired.person@contoso.example", groups=[g0])
    t.rename_group(g1, "Renamed group")
    t.remove_member(g0, sorted(t.groups[g0].members - {hired})[0])

    result = _cycle(sim, store)

    assert (result.status, result.mode) == ("succeeded", "incremental"), result.error
    users, groups = _store_view(store)
    assert users[renamed] == ("renamed.person@contoso.example", True)
    assert users[disabled][1] is False
    assert users[deleted][1] is False
    assert users[hired] == ("hired.person@contoso.example", True)
    assert _active_only((users, groups)) == _active_only(_tenant_view(t))


def test_failed_cycle_changes_nothing_and_the_next_one_converges(sim: GraphSimulator,
                                                                store: Store) -> None:
    t = sim.tenant
    assert _cycle(sim, store).status == "succeeded"
    before = _export(store)
    for uid in t.user_order[:10]:
        t.soft_delete(uid)
    sim.inject(Fault.HTTP_500, endpoint="groups.delta", times=1000)

    failed = _cycle(sim, store, max_retries=1)

    assert failed.status == "failed"
    assert "groups/delta" in (failed.error or "")
    assert _export(store) == before
    sim.clear_faults()
    assert _cycle(sim, store).status == "succeeded"
    assert _active_only(_store_view(store)) == _active_only(_tenant_view(t))


def test_expired_delta_link_makes_a_full_cycle_that_converges(sim: GraphSimulator,
                                                             store: Store) -> None:
    t = sim.tenant
    assert _cycle(sim, store).status == "succeeded"
    t.hard_delete(t.user_order[4])
    t.expire_delta_tokens()

    result = _cycle(sim, store)

    assert (result.status, result.mode) == ("succeeded", "full"), result.error
    assert _active_only(_store_view(store)) == _active_only(_tenant_view(t))


def test_auth_failure_fails_the_cycle_as_an_auth_failure(sim: GraphSimulator,
                                                        store: Store) -> None:
    sim.tenant.consent_revoked = True

    result = _cycle(sim, store)

    assert result.status == "failed" and result.auth_failure


def test_provision_on_demand_brings_one_new_user_and_their_groups(sim: GraphSimulator,
                                                                  store: Store) -> None:
    t = sim.tenant
    assert _cycle(sim, store).status == "succeeded"
    gid = t.group_order[0]
    uid = t.hire("on.demand@contoso.example", groups=[gid])
    settings = _settings(sim, str(store.engine.url))
    connector = connect(sim)
    sim.reset_counts()

    result = sync_user(settings, "entra", "On.Demand@contoso.example", store=store,
                       connector=connector)

    assert result.status == "succeeded", result.error
    users, groups = _store_view(store)
    assert users[uid] == ("on.demand@contoso.example", True)
    assert "on.demand@contoso.example" in groups[t.groups[gid].display_name]
    assert "users.delta" not in sim.counts()  # no full read for one user


def test_a_reenabled_user_gets_their_groups_back_in_an_incremental_cycle(sim: GraphSimulator, store: Store) -> None:
    _cycle(sim, store)
    tenant = sim.tenant
    group = next(g for g in tenant.group_order if tenant.groups[g].members)
    user = sorted(tenant.groups[group].members)[0]
    tenant.disable(user)
    _cycle(sim, store)
    tenant.enable(user)

    result = _cycle(sim, store)

    assert result.mode == "incremental"
    assert _active_only(_store_view(store)) == _active_only(_tenant_view(tenant))


def test_returning_users_who_share_a_group_have_it_read_once(sim: GraphSimulator, store: Store) -> None:
    _cycle(sim, store)
    tenant = sim.tenant
    group = max(tenant.group_order, key=lambda g: len(tenant.groups[g].members))
    returning = sorted(tenant.groups[group].members)[:3]
    for user in returning:
        tenant.disable(user)
    _cycle(sim, store)
    for user in returning:
        tenant.enable(user)
    before = max(r.index for r in sim.requests())

    result = _cycle(sim, store)

    assert result.mode == "incremental"
    requests = [r for r in sim.requests() if r.index > before]
    assert sum(r.endpoint == "users.memberOf" for r in requests) == len(returning)  # each one's groups
    # Their shared group's members are read once, not once per returning user.
    assert sum(r.endpoint == "groups.members" and f"/groups/{group}/" in r.target for r in requests) == 1
    assert _active_only(_store_view(store)) == _active_only(_tenant_view(tenant))


def _read_user_requests(sim: GraphSimulator, since: int) -> int:
    """Requests of `read_user` (a user by key, their memberOf) after request `since`."""
    return sum(r.endpoint in ("users", "users.memberOf") for r in sim.requests() if r.index > since)


def test_a_hire_created_since_the_last_cycle_gets_every_group_without_reading_the_user(
    sim: GraphSimulator, store: Store,
) -> None:
    tenant = sim.tenant
    g0, g1 = tenant.group_order[0], tenant.group_order[1]
    with freeze_time("2026-03-02 09:00:00") as frozen:
        assert _cycle(sim, store).status == "succeeded"
        frozen.tick(timedelta(minutes=20))
        hired = tenant.hire("new.hire@contoso.example", groups=[g0, g1])
        frozen.tick(timedelta(minutes=20))
        since = sim.request_index

        result = _cycle(sim, store)

    assert (result.status, result.mode) == ("succeeded", "incremental"), result.error
    assert _read_user_requests(sim, since) == 0
    users, groups = _store_view(store)
    assert users[hired] == ("new.hire@contoso.example", True)
    for gid in (g0, g1):
        assert "new.hire@contoso.example" in groups[tenant.groups[gid].display_name]
    assert _active_only((users, groups)) == _active_only(_tenant_view(tenant))


def test_a_user_created_before_the_last_cycle_and_enabled_now_regains_the_groups_added_while_disabled(
    sim: GraphSimulator, store: Store,
) -> None:
    tenant = sim.tenant
    gid = tenant.group_order[0]
    with freeze_time("2026-03-02 09:00:00") as frozen:
        assert _cycle(sim, store).status == "succeeded"  # the last complete read
        frozen.tick(timedelta(minutes=20))
        hired = tenant.hire("late.starter@contoso.example", enabled=False)
        frozen.tick(timedelta(minutes=20))
        assert _cycle(sim, store).status == "succeeded"  # seen disabled: not created here
        frozen.tick(timedelta(minutes=20))
        tenant.add_member(gid, hired)  # added while disabled: this cycle drops it
        frozen.tick(timedelta(minutes=20))
        assert _cycle(sim, store).status == "succeeded"
        frozen.tick(timedelta(minutes=20))
        tenant.enable(hired)  # the groups delta will not mention that membership again
        frozen.tick(timedelta(minutes=20))
        since = sim.request_index

        result = _cycle(sim, store)

    assert (result.status, result.mode) == ("succeeded", "incremental"), result.error
    users, groups = _store_view(store)
    assert users[hired] == ("late.starter@contoso.example", True)
    assert "late.starter@contoso.example" in groups[tenant.groups[gid].display_name]
    assert _active_only((users, groups)) == _active_only(_tenant_view(tenant))
    assert _read_user_requests(sim, since) == 2  # the user, then their groups
