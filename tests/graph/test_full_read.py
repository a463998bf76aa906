"""Full reads: what `read(None)` returns for all-scope and assigned-scope directories."""

from __future__ import annotations

from simulators.graph import GraphSimulator
from reconcile.model import Changes, Snapshot
from tests.graph.conftest import MEMBERS_PER_PAGE, Replica, connect, expected


def test_full_read_of_all_scope_returns_every_user_and_group(sim: GraphSimulator) -> None:
    snapshot = connect(sim).read(None)

    assert isinstance(snapshot, Snapshot)
    assert Replica().apply(snapshot).as_view() == expected(sim.tenant)


def test_full_read_of_assigned_scope_returns_assigned_users_and_members_of_assigned_groups(
    sim: GraphSimulator,
) -> None:
    snapshot = connect(sim, assigned=True).read(None)

    view = Replica().apply(snapshot).as_view()
    assert view == expected(sim.tenant, assigned=True)
    assert 4 < len(view.users) < len(sim.tenant.users)
    assert len(view.groups) == 2


def test_members_of_a_large_group_split_across_pages_are_merged(sim: GraphSimulator) -> None:
    big = sim.tenant.create_group("Big", members=sim.tenant.user_order[:3 * MEMBERS_PER_PAGE + 4])

    snapshot = connect(sim).read(None)

    group = next(g for g in snapshot.groups if g.external_id == big)
    assert group.member_ids == frozenset(sim.tenant.user_order[:3 * MEMBERS_PER_PAGE + 4])
    assert sim.counts()["groups.delta"] >= 4


def test_disabled_account_is_read_as_inactive(sim: GraphSimulator) -> None:
    uid = sim.tenant.user_order[5]
    sim.tenant.disable(uid)

    snapshot = connect(sim).read(None)

    assert next(u for u in snapshot.users if u.external_id == uid).active is False


def test_email_comes_from_mail_when_configured(sim: GraphSimulator) -> None:
    uid = sim.tenant.user_order[2]
    sim.tenant.set_mail(uid, "Real.Mail@contoso.example")

    snapshot = connect(sim, email_source="mail").read(None)

    assert next(u for u in snapshot.users if u.external_id == uid).email == \
        "Real.Mail@contoso.example"


def test_user_without_email_is_a_rejection_with_its_external_id(sim: GraphSimulator) -> None:
    uid = sim.tenant.user_order[1]
    sim.tenant.set_mail(uid, None)

    snapshot = connect(sim, email_source="mail").read(None)

    assert uid not in {u.external_id for u in snapshot.users}
    (rejection,) = [r for r in snapshot.rejections if r.external_id == uid]
    assert rejection.reason == "missing-email"


def test_full_read_selects_only_the_fields_it_needs(sim: GraphSimulator) -> None:
    connect(sim).read(None)

    targets = [r.target for r in sim.requests() if r.endpoint in ("users.delta", "groups.delta")]
    assert any("$select=id,userPrincipalName,mail,givenName,surname,displayName,accountEnabled"
               in t for t in targets)
    assert any("$select=id,displayName,members" in t for t in targets)


def test_one_token_request_serves_many_reads(sim: GraphSimulator) -> None:
    connector = connect(sim)
    mark = connector.read(None).watermark
    for _ in range(3):
        mark = connector.read(mark).watermark

    assert sim.counts()["token"] == 1
    assert sim.counts()["users.delta"] > 4


def test_read_user_by_email_returns_the_user_and_complete_groups(sim: GraphSimulator) -> None:
    t = sim.tenant
    gid = t.group_order[0]
    uid = sorted(t.groups[gid].members)[0]
    email = t.users[uid].user_principal_name

    changes = connect(sim).read_user(email.upper())

    assert [u.external_id for u in changes.users] == [uid]
    assert gid in changes.members_complete
    group = next(g for g in changes.groups if g.external_id == gid)
    assert group.member_ids == frozenset(t.groups[gid].members)
    assert changes.watermark is None
    assert "users.delta" not in sim.counts()


def test_read_user_by_id_outside_assigned_scope_is_empty(sim: GraphSimulator) -> None:
    t = sim.tenant
    outsider = t.hire("outsider@contoso.example")

    assert connect(sim, assigned=True).read_user(outsider) == Changes()
    assert connect(sim).read_user(outsider).users[0].external_id == outsider


def test_read_user_in_assigned_scope_keeps_only_assigned_groups(sim: GraphSimulator) -> None:
    t = sim.tenant
    assigned_group = next(p for p, (kind, _) in t.assignments.items() if kind == "Group")
    other = next(g for g in t.group_order if g not in t.assignments)
    uid = t.hire("member@contoso.example", groups=[assigned_group, other])

    changes = connect(sim, assigned=True).read_user(uid)

    assert [g.external_id for g in changes.groups] == [assigned_group]


def test_user_without_account_enabled_is_a_malformed_record_never_taken_as_active(
    sim: GraphSimulator,
) -> None:
    uid = sim.tenant.user_order[3]
    sim.tenant.update_user(uid, account_enabled=None)  # the property is left out of answers

    snapshot = connect(sim).read(None)

    assert uid not in {u.external_id for u in snapshot.users}
    (rejection,) = [r for r in snapshot.rejections if r.external_id == uid]
    assert (rejection.reason, rejection.detail) == ("malformed-record", "accountEnabled is missing")


def test_user_whose_account_enabled_becomes_missing_is_held_by_an_incremental_read(
    sim: GraphSimulator,
) -> None:
    connector = connect(sim)
    mark = connector.read(None).watermark
    uid = sim.tenant.user_order[4]
    sim.tenant.update_user(uid, account_enabled=None)

    changes = connector.read(mark)

    assert isinstance(changes, Changes)
    assert uid not in {u.external_id for u in changes.users}
    assert [r.reason for r in changes.rejections if r.external_id == uid] == ["malformed-record"]


def test_a_read_reports_pages_and_records_as_it_goes(sim: GraphSimulator) -> None:
    seen: list[tuple[str, int, int]] = []

    snapshot = connect(sim).read(None, progress=lambda *step: seen.append(step))

    pages = sim.counts()["users.delta"] + sim.counts()["groups.delta"]
    assert [pages for _, pages, _ in seen] == list(range(1, pages + 1))
    assert {phase for phase, _, _ in seen} == {"read"}
    assert seen[-1][2] >= len(snapshot.users) + len(snapshot.groups)
    assert [records for _, _, records in seen] == sorted(records for _, _, records in seen)


def test_a_groups_members_are_the_very_id_strings_of_its_users(sim: GraphSimulator) -> None:
    for assigned in (False, True):
        snapshot = connect(sim, assigned=assigned).read(None)

        own = {u.external_id: u.external_id for u in snapshot.users}
        members = [m for g in snapshot.groups for m in g.member_ids if m in own]
        assert members and all(m is own[m] for m in members)
