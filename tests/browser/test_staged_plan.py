"""A directory halted by the safety limits: the admin sees it, reads the staged plan and approves it.

The tests share one module: the first only looks at the halted run, the second approves it,
the third halts hr again and rejects that plan."""

from __future__ import annotations

import pytest

from service import history
from service.staging import NotStaged, approve, open_staged
from tests.browser.conftest import PLAYWRIGHT_MISSING, Console
from tests.cli.conftest import user

pytest.importorskip("playwright.sync_api", reason=PLAYWRIGHT_MISSING)
from playwright.sync_api import Page, expect  # noqa: E402

pytestmark = pytest.mark.browser

EVERYONE = [user(f"u{i}", f"u{i}@example.com") for i in range(1, 6)]
LEFT = ["u3@example.com", "u4@example.com", "u5@example.com"]


@pytest.fixture(scope="module")
def halted(console: Console) -> int:
    """hr synced five users; three left and the next sync halted (max_deactivations = 2). Its run id."""
    console.write_directory(EVERYONE, [{"id": "g1", "name": "Staff", "members": [u["id"] for u in EVERYONE]}])
    assert console.sync().status == "succeeded"
    console.write_directory(EVERYONE[:2], [{"id": "g1", "name": "Staff", "members": ["u1", "u2"]}])
    result = console.sync()
    assert result.status == "halted" and result.run_id is not None
    return result.run_id


def test_the_directories_page_shows_the_halted_directory(signed_in: Page, console: Console, halted: int) -> None:
    page = signed_in
    page.goto("/console")

    row = page.get_by_role("row").filter(has=page.get_by_role("link", name="hr", exact=True))
    expect(row.get_by_role("link", name=f"run {halted}", exact=True)).to_be_visible()
    expect(row).to_contain_text("3 deactivations awaiting approval")
    [plan] = open_staged(console.store, "hr")
    assert plan.run_id == halted


def test_approving_the_staged_plan_deactivates_the_users(signed_in: Page, console: Console, halted: int) -> None:
    page = signed_in
    page.goto("/console")
    page.get_by_role("row").filter(has_text="hr").get_by_role("link", name=f"run {halted}").click()
    staged = page.get_by_role("region", name="Staged plan")
    for email in LEFT:
        expect(staged.get_by_role("listitem").filter(has_text=email).first).to_be_visible()

    staged.get_by_role("button", name="Approve", exact=True).click()

    expect(page.get_by_role("status")).to_contain_text(f"Staged plan of run {halted} approved by {console.admin}")
    expect(page.get_by_role("region", name="Staged plan")).to_contain_text("No staged plan waits for a decision")
    assert console.active_emails() == ["u1@example.com", "u2@example.com"]
    assert list(open_staged(console.store)) == []
    with pytest.raises(NotStaged, match=f"approved by {console.admin}"):
        approve(console.settings, halted, store=console.store)
    page.get_by_role("link", name="Provisioning log").click()
    page.get_by_label("Action").fill("deactivate-user")
    page.get_by_label("Outcome").select_option("applied")
    page.get_by_role("button", name="Search").click()
    deactivated = page.get_by_role("row").filter(has_text="deactivate-user")
    expect(deactivated).to_have_count(3)
    for email in LEFT:
        expect(deactivated.filter(has_text=email)).to_contain_text(f"run {approval_run(console)}")


def approval_run(console: Console) -> int:
    """The run that applied the approved plan: the newest."""
    [newest] = history.runs(console.store, limit=1)
    assert (newest.trigger, newest.status) == ("approval", "succeeded")
    return newest.id


def test_rejecting_a_staged_plan_applies_nothing(signed_in: Page, console: Console, halted: int) -> None:
    console.write_directory(EVERYONE)
    console.sync()  # everyone active again (or, run alone, halted still: the plan below is the newest)
    console.write_directory(EVERYONE[:2])
    again = console.sync()
    assert again.status == "halted" and again.run_id is not None
    active = console.active_emails()
    page = signed_in
    page.goto("/console/directories/hr")
    plan = page.get_by_role("region", name="Staged plan").locator(".panel").filter(has_text=f"Run {again.run_id}")

    plan.get_by_role("button", name="Reject", exact=True).click()

    expect(page.get_by_role("status")).to_contain_text(f"Staged plan of run {again.run_id} rejected by {console.admin}")
    assert again.run_id not in {p.run_id for p in open_staged(console.store)}
    assert console.active_emails() == active
