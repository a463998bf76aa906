"""What a cycle over a corpus case must have done, checked against the store."""

from __future__ import annotations

from typing import Any

from reconcile.cycle import RunResult
from reconcile.model import Rejection
from store import Store, export_state, list_events
from tests.corpus.directories import Directory
from tests.corpus.records import BASELINE_USERS, Case, Record

Export = dict[str, list[dict[str, Any]]]
ADMIN_GROUP = "Administrators"


def export(store: Store) -> Export:
    with store.session() as session:
        return export_state(session)


def rejected_events(store: Store, run_id: int | None) -> list[tuple[str, str]]:
    """(target, reason) of the run's `rejected` events."""
    with store.session() as session:
        return [(e.target, e.reason or "") for e in list_events(session, run_id) if e.outcome == "rejected"]


def find_rejection(rejections: tuple[Rejection, ...], reason: str, key: str, directory: Directory) -> Rejection | None:
    """The rejection with `reason` about record `key` (by its IdP id, or text in its target)."""
    ident = directory.ids.get(key, key)
    for r in rejections:
        if r.reason == reason and (r.external_id == ident or key in r.target or ident in r.target):
            return r
    return None


def assert_rejected(result: RunResult, store: Store, expected: list[tuple[str, str]], directory: Directory) -> None:
    assert result.plan is not None
    events = rejected_events(store, result.run_id)
    for reason, key in expected:
        found = find_rejection(result.plan.rejections, reason, key, directory)
        assert found is not None, (
            f"no {reason!r} rejection of {key!r}; the plan rejected "
            f"{[(r.reason, r.target[:60]) for r in result.plan.rejections]}")
        assert (found.target, found.reason) in events, f"no rejected event for {found.target[:60]!r} ({reason})"
    assert sorted(reason for _, reason in events) == sorted(r.reason for r in result.plan.rejections)


def assert_only_case_records_rejected(result: RunResult, case_ids: set[str], directory: Directory) -> None:
    """No rejection names a baseline record the case left alone."""
    assert result.plan is not None
    own = {directory.ids.get(i, i) for i in case_ids}
    baseline = {directory.ids[u["id"]] for u in BASELINE_USERS} - own
    stray = [r for r in result.plan.rejections if r.external_id in baseline]
    assert not stray, f"baseline records rejected: {stray}"


def assert_baseline_unharmed(before: Export, after: Export, case: Case) -> None:
    """Every user and group the baseline created is exactly as it was (the admin group may
    change only when the case says so), and nothing new exists but what the case creates."""
    users_before = {u["email"]: u for u in before["users"]}
    users_after = {u["email"]: u for u in after["users"]}
    for email, row in users_before.items():
        assert users_after.get(email) == row, f"baseline user {email} changed: {users_after.get(email)}"
    groups_before = {g["name"]: g for g in before["groups"]}
    groups_after = {g["name"]: g for g in after["groups"]}
    for name, row in groups_before.items():
        if name == ADMIN_GROUP and case.admins is not None:
            continue
        assert groups_after.get(name) == row, f"baseline group {name} changed: {groups_after.get(name)}"
    new_users = set(users_after) - set(users_before)
    new_groups = set(groups_after) - set(groups_before)
    wanted_users = {_email(r) for r in _first_of_each_id(case.users) if r["id"] in case.created}
    wanted_groups = {r["name"].strip() for r in _first_of_each_id(case.groups) if r["id"] in case.created}
    assert new_users == wanted_users, f"users created: {sorted(new_users)}, expected {sorted(wanted_users)}"
    assert new_groups == wanted_groups, f"groups created: {sorted(new_groups)[:5]}..., expected {len(wanted_groups)}"


def assert_created_as_given(after: Export, case: Case, directory: Directory) -> None:
    """Odd but valid records exist exactly as the directory spelled them."""
    users = {u["email"]: u for u in after["users"]}
    emails = {r["id"]: _email(r) for r in (*BASELINE_USERS, *case.users)}
    for record in _first_of_each_id(case.users):
        if record["id"] not in case.created:
            continue
        row = users[_email(record)]
        assert (row["given_name"], row["family_name"], row["active"]) == (
            record["given_name"], record["family_name"], True), row
        assert row["managed_by"] == directory.kind and row["external_id"] == directory.ids[record["id"]]
        if record["display_name"] is not None:
            assert row["display_name"] == record["display_name"]
    groups = {g["name"]: g for g in after["groups"]}
    for record in _first_of_each_id(case.groups):
        if record["id"] not in case.created:
            continue
        row = groups[record["name"].strip()]
        members = sorted(emails[m] for m in record["members"] if m in emails)
        assert row["members"] == sorted(members, key=lambda e: (e.lower(), e)), row
    if case.admins is not None:
        admins = groups[ADMIN_GROUP]
        assert admins["members"] == sorted(emails[m] for m in case.admins), admins


def _email(record: Record) -> str:
    return str(record["email"]).strip()


def _first_of_each_id(records: tuple[Record, ...]) -> list[Record]:
    """Of two records with one id, the first counts (the second is a `duplicate-id`)."""
    seen: set[str] = set()
    first = []
    for record in records:
        if record["id"] not in seen:
            seen.add(record["id"])
            first.append(record)
    return first

