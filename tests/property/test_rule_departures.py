"""Cases the property tests found where the product departed from docs/rules.md, each kept
as a test of the rule it broke. A departure found and not yet fixed goes here as a strict
xfail (`raises=AssertionError`), with an `assume` that keeps the case out of the random
domain, until the fix drops both: none is open now.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from reconcile.cycle import run_cycle
from store import Store
from tests.property.oracle import ADMIN, Model
from tests.property.common import reset
from tests.property.test_wide_domain import (
    CRM_GROUP_NAMES,
    Groups,
    Users,
    config_for,
    directory_file,
    group_records,
    seed,
    stored,
    sync_and_compare,
    user_records,
)

DEFAULTS = {"links": {}, "link_groups_by_name": True, "max_deactivations": 500, "max_member_removals": 1000}


def run_states(store: Store, tmp_path: Path, spec: Any, states: list[tuple[Users, Groups]]) -> None:
    """Seed the store as `spec` says, then sync `states` one after another, each checked
    against the model."""
    reset(store)
    files = {"hr": tmp_path / "hr.json"}
    cfg = config_for(store, files, DEFAULTS)
    model = Model()
    seed(store, cfg, model, spec)
    for users, groups in states:
        sync_and_compare(store, cfg, model, "hr", user_records(users), group_records(groups), files)


def test_a_local_administrator_linked_while_disabled_stays_in_the_groups_that_list_it(store, tmp_path):
    """user0 is the only, local, administrator; the directory links it as a disabled user
    listed in Engineering. R4 holds the deactivation, so user0 is an active user of the
    directory and a member of Engineering (as a bound user in the same position is), and a
    second cycle plans nothing. (The hold once marked the row active by the record it was
    bound to before the plan, none, so it joined Engineering only at the next cycle.)"""
    run_states(store, tmp_path, ([(0, False, True, None)], [], {0}), [([("u0", 0, "A", False)], [("g0", 0, ["u0"])])])


def test_a_reused_address_leaves_a_group_that_left_scope_in_the_same_cycle(store, tmp_path):
    """u0 is in Engineering; then the address comes back as t0 and Engineering leaves scope.
    R7: the group becomes local with its members, and the re-bound row (a new person) leaves
    every group: the run succeeds and Engineering is empty (the plan's own unlink of the group
    does not make its removal a conflict)."""
    run_states(
        store,
        tmp_path,
        ([], [], set()),
        [([("u0", 0, "A", True)], [("g0", 0, ["u0"])]), ([("t0", 0, "A", True)], [])],
    )


def test_an_administrator_activated_by_the_plan_counts_for_r4(store, tmp_path):
    """user3 (inactive) and user4 (active) are local administrators. The directory links both,
    user3 active and in Split_Administrators, user4 disabled: after the plan Administrators
    has an active member (user3), so R4 has nothing to hold: user4 is deactivated and leaves
    the group, and a second cycle plans nothing. (R4 judged by the group before the plan
    kept user4 active and an administrator until the next cycle.)"""
    reset(store)
    files = {"hr": tmp_path / "hr.json"}
    cfg = config_for(store, files, DEFAULTS)
    seed(store, cfg, Model(), ([(3, False, False, None), (4, False, True, None)], [], {3, 4}))
    users = user_records([("u3", 0, "A", True), ("u4", 0, "B", False)])
    files["hr"].write_text(json.dumps(directory_file(users, group_records([("ga", 0, ["u3"])]))))
    assert run_cycle(cfg, "hr", store=store, full=True).status == "succeeded"
    state = stored(store)
    active = {u["email"]: u["active"] for u in state["users"]}
    [admin] = [g for g in state["groups"] if g["name"] == ADMIN]
    assert active == {"user3@example.com": True, "user4@example.com": False}
    assert admin["members"] == ["user3@example.com"]
    again = run_cycle(cfg, "hr", store=store, dry_run=True, full=True)
    assert again.plan is not None and again.plan.operations == ()


def test_an_administrator_the_plan_adds_lets_the_last_one_go(store, tmp_path):
    """user1 is the only administrator, linked by crm. Then crm drops c1 and lists a new
    active c0 in Split_Administrators: after the plan Administrators has an active member
    (user0), so R4 holds nothing: user1 is deactivated in this cycle and a second cycle
    plans nothing. (R4 judged by the group before the plan kept user1 active until the next
    cycle.)"""
    reset(store)
    files = {"crm": tmp_path / "crm.json"}
    cfg = config_for(store, files, DEFAULTS)
    seed(store, cfg, Model(), ([(1, False, True, None)], [], {1}))
    for users, groups in (([("c1", 0, "C", True)], []), ([("c0", 0, "C", True)], [("ha", 0, ["c0"])])):
        files["crm"].write_text(json.dumps(directory_file(user_records(users), group_records(groups, CRM_GROUP_NAMES))))
        assert run_cycle(cfg, "crm", store=store, full=True, allow_deactivations=True).status == "succeeded"
    state = stored(store)
    assert {u["email"]: u["active"] for u in state["users"]} == {"user0@example.com": True, "user1@example.com": False}
    assert [g["members"] for g in state["groups"] if g["name"] == ADMIN] == [["user0@example.com"]]
    again = run_cycle(cfg, "crm", store=store, dry_run=True, full=True)
    assert again.plan is not None and again.plan.operations == ()


def test_an_administrator_the_plan_removes_from_the_group_is_not_held(store, tmp_path):
    """user0 and user4 are Administrators through Split_Administrators. Then both are
    disabled and the alias lists user4 alone: R4 needs one of them active, user4, who stays
    in the group; user0 leaves it, so R4 holds nothing for user0, who is deactivated in this
    cycle, and a second cycle plans nothing. (R4 judged by the group before the plan held both
    and deactivated user0 at the next cycle; found by the wide-domain property.)"""
    run_states(store, tmp_path, ([], [], set()), [
        ([("u0", 0, "A", True), ("u4", 0, "A", True)], [("ga", 0, ["u4", "u0"])]),
        ([("u4", 0, "A", False), ("u0", 0, "A", False)], [("ga", 0, ["u4"])]),
    ])



def test_an_administrator_the_plan_activates_counts_when_the_group_keeps_its_members(store, tmp_path):
    """user0 (inactive) and user1 (active) are local administrators. The directory links
    both, user0 active and user1 disabled, and its alias lists neither: R4 keeps the current
    members, among them user0, active after the plan, so user1's deactivation is not held and
    a second cycle plans nothing. (Found by the two-directory property while R4 came to be
    judged after the plan: holding user1 because user0 was inactive before the plan left a
    deactivation for the next cycle.)"""
    run_states(store, tmp_path, ([(0, False, False, None), (1, False, False, None)], [], {0, 1}), [
        ([("u0", 0, "A", True), ("u1", 0, "A", False)], [("ga", 0, [])]),
    ])
