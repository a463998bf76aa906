"""A directory's own actions: Provision on demand (with its step-by-step trace), Sync now and
Resume, each recorded with the admin who asked for it. Each test writes the directory it needs."""

from __future__ import annotations

import time

import pytest

from service import history
from service.explain import explain
from service.history import RunView
from service.status import read_state
from service.sync import sync
from store.models import SyncRun
from tests.browser.conftest import PLAYWRIGHT_MISSING, Console
from tests.cli.conftest import user

pytest.importorskip("playwright.sync_api", reason=PLAYWRIGHT_MISSING)
from playwright.sync_api import Page, expect  # noqa: E402

pytestmark = pytest.mark.browser

ANA, CY, DEE = "ana@example.com", "cy@example.com", "dee@example.com"
CYCLE_SECONDS = 30  # a cycle of three users that has not finished by then has failed


@pytest.fixture(scope="module")
def seeded(console: Console) -> None:
    """hr synced Ana."""
    console.write_directory([user("a", ANA)])
    assert console.sync().status == "succeeded"


def actor_of(console: Console, run_id: int) -> str | None:
    with console.store.session() as session:
        run = session.get(SyncRun, run_id)
        return run.actor if run is not None else None


def finished_run_after(console: Console, run_id: int) -> RunView:
    """The first cycle of hr newer than `run_id`, once it has finished (Sync now records the
    request as an admin run, then runs the cycle after answering)."""
    deadline = time.monotonic() + CYCLE_SECONDS
    while True:
        newer = [r for r in history.runs(console.store, directory="hr", limit=5) if r.id > run_id and r.mode != "admin"]
        if newer and newer[-1].finished_at is not None:
            return newer[-1]
        assert time.monotonic() < deadline, f"no run of hr after run {run_id} finished"
        time.sleep(0.1)


def test_provision_on_demand_brings_one_user_in_and_shows_why(signed_in: Page, console: Console,
                                                              seeded: None) -> None:
    console.write_directory([user("a", ANA), user("c", CY)])
    page = signed_in
    page.goto("/console/directories/hr")
    on_demand = page.get_by_role("region", name="Provision on demand")

    on_demand.get_by_label("User's email").fill(CY)
    on_demand.get_by_role("button", name="Provision").click()

    expect(page.get_by_role("heading", level=1)).to_have_text(f"Provision {CY} from hr")
    expect(page.get_by_role("region", name="Result")).to_contain_text("succeeded")
    steps = explain(console.store, CY, directory="hr", kind="user").steps
    assert "state: active" in steps
    expect(page.get_by_role("main").get_by_role("list").last.get_by_role("listitem")).to_have_text(steps)
    assert console.active_emails() == [ANA, CY]
    [run] = history.runs(console.store, directory="hr", limit=1)
    assert actor_of(console, run.id) == console.admin


def test_sync_now_runs_a_full_cycle_recorded_with_the_admin(signed_in: Page, console: Console, seeded: None) -> None:
    console.write_directory([user("a", ANA), user("c", CY), user("d", DEE)])
    [last] = history.runs(console.store, directory="hr", limit=1)
    page = signed_in
    page.goto("/console/directories/hr")

    page.get_by_label("Sync now").select_option("full")
    page.get_by_role("button", name="Sync now").click()

    expect(page.get_by_role("status")).to_contain_text("Full sync requested")
    run = finished_run_after(console, last.id)
    assert (run.mode, run.status, actor_of(console, run.id)) == ("full", "succeeded", console.admin)
    assert DEE in console.active_emails()
    page.reload()
    row = page.get_by_role("region", name="Runs").get_by_role("row").filter(
        has=page.get_by_role("link", name=str(run.id), exact=True))
    expect(row).to_contain_text(console.admin)
    expect(row).to_contain_text("1 create-user")


def test_resume_clears_the_failure_streak_of_a_failing_directory(signed_in: Page, console: Console,
                                                                 seeded: None) -> None:
    (console.folder / "directory.json").write_text("{not json")
    # A scheduled cycle's failure counts towards quarantine (a manual one's does not).
    assert sync(console.settings, console.store, "hr", trigger="beat").status == "failed"
    assert read_state(console.store, "hr").consecutive_failures == 1
    page = signed_in
    page.goto("/console/directories/hr")
    expect(page.get_by_role("region", name="Status")).to_contain_text("1 failed cycles in a row")

    page.get_by_role("button", name="Resume").click()

    expect(page.get_by_role("status")).to_contain_text("1 failed cycles cleared")
    expect(page.get_by_role("button", name="Resume")).to_have_count(0)
    assert read_state(console.store, "hr").consecutive_failures == 0
    [recorded] = history.runs(console.store, directory="hr", limit=1)
    assert (recorded.mode, actor_of(console, recorded.id)) == ("admin", console.admin)
