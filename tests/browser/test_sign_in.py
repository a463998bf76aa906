"""Who may use the console: a signed-in admin, and only through forms the console served."""

from __future__ import annotations

import re

import httpx
import pytest

from service.scim_tokens import issue_token
from tests.browser.conftest import PLAYWRIGHT_MISSING, Console, sign_in

pytest.importorskip("playwright.sync_api", reason=PLAYWRIGHT_MISSING)
from playwright.sync_api import Page, expect  # noqa: E402

pytestmark = pytest.mark.browser


def test_an_admin_signs_in_and_sees_every_configured_directory(page: Page, console: Console) -> None:
    page.goto("/console")
    expect(page).to_have_url(re.compile(r"/console/login"))

    sign_in(page, console.admin, console.password)

    expect(page).to_have_url(re.compile(r"/console/?$"))
    expect(page.get_by_role("heading", name="Directories")).to_be_visible()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    assert sorted(console.settings.directories) == ["hr", "okta"]
    for name in console.settings.directories:
        expect(page.get_by_role("link", name=name, exact=True)).to_be_visible()
    [session] = [c for c in page.context.cookies() if c["name"] == "dirsync_console"]
    assert session["httpOnly"] and session["sameSite"] in ("Lax", "Strict") and session["path"] == "/console"
    assert console.password not in session["value"]


def test_signing_in_after_a_redirect_returns_to_the_page_asked_for(page: Page, console: Console) -> None:
    page.goto("/console/directories/okta")
    expect(page).to_have_url(re.compile(r"/console/login"))

    sign_in(page, console.admin, console.password)

    expect(page).to_have_url(re.compile(r"/console/directories/okta$"))
    expect(page.get_by_role("heading", level=1)).to_contain_text("okta")


def test_a_wrong_password_is_refused_on_the_sign_in_page(page: Page, console: Console) -> None:
    sign_in(page, console.admin, console.password + "x")

    expect(page).to_have_url(re.compile(r"/console/login"))
    expect(page.get_by_role("alert")).to_be_visible()
    page.goto("/console")
    expect(page).to_have_url(re.compile(r"/console/login"))


@pytest.mark.parametrize("path", ["/console", "/console/directories/hr", "/console/log"])
def test_a_request_without_a_session_is_redirected_to_sign_in(page: Page, console: Console, path: str) -> None:
    raw = httpx.get(console.url + path, follow_redirects=False)
    page.goto(path)

    assert raw.is_redirect and raw.headers["location"].startswith("/console/login")
    expect(page).to_have_url(re.compile(r"/console/login"))
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()


def scim_status(console: Console, token: str) -> int:
    return httpx.get(f"{console.url}/scim/v2/okta/Users", headers={"Authorization": f"Bearer {token}"}).status_code


def test_a_form_posted_without_its_csrf_token_is_refused(signed_in: Page, console: Console) -> None:
    token = issue_token(console.settings, console.store, "okta").token
    page = signed_in
    page.goto("/console/directories/okta")
    form = page.locator("form").filter(has=page.get_by_role("button", name="Regenerate token"))
    action = form.evaluate("f => f.action")
    fields = form.evaluate("f => Object.fromEntries(new FormData(f))")
    assert fields["csrf_token"]

    refused = page.request.post(action, form={k: v for k, v in fields.items() if k != "csrf_token"})

    assert refused.status == 403 and "CSRF" in refused.text()
    assert scim_status(console, token) == 200  # not regenerated
    accepted = page.request.post(action, form=fields)  # the same form with its token: the control
    assert accepted.ok
    assert scim_status(console, token) == 401
