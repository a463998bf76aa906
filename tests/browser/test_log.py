"""The provisioning log: search it for one user, then open that user's explain view."""

from __future__ import annotations

import re

import pytest

from service import history
from service.explain import explain
from tests.browser.conftest import PLAYWRIGHT_MISSING, Console
from tests.cli.conftest import user

pytest.importorskip("playwright.sync_api", reason=PLAYWRIGHT_MISSING)
from playwright.sync_api import Page, expect  # noqa: E402

pytestmark = pytest.mark.browser

ANA, BEN = "ana@example.com", "ben@example.com"


@pytest.fixture(scope="module")
def synced(console: Console) -> None:
    """hr created Ana and Ben, then Ben left (one deactivation, under the limit)."""
    console.write_directory([user("a", ANA), user("b", BEN)])
    assert console.sync().status == "succeeded"
    console.write_directory([user("a", ANA)])
    assert console.sync().status == "succeeded"


def test_searching_the_log_for_one_user_shows_only_their_events(signed_in: Page, console: Console,
                                                                synced: None) -> None:
    page = signed_in
    page.goto("/console/log")

    page.get_by_label("User").fill(BEN)
    page.get_by_role("button", name="Search").click()

    recorded = history.events(console.store, history.EventFilter(user=BEN), limit=None)
    assert sorted(e.action for e in recorded) == ["create-user", "deactivate-user"]
    rows = page.get_by_role("row").filter(has_text=BEN)
    expect(rows).to_have_count(len(recorded))
    expect(page.get_by_role("row").filter(has_text=ANA)).to_have_count(0)


def test_an_event_opens_the_explain_view_of_its_user(signed_in: Page, console: Console, synced: None) -> None:
    page = signed_in
    page.goto(f"/console/log?user={BEN}")

    page.get_by_role("row").filter(has_text="deactivate-user").get_by_role("link", name=BEN).click()

    expect(page).to_have_url(re.compile(r"/console/explain\?"))
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Explain user {BEN}")
    steps = explain(console.store, BEN).steps
    assert "state: inactive" in steps
    expect(page.get_by_role("main").get_by_role("list").first.get_by_role("listitem")).to_have_text(steps)


def test_an_event_links_to_its_run(signed_in: Page, console: Console, synced: None) -> None:
    [left] = history.events(console.store, history.EventFilter(user=BEN, action="deactivate-user"), limit=None)
    page = signed_in
    page.goto(f"/console/log?user={BEN}")

    page.get_by_role("row").filter(has_text="deactivate-user").get_by_role("link", name=f"run {left.run_id}").click()

    expect(page.get_by_role("heading", level=1)).to_have_text(f"Run {left.run_id} of hr")
    events = page.get_by_role("row").filter(has_text="deactivate-user")
    expect(events).to_have_count(1)
    expect(events).to_contain_text(BEN)
    expect(events).to_contain_text("left-scope")
