"""The SCIM tab: a token shown once after Generate or Regenerate (the old one refused at once),
and provisioning turned off after a confirmation with its counts, then on again."""

from __future__ import annotations

import httpx
import pytest

from service.scim_tokens import issue_token, token_status
from service.sync import export
from tests.browser.conftest import PLAYWRIGHT_MISSING, Console

pytest.importorskip("playwright.sync_api", reason=PLAYWRIGHT_MISSING)
from playwright.sync_api import Page, expect  # noqa: E402

pytestmark = pytest.mark.browser

PUSHED = "pat@example.com"


def shown_token(page: Page) -> str:
    """The bearer token the page shows (once), in its "New SCIM token" panel."""
    panel = page.get_by_role("region", name="New SCIM token")
    expect(panel).to_contain_text("Copy the token now")
    return panel.locator("#scim-token").inner_text().strip()


def users_status(console: Console, token: str) -> int:
    """What the SCIM endpoint answers to a list of okta's users with this bearer token."""
    return httpx.get(f"{console.url}/scim/v2/okta/Users", headers={"Authorization": f"Bearer {token}"}).status_code


def test_generating_a_token_shows_it_once_and_the_endpoint_accepts_it(signed_in: Page, console: Console) -> None:
    page = signed_in
    page.goto("/console/directories/okta")
    scim = page.get_by_role("region", name="SCIM")
    expect(scim).to_contain_text(f"{console.url}/scim/v2/okta")
    expect(scim).to_contain_text("no token yet")

    scim.get_by_role("button", name="Generate token", exact=True).click()
    token = shown_token(page)

    assert users_status(console, token) == 200
    assert token_status(console.store, "okta").expires_at is not None
    page.reload()
    expect(page.get_by_role("region", name="New SCIM token")).to_have_count(0)
    expect(page.get_by_text(token)).to_have_count(0)


def test_regenerating_refuses_the_old_token_and_accepts_the_new(signed_in: Page, console: Console) -> None:
    old = issue_token(console.settings, console.store, "okta", regenerate=True).token
    assert users_status(console, old) == 200
    page = signed_in
    page.goto("/console/directories/okta")

    page.get_by_role("region", name="SCIM").get_by_role("button", name="Regenerate token", exact=True).click()
    new = shown_token(page)

    assert new != old
    assert users_status(console, old) == 401
    assert users_status(console, new) == 200


def test_disabling_provisioning_confirms_the_counts_and_the_token_is_refused_until_enabled(
        signed_in: Page, console: Console) -> None:
    token = issue_token(console.settings, console.store, "okta", regenerate=True).token
    pushed = httpx.post(f"{console.url}/scim/v2/okta/Users", headers={"Authorization": f"Bearer {token}"},
                        json={"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": PUSHED,
                              "emails": [{"primary": True, "value": PUSHED}], "active": True})
    assert pushed.status_code == 201, pushed.text
    page = signed_in
    page.goto("/console/directories/okta")

    page.get_by_role("region", name="SCIM").get_by_role("link", name="Disable provisioning").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Turn sync off for okta?")
    expect(page.get_by_role("main")).to_contain_text("1 users and 0 groups managed by okta will become local")
    page.get_by_role("button", name="Disable", exact=True).click()

    expect(page.get_by_role("status")).to_contain_text("1 users and 0 groups are local now")
    [local] = [u for u in export(console.store)["users"] if u["email"] == PUSHED]
    assert local["managed_by"] is None
    assert users_status(console, token) == 401
    page.get_by_role("region", name="SCIM").get_by_role("button", name="Enable provisioning").click()
    expect(page.get_by_role("status")).to_contain_text("Sync turned on")
    expect(page.get_by_role("region", name="SCIM").get_by_role("link", name="Disable provisioning")).to_be_visible()
    assert users_status(console, token) == 200
