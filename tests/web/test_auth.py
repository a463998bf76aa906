"""Who may use the console: sign-in, sessions, sign-out, the sign-in rate limit, CSRF."""

from __future__ import annotations

from datetime import timedelta

import freezegun
from sqlalchemy import select
from starlette.testclient import TestClient

from reconcile import clock
from service import console_auth
from store import Store
from store.models import ConsoleAdmin, ConsoleSession
from tests.web.conftest import ADMIN, PASSWORD, Console, make_settings
from web.app import create_app


def test_a_page_without_a_session_redirects_to_sign_in_and_back(client: TestClient) -> None:
    response = client.get("/console/directories/hr?started=full")

    assert response.status_code == 303
    assert response.headers["location"] == "/console/login?next=/console/directories/hr%3Fstarted%3Dfull"


def test_signing_in_sets_an_http_only_same_site_cookie_and_opens_the_console(client: TestClient, admin: str) -> None:
    console = Console(client)

    response = console.sign_in(next_url="/console/directories/hr")

    assert response.status_code == 303
    assert response.headers["location"] == "/console/directories/hr"
    cookie = next(c for c in response.headers.get_list("set-cookie") if c.startswith("dirsync_console="))
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/console" in cookie
    assert "Secure" not in cookie  # public_url is http here
    page = console.get("/console")
    assert page.status_code == 200
    assert ADMIN in page.text and "Sign out" in page.text


def test_the_session_cookie_is_secure_when_the_public_url_is_https(store: Store, tmp_path, hr_file, admin) -> None:
    settings = make_settings(store, tmp_path, public_url="https://dirsync.example.com")
    with TestClient(create_app(settings, store), base_url="https://testserver", follow_redirects=False) as client:
        response = Console(client).sign_in()

    cookie = next(c for c in response.headers.get_list("set-cookie") if c.startswith("dirsync_console="))
    assert "Secure" in cookie


def test_a_wrong_password_and_an_unknown_email_get_the_same_refusal(client: TestClient, admin: str) -> None:
    wrong_password = Console(client).sign_in(password="not the password")
    unknown_email = Console(client).sign_in(email="eve@example.com")

    assert wrong_password.status_code == unknown_email.status_code == 401
    assert "wrong email or password" in wrong_password.text and "wrong email or password" in unknown_email.text
    assert "dirsync_console=" not in " ".join(wrong_password.headers.get_list("set-cookie"))


def test_a_next_address_outside_the_console_is_not_followed(client: TestClient, admin: str) -> None:
    response = Console(client).sign_in(next_url="https://evil.example.com/")

    assert response.headers["location"] == "/console"


def test_after_five_failures_an_email_is_refused_even_with_the_right_password(client: TestClient, admin: str) -> None:
    console = Console(client)
    for _ in range(console_auth.MAX_FAILURES_PER_EMAIL):
        assert console.sign_in(password="guess guess guess").status_code == 401

    refused = console.sign_in()

    assert refused.status_code == 429
    assert "too many failed sign-ins" in refused.text
    assert int(refused.headers["retry-after"]) > 0


def test_the_email_limit_lifts_when_the_window_has_passed(client: TestClient, admin: str) -> None:
    console = Console(client)
    start = clock.now()
    with freezegun.freeze_time(start) as frozen:
        for _ in range(console_auth.MAX_FAILURES_PER_EMAIL):
            console.sign_in(password="guess guess guess")
        frozen.tick(console_auth.WINDOW + timedelta(seconds=2))

        assert console.sign_in().status_code == 303


def test_one_address_is_limited_across_emails(client: TestClient, admin: str) -> None:
    console = Console(client)
    for i in range(console_auth.MAX_FAILURES_PER_ADDRESS):
        console.sign_in(email=f"guess{i}@example.com", password="guess guess guess")

    assert console.sign_in().status_code == 429


def test_the_limit_is_shared_by_every_server_process(store: Store, tmp_path, hr_file, admin: str) -> None:
    settings = make_settings(store, tmp_path)
    with TestClient(create_app(settings, store), follow_redirects=False) as first:
        for _ in range(console_auth.MAX_FAILURES_PER_EMAIL):
            Console(first).sign_in(password="guess guess guess")
    with TestClient(create_app(settings, store), follow_redirects=False) as second:  # another process's app
        assert Console(second).sign_in().status_code == 429


def test_a_session_ends_after_its_lifetime(client: TestClient, admin: str) -> None:
    start = clock.now()
    with freezegun.freeze_time(start) as frozen:
        console = Console(client)
        console.sign_in()
        assert console.get("/console").status_code == 200
        frozen.tick(timedelta(hours=console_auth.SESSION_HOURS, seconds=1))

        assert console.get("/console").status_code == 303


def test_signing_out_ends_the_session_on_the_server(console: Console) -> None:
    cookie = console.client.cookies.get("dirsync_console")

    response = console.post("/console/logout")

    assert response.status_code == 303 and response.headers["location"] == "/console/login"
    console.client.cookies.set("dirsync_console", cookie, path="/console")  # a copied cookie
    assert console.get("/console").status_code == 303


def test_the_store_keeps_neither_the_password_nor_the_session_id(console: Console, store: Store) -> None:
    session_id = console.client.cookies.get("dirsync_console")
    with store.session() as session:
        hashes = list(session.scalars(select(ConsoleAdmin.password_hash)))
        ids = list(session.scalars(select(ConsoleSession.id_hash)))

    assert hashes and all(PASSWORD not in h and h.startswith("scrypt$") for h in hashes)
    assert ids == [console_auth.session_digest(session_id)]


def test_changing_the_password_signs_the_admin_out(console: Console, store: Store) -> None:
    console_auth.set_admin(store, ADMIN, "another long password")

    assert console.get("/console").status_code == 303


def test_a_form_without_the_csrf_token_is_refused_and_changes_nothing(console: Console, store: Store) -> None:
    response = console.post("/console/directories/hr/enable", csrf="")

    assert response.status_code == 403
    assert "CSRF" in response.text
    from service.run_series import recent_runs
    assert recent_runs(store, "hr") == []


def test_a_form_with_another_sessions_token_is_refused(console: Console, client: TestClient) -> None:
    other = console_auth.csrf_token("some other session id")

    assert console.post("/console/directories/hr/enable", csrf=other).status_code == 403


def test_the_sign_in_form_without_its_token_is_refused(client: TestClient, admin: str) -> None:
    response = client.post("/console/login", data={"email": ADMIN, "password": PASSWORD})

    assert response.status_code == 403
    assert "dirsync_console=" not in " ".join(response.headers.get_list("set-cookie"))


def test_a_form_posted_after_the_session_ended_is_refused(client: TestClient) -> None:
    response = client.post("/console/directories/hr/enable", data={"csrf_token": "x"})

    assert response.status_code == 403
    assert "Sign in again" in response.text


def test_a_token_of_any_characters_is_refused_not_an_error(console: Console) -> None:
    assert console.post("/console/directories/hr/enable", csrf="jeton-été").status_code == 403
