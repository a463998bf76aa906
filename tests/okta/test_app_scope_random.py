"""App scope under random admin actions: after every incremental cycle the store holds
exactly the app's active users and its groups' members, as a full read would. The actions
are those that move a user's scope or groups (memberships, direct and group assignments,
deactivation, suspension, hires) and renames, a few between cycles; some cycles start
inside the previous read's overlap. Each seed takes the kept users and the log's path."""

from __future__ import annotations

import random

import pytest

from simulators.clocks import ManualClock
from simulators.okta import OktaOrg, OktaSimulator
from tests.okta.test_app_scope import app, engine  # noqa: F401  (fixtures)
from tests.okta.test_cycle import Engine, org_view, store  # noqa: F401  (the store fixture)


def act(org: OktaOrg, app: str, rng: random.Random, step: int) -> None:
    """One random admin action on a random user and group."""
    user = rng.choice(org.user_ids)
    group = rng.choice([g for g in org.group_ids if g != org.everyone_id])
    status = org.users[user]["status"]
    action = rng.randrange(9)
    if action == 0:
        org.add_member(group, user)
    elif action == 1:
        org.remove_member(group, user)
    elif action == 2:
        org.assign_user(app, user)
    elif action == 3:
        org.unassign_user(app, user)
    elif action == 4:
        (org.unassign_group if group in org.app_groups[app] else org.assign_group)(app, group)
    elif action == 5:
        org.rename(user, last_name=f"Renamed{step}x{rng.randrange(100)}")
    elif action == 6:
        (org.reactivate if status == "DEPROVISIONED" else org.deactivate)(user)
    elif action == 7 and status in ("ACTIVE", "SUSPENDED"):
        (org.unsuspend if status == "SUSPENDED" else org.suspend)(user)
    elif action == 8:
        hired = org.hire(f"Hire{step}x{rng.randrange(1000)}", "Random", groups=[group])
        if rng.random() < 0.5:
            org.assign_user(app, hired)


@pytest.mark.parametrize("seed", range(16))
def test_every_incremental_cycle_leaves_the_store_as_a_full_read_would(
    engine: Engine, org: OktaOrg, sim: OktaSimulator, clock: ManualClock, app: str, seed: int  # noqa: F811
) -> None:
    rng = random.Random(seed)
    assert engine.cycle().status == "succeeded"
    for step in range(8):
        for _ in range(rng.randint(1, 8)):
            act(org, app, rng, step)
        if rng.random() < 0.3:  # the next read starts inside the last one's overlap
            clock.advance(minutes=-rng.randint(1, 40))

        result = engine.cycle()

        assert (result.status, result.mode) == ("succeeded", "incremental"), result.error
        assert engine.view() == org_view(org, app), f"seed {seed}, after step {step}"
