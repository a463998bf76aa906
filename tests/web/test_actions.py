"""Each console action goes through its service operation, changes the store, and is
recorded with the admin who did it (a run's actor), so the provisioning log shows it."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from config import Settings
from service.run_series import recent_runs
from service.staging import open_staged
from service.sync import sync
from store import Store
from store.models import Directory, StagedPlan, SyncEvent, User
from tests.web.conftest import ADMIN, Console, person, write_directory


def _users(store: Store) -> dict[str, tuple[bool, str | None]]:
    with store.session() as session:
        return {u.email: (u.active, u.managed_by) for u in session.scalars(select(User))}


def _events(store: Store, run_id: int) -> list[tuple[str, str, str]]:
    with store.session() as session:
        rows = session.scalars(select(SyncEvent).where(SyncEvent.run_id == run_id).order_by(SyncEvent.seq))
        return [(e.action, e.target, e.outcome) for e in rows]


def _halted(settings: Settings, store: Store, hr_file: Path) -> int:
    """hr synced, then its file empties but for one user: the plan is staged (S2)."""
    sync(settings, store, "hr")
    write_directory(hr_file, [person("u1", "ada@example.com")])
    result = sync(settings, store, "hr")
    assert result.status == "halted"
    assert result.run_id is not None
    return result.run_id


def test_sync_now_runs_a_cycle_recorded_with_the_admin(console: Console, store: Store) -> None:
    response = console.post("/console/directories/hr/sync", {"mode": "full"})

    assert response.status_code == 303
    assert response.headers["location"] == "/console/directories/hr?started=full"
    requested, run = sorted(recent_runs(store, "hr"), key=lambda r: r.id)
    assert (requested.mode, requested.actor) == ("admin", ADMIN)
    assert _events(store, requested.id) == [("sync-now", "hr", "applied")]
    assert (run.trigger, run.mode, run.status, run.actor) == ("console", "full", "succeeded", ADMIN)
    assert set(_users(store)) == {"ada@example.com", "bob@example.com", "cy@example.com"}


def test_a_sync_now_that_changes_nothing_still_shows_in_the_log_with_the_admin(console: Console) -> None:
    console.post("/console/directories/hr/sync", {"mode": "full"})
    console.post("/console/directories/hr/sync", {"mode": "incremental"})

    log = console.get("/console/log?action=sync-now").text

    assert log.count("incremental cycle requested") == 1 and log.count("full cycle requested") == 1
    assert log.count(f"<td>{ADMIN}</td>") == 2


def test_a_run_id_past_any_stored_id_is_a_404_page(console: Console) -> None:
    for path in ("/console/directories/hr/runs/99999999999999999999",):
        assert console.get(path).status_code == 404
    response = console.post("/console/directories/hr/staged/99999999999999999999/approve", {})
    assert response.status_code == 404


def test_sync_now_of_a_disabled_directory_says_to_enable_it(console: Console, store: Store) -> None:
    console.post("/console/directories/hr/disable", {"confirm": "yes"})

    response = console.post("/console/directories/hr/sync", {"mode": "full"})

    assert response.status_code == 409
    assert "Sync is turned off for hr: enable it first" in response.text
    assert [r.mode for r in recent_runs(store, "hr")] == ["admin"]


def test_approve_applies_the_staged_deactivations_as_the_admin(
        console: Console, settings: Settings, store: Store, hr_file: Path) -> None:
    staged_run = _halted(settings, store, hr_file)
    page = console.get("/console/directories/hr")
    assert "bob@example.com" in page.text and "Approve" in page.text

    response = console.post(f"/console/directories/hr/staged/{staged_run}/approve")

    assert response.status_code == 200
    assert "approved by ann@example.com" in response.text
    assert _users(store)["bob@example.com"][0] is False and _users(store)["cy@example.com"][0] is False
    approval = recent_runs(store, "hr")[-1]
    assert (approval.trigger, approval.actor) == ("approval", ADMIN)
    with store.session() as session:
        plan = session.get(StagedPlan, staged_run)
        assert plan is not None and (plan.status, plan.decided_by) == ("approved", ADMIN)


def test_reject_closes_the_plan_applies_nothing_and_is_recorded(
        console: Console, settings: Settings, store: Store, hr_file: Path) -> None:
    staged_run = _halted(settings, store, hr_file)

    response = console.post(f"/console/directories/hr/staged/{staged_run}/reject")

    assert "rejected by ann@example.com" in response.text
    assert open_staged(store, "hr") == []
    assert _users(store)["bob@example.com"][0] is True
    record = recent_runs(store, "hr")[-1]
    assert (record.trigger, record.mode, record.actor) == ("console", "admin", ADMIN)
    assert _events(store, record.id) == [("reject-plan", f"run {staged_run}", "applied")]


def test_deciding_a_plan_that_is_not_open_says_so(console: Console, settings: Settings, store: Store,
                                                   hr_file: Path) -> None:
    staged_run = _halted(settings, store, hr_file)
    console.post(f"/console/directories/hr/staged/{staged_run}/reject")

    again = console.post(f"/console/directories/hr/staged/{staged_run}/approve")

    assert again.status_code == 409
    assert "no open staged plan" in again.text


def test_resume_ends_the_quarantine_as_the_admin(console: Console, settings: Settings, store: Store,
                                                 hr_file: Path) -> None:
    hr_file.write_text("not json")
    for _ in range(settings.safety.quarantine_after):
        sync(settings, store, "hr", trigger="beat")
    assert "quarantined" in console.get("/console/directories/hr").text

    response = console.post("/console/directories/hr/resume")

    assert "Quarantine ended: 3 failed cycles cleared" in response.text
    with store.session() as session:
        row = session.scalars(select(Directory).where(Directory.name == "hr")).one()
        assert row.consecutive_failures == 0
    record = recent_runs(store, "hr")[-1]
    assert (record.mode, record.actor, record.counts) == ("admin", ADMIN, {"resume": 1})


def test_disable_asks_first_with_the_counts_then_converts_as_the_admin(
        console: Console, settings: Settings, store: Store) -> None:
    sync(settings, store, "hr")

    confirm = console.get("/console/directories/hr/disable")
    assert confirm.status_code == 200
    assert "3 users and 0 groups managed by hr will become local" in confirm.text
    response = console.post("/console/directories/hr/disable", {"confirm": "yes"})

    assert "Sync turned off: 3 users and 0 groups are local now" in response.text
    assert {managed for _, managed in _users(store).values()} == {None}
    record = recent_runs(store, "hr")[-1]
    assert (record.mode, record.actor) == ("admin", ADMIN)
    events = _events(store, record.id)
    assert events[0][0] == "disable-sync"
    assert sorted(target for action, target, _ in events if action == "unlink-user") == [
        "ada@example.com", "bob@example.com", "cy@example.com"]


def test_disable_without_the_confirmation_changes_nothing(console: Console, settings: Settings,
                                                          store: Store) -> None:
    sync(settings, store, "hr")

    response = console.post("/console/directories/hr/disable")

    assert response.status_code == 400
    assert {managed for _, managed in _users(store).values()} == {"hr"}


def test_enable_turns_sync_back_on_as_the_admin(console: Console, settings: Settings, store: Store) -> None:
    console.post("/console/directories/hr/disable", {"confirm": "yes"})

    response = console.post("/console/directories/hr/enable")

    assert "Sync turned on" in response.text
    with store.session() as session:
        assert session.scalars(select(Directory.enabled).where(Directory.name == "hr")).one() is True
    assert [(r.counts, r.actor) for r in recent_runs(store, "hr")] == [
        ({"disable-sync": 1}, ADMIN), ({"enable-sync": 1}, ADMIN)]


def test_generate_shows_the_token_once_and_regenerate_refuses_the_old_one(
        console: Console, client, store: Store) -> None:
    first = console.post("/console/directories/push/scim-token")
    old = _shown_token(first.text)
    assert client.get("/scim/v2/push/Users", headers={"Authorization": f"Bearer {old}"}).status_code == 200
    assert old not in console.get("/console/directories/push").text  # shown once only

    second = console.post("/console/directories/push/scim-token", {"regenerate": "yes"})
    new = _shown_token(second.text)

    assert new != old
    assert client.get("/scim/v2/push/Users", headers={"Authorization": f"Bearer {old}"}).status_code == 401
    assert client.get("/scim/v2/push/Users", headers={"Authorization": f"Bearer {new}"}).status_code == 200
    runs = recent_runs(store, "push")
    assert [(r.counts, r.actor) for r in runs] == [({"issue-scim-token": 1}, ADMIN),
                                                   ({"regenerate-scim-token": 1}, ADMIN)]
    with store.session() as session:
        details = " ".join(d or "" for d in session.scalars(select(SyncEvent.detail)))
    assert old not in details and new not in details


def test_generate_when_a_token_exists_is_refused_without_regenerate(console: Console) -> None:
    console.post("/console/directories/push/scim-token")

    again = console.post("/console/directories/push/scim-token")

    assert again.status_code == 409
    assert "a token exists" in again.text


def test_provision_on_demand_brings_one_user_in_and_explains_it(console: Console, store: Store) -> None:
    response = console.post("/console/directories/hr/provision", {"email": "bob@example.com"})

    assert response.status_code == 200
    assert set(_users(store)) == {"bob@example.com"}
    assert "managed by directory &#39;hr&#39;" in response.text
    [run] = recent_runs(store, "hr")
    assert (run.trigger, run.actor) == ("on-demand", ADMIN)


def test_provision_on_demand_of_a_bad_email_is_a_bad_request(console: Console, store: Store) -> None:
    response = console.post("/console/directories/hr/provision", {"email": "not-an-email"})

    assert response.status_code == 400
    assert "not a valid email address" in response.text
    assert recent_runs(store, "hr") == []


def _shown_token(text: str) -> str:
    start = text.index('aria-label="Bearer token">') + len('aria-label="Bearer token">')
    return text[start:text.index("<", start)].strip()
