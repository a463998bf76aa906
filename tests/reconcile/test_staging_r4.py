"""R4 at approval: the staged part of a fresh plan is judged by what it alone does.

An approval applies the staged operations the fresh plan still contains
(`staging.still_valid`); `plan_admin.hold_last_admins_among` then holds the deactivations
and admin-group removals that leaned on a part of the fresh plan that was never staged.
"""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconcile.model import Action, ExternalUser, Kind, LocalState, Operation, Plan, RuleSettings, Snapshot
from reconcile.plan import plan
from reconcile.plan_admin import hold_last_admins_among
from reconcile.plan_groups import find_admin_group
from reconcile.staging import still_valid

from tests.reconcile.builders import directory, group, local_group, local_user, store, user

RULES = RuleSettings()


def judged(operations: tuple[Operation, ...], local: LocalState, rules: RuleSettings = RULES):
    admin = find_admin_group(local.groups, rules)
    return hold_last_admins_among(operations, admin, {u.id: u for u in local.users}, rules)


def staged_part(fresh: Plan, *, without: Action) -> tuple[Operation, ...]:
    """What an approval keeps of `fresh` when the staged plan had none of its `without`."""
    kept, _ = still_valid([op for op in fresh.operations if op.action is not without], fresh)
    return kept


def changed(operations, action):
    return sorted(op.user.local_id for op in operations if op.action is action)


def test_a_deactivation_that_leaned_on_an_activation_never_staged_is_held():
    # Ana (active) and Bo (inactive) are local administrators of hr's users: the fresh plan
    # activates Bo and so lets Ana go, but the staged plan only deactivated Ana.
    local = store([local_user(1, "ana@example.com", managed_by="hr", external_id="u1"),
                   local_user(2, "bo@example.com", active=False, managed_by="hr", external_id="u2")],
                  [local_group(9, "Administrators", 1, 2, reserved=True)])
    fresh = plan(directory([user("u2", "bo@example.com")]), local, RULES, directory="hr")
    assert changed(fresh.operations, Action.DEACTIVATE_USER) == [1]
    assert changed(fresh.operations, Action.ACTIVATE_USER) == [2]

    applied, held = judged(staged_part(fresh, without=Action.ACTIVATE_USER), local)

    assert changed(applied, Action.DEACTIVATE_USER) == []
    assert [(r.kind, r.target, r.reason) for r in held] == [(Kind.USER, "ana@example.com", "last-active-administrator")]
    assert held[0].detail == ("'ana@example.com' is among the last active members of 'Administrators';"
                              " the deactivation is held")


def test_the_same_deactivation_with_its_activation_staged_is_applied():
    local = store([local_user(1, "ana@example.com", managed_by="hr", external_id="u1"),
                   local_user(2, "bo@example.com", active=False, managed_by="hr", external_id="u2")],
                  [local_group(9, "Administrators", 1, 2, reserved=True)])
    fresh = plan(directory([user("u2", "bo@example.com")]), local, RULES, directory="hr")

    applied, held = judged(fresh.operations, local)

    assert applied == fresh.operations and held == []


def ana_handing_over_to_bo(ana: ExternalUser | None):
    """Ana (active) and Bo (inactive) administer the store; Ana is in hr's group Eng. The
    directory now has Ana as `ana` says (None: gone from its scope) and Bo active."""
    local = store([local_user(1, "ana@example.com", managed_by="hr", external_id="u1"),
                   local_user(2, "bo@example.com", active=False, managed_by="hr", external_id="u2")],
                  [local_group(9, "Administrators", 1, 2, reserved=True),
                   local_group(5, "Eng", 1, managed_by="hr", external_id="ge")])
    listed = ["u1"] if ana is not None else []
    snap = directory([u for u in (ana, user("u2", "bo@example.com")) if u is not None], [group("ge", "Eng", *listed)])
    return local, plan(snap, local, RULES, directory="hr")


def test_a_held_deactivation_keeps_the_row_in_the_groups_it_would_have_left_inactive():
    # R7 removes an inactive user from its groups; R4 holding the deactivation keeps Ana
    # active, so she keeps Eng, which still lists her (as the planner keeps her).
    local, fresh = ana_handing_over_to_bo(user("u1", "ana@example.com", active=False))
    assert changed(fresh.operations, Action.REMOVE_MEMBER) == [1]

    applied, held = judged(staged_part(fresh, without=Action.ACTIVATE_USER), local)

    assert applied == ()
    assert [(r.target, r.reason) for r in held] == [("ana@example.com", "last-active-administrator")]


def test_without_keep_groups_a_held_deactivation_leaves_the_other_removals_alone():
    # Push: memberships follow the IdP's own group operations, so R4 holds only what it
    # names (the deactivation, with its rejection), not the removal from Eng.
    local, fresh = ana_handing_over_to_bo(user("u1", "ana@example.com", active=False))
    part = staged_part(fresh, without=Action.ACTIVATE_USER)

    applied, held = hold_last_admins_among(part, find_admin_group(local.groups, RULES),
                                           {u.id: u for u in local.users}, RULES, keep_groups=False)

    assert changed(applied, Action.REMOVE_MEMBER) == [1] and changed(applied, Action.DEACTIVATE_USER) == []
    assert [(r.target, r.reason) for r in held] == [("ana@example.com", "last-active-administrator")]


def test_a_held_row_whose_record_left_scope_still_leaves_its_groups():
    # No group of the directory can list a record gone from its scope: the planner removes
    # the row from them whether or not it holds the deactivation.
    local, fresh = ana_handing_over_to_bo(None)
    assert changed(fresh.operations, Action.REMOVE_MEMBER) == [1]

    applied, held = judged(staged_part(fresh, without=Action.ACTIVATE_USER), local)

    assert changed(applied, Action.DEACTIVATE_USER) == [] and changed(applied, Action.REMOVE_MEMBER) == [1]
    assert [(r.target, r.reason) for r in held] == [("ana@example.com", "last-active-administrator")]


def hr_administrators_swapped():
    """Ana is the only member of Administrators through hr's alias; the directory now has Bo
    (a new user) there instead, and Ana is gone."""
    local = store([local_user(1, "ana@example.com", managed_by="hr", external_id="u1")],
                  [local_group(9, "Administrators", 1, managed_by="hr", external_id="ga", reserved=True)])
    snap = directory([user("u2", "bo@example.com")], [group("ga", "Split_Administrators", "u2")])
    return local, plan(snap, local, RULES, directory="hr")


def test_a_removal_and_deactivation_that_leaned_on_an_add_never_staged_are_both_held():
    local, fresh = hr_administrators_swapped()

    applied, held = judged(staged_part(fresh, without=Action.ADD_MEMBER), local)

    assert changed(applied, Action.DEACTIVATE_USER) == [] and changed(applied, Action.REMOVE_MEMBER) == []
    assert {(r.target, r.reason) for r in held} == {
        ("ana@example.com", "last-active-administrator"), ("Administrators", "admin-group-would-be-empty")}


def test_an_add_whose_created_user_was_never_staged_does_not_count():
    local, fresh = hr_administrators_swapped()

    applied, held = judged(staged_part(fresh, without=Action.CREATE_USER), local)

    assert changed(applied, Action.DEACTIVATE_USER) == []
    assert ("ana@example.com", "last-active-administrator") in {(r.target, r.reason) for r in held}


def test_a_row_rebound_to_a_new_person_still_leaves_the_group_it_would_leave_empty():
    # R7 over R4: the new person behind p1's address inherits none of the old one's rights.
    local = store([local_user(1, "p1@example.com", active=False, managed_by="hr", external_id="u1")],
                  [local_group(9, "Administrators", 1, reserved=True)])
    fresh = plan(directory([user("v1", "p1@example.com")]), local, RULES, directory="hr")
    assert changed(fresh.operations, Action.REMOVE_MEMBER) == [1]

    applied, _ = judged(staged_part(fresh, without=Action.ACTIVATE_USER), local)

    assert changed(applied, Action.REMOVE_MEMBER) == [1]


def test_a_store_without_the_admin_group_holds_nothing():
    local = store([local_user(1, "ana@example.com", managed_by="hr", external_id="u1")], admin=False)
    fresh = plan(directory([]), local, RULES, directory="hr")

    assert judged(fresh.operations, local) == (fresh.operations, [])


# --- properties over a small domain ----------------------------------------------------

IDS = (1, 2, 3)


@dataclass(frozen=True)
class Case:
    local: LocalState
    snapshot: Snapshot


@st.composite
def cases(draw: st.DrawFn) -> Case:
    """Three addresses, each maybe a row of hr (or a local row) and maybe in hr's directory
    (as the same record or a new one), active or not; Administrators local or hr's through
    its alias, any members."""
    rows, records = [], []
    for i in IDS:
        kind = draw(st.sampled_from(["none", "local", "hr"]))
        if kind != "none":
            rows.append(local_user(i, f"p{i}@example.com", active=draw(st.booleans()),
                                   managed_by="hr" if kind == "hr" else None,
                                   external_id=f"u{i}" if kind == "hr" else None))
        if draw(st.booleans()):  # under its own id, or a new one: a new person with the address
            records.append(user(draw(st.sampled_from([f"u{i}", f"v{i}"])), f"p{i}@example.com",
                                active=draw(st.booleans())))
    members = [r.id for r in rows if draw(st.booleans())]
    managed = draw(st.booleans())
    admin = local_group(9, "Administrators", *members, managed_by="hr" if managed else None,
                        external_id="ga" if managed else None, reserved=True)
    listed = [r.external_id for r in records if draw(st.booleans())]
    groups = [group("ga", "Split_Administrators", *listed)] if managed or draw(st.booleans()) else []
    return Case(store(rows, [admin]), directory(records, groups))


def active_admin_after(local: LocalState, operations: tuple[Operation, ...]) -> bool:
    """Whether Administrators has an active member once `operations` are written: a small
    model of the store (activity by row, rows created by key, the group's members)."""
    active = {u.id: u.active for u in local.users}
    created = {}
    admin = find_admin_group(local.groups, RULES)
    assert admin is not None
    members: set[int | str] = set(admin.members)
    for op in operations:
        if op.action in (Action.ACTIVATE_USER, Action.DEACTIVATE_USER):
            active[op.user.local_id] = op.action is Action.ACTIVATE_USER
        elif op.action is Action.CREATE_USER:
            created[op.user.key] = bool(op.value("active"))
        elif op.action in (Action.ADD_MEMBER, Action.REMOVE_MEMBER) and op.group.local_id == admin.id:
            key = op.user.local_id if op.user.local_id is not None else op.user.key
            if op.action is Action.REMOVE_MEMBER:
                members.discard(key)
            elif isinstance(key, int) or key in created:
                members.add(key)
    return any(active[m] if isinstance(m, int) else created[m] for m in members)


PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(case=cases())
def test_a_whole_fresh_plan_is_approved_as_the_planner_made_it(case):
    """The planner met R4 over the whole plan: judged again, nothing more is held."""
    fresh = plan(case.snapshot, case.local, RULES, directory="hr")

    assert judged(fresh.operations, case.local) == (fresh.operations, [])


@PROPERTY
@given(case=cases(), data=st.data())
def test_any_staged_part_keeps_an_active_administrator_that_the_store_has(case, data):
    """Whatever part of the fresh plan was staged, applying what the approval keeps of it
    leaves Administrators an active member when it has one now."""
    fresh = plan(case.snapshot, case.local, RULES, directory="hr")
    staged = [op for op in fresh.operations if data.draw(st.booleans())]
    kept, _ = still_valid(staged, fresh)

    applied, _ = judged(kept, case.local)

    if active_admin_after(case.local, ()):
        assert active_admin_after(case.local, applied)
