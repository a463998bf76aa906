"""App scope under random admin actions: after every incremental cycle the store holds
exactly the app's active users and its groups' members, as a full read would. The actions
are those that move a user's scope or groups (memberships, direct and group assignments,
deactivation, suspension, hires) and renames, a few between cycles; some cycles start
inside the previous read's overlap. Half the group assignments reach their members (enter
them in the app) only later, before the next cycle but one, as Okta's background job does.
Each seed takes the kept users and the log's path."""

from __future__ import annotations

import random

import pytest

from simulators.clocks import ManualClock
from simulators.okta import OktaOrg, OktaSimulator
from tests.okta.test_app_scope import app, engine  # noqa: F401  (fixtures)
from tests.okta.test_cycle import Engine, org_view, store  # noqa: F401  (the store fixture)


def act(org: OktaOrg, app: str, rng: random.Random, step: int, hires: list[str]) -> None:
    """One random admin action on a random user (often one hired during the test: a hire
    deactivated and reactivated before reads see it settle) and group."""
    user = rng.choice(hires if hires and rng.random() < 0.3 else org.user_ids)
    group = rng.choice([g for g in org.group_ids if g != org.everyone_id])
    status = org.users[user]["status"]
    action = rng.randrange(10)
    if action == 0:
        org.add_member(group, user)
    elif action == 1:
        org.remove_member(group, user)
    elif action == 2:
        org.assign_user(app, user)
    elif action == 3:
        org.unassign_user(app, user)
    elif action == 4 and group in org.app_groups[app]:
        org.unassign_group(app, group)
    elif action == 4:  # half the time Okta applies it to the members later (action 9)
        org.assign_group(app, group, fan_out=rng.random() < 0.5)
    elif action == 5:
        org.rename(user, last_name=f"Renamed{step}x{rng.randrange(100)}")
    elif action == 6:
        (org.reactivate if status == "DEPROVISIONED" else org.deactivate)(user)
    elif action == 7 and status in ("ACTIVE", "SUSPENDED"):
        (org.unsuspend if status == "SUSPENDED" else org.suspend)(user)
    elif action == 8:
        hired = org.hire(f"Hire{step}x{rng.randrange(1000)}", "Random", groups=[group])
        hires.append(hired)
        if rng.random() < 0.5:
            org.assign_user(app, hired)
    elif action == 9 and org.pending_fan_out:
        org.fan_out_group(*rng.choice(sorted(org.pending_fan_out)))


@pytest.mark.parametrize("seed", range(16))
def test_every_incremental_cycle_leaves_the_store_as_a_full_read_would(
    engine: Engine, org: OktaOrg, sim: OktaSimulator, clock: ManualClock, app: str, seed: int  # noqa: F811
) -> None:
    rng = random.Random(seed)
    hires: list[str] = []
    assert engine.cycle().status == "succeeded"
    for step in range(8):
        for app_id, group in sorted(org.pending_fan_out):  # Okta's job reaches them within a cycle
            org.fan_out_group(app_id, group)
        for _ in range(rng.randint(1, 8)):
            act(org, app, rng, step, hires)
        if rng.random() < 0.3:  # the next read starts inside the last one's overlap
            clock.advance(minutes=-rng.randint(1, 40))

        result = engine.cycle()

        assert (result.status, result.mode) == ("succeeded", "incremental"), result.error
        assert engine.view() == org_view(org, app), f"seed {seed}, after step {step}"
