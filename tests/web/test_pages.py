"""What the pages show, and clear error pages for what does not exist or is malformed."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from config import Settings
from service.run_series import recent_runs
from service.sync import sync
from store import Store
from tests.web.conftest import Console
from web.app import create_app


def test_the_directories_page_has_a_row_per_directory(console: Console) -> None:
    page = console.get("/console")

    assert page.status_code == 200
    assert 'href="/console/directories/hr"' in page.text and 'href="/console/directories/push"' in page.text
    assert "no token" in page.text  # push has no SCIM token yet
    assert 'href="/console/log"' in page.text


def test_a_directory_page_charts_its_runs(console: Console, settings: Settings, store: Store) -> None:
    sync(settings, store, "hr")
    sync(settings, store, "hr", full=True)

    page = console.get("/console/directories/hr")

    assert page.status_code == 200
    assert page.text.count('<rect class="bar"') == 2
    assert "<polyline" in page.text


def test_the_scim_tab_shows_the_base_url(console: Console) -> None:
    page = console.get("/console/directories/push")

    assert "http://127.0.0.1:8080/scim/v2/push" in page.text
    assert "Generate token" in page.text


def test_an_unknown_directory_is_a_404_page(console: Console) -> None:
    page = console.get("/console/directories/nope")

    assert page.status_code == 404
    assert "No directory named &#39;nope&#39; is configured" in page.text


def test_an_unknown_console_path_is_a_404_page_not_json(console: Console) -> None:
    page = console.get("/console/nothing/here")

    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")


def test_the_explain_view_traces_a_user(console: Console, settings: Settings, store: Store) -> None:
    sync(settings, store, "hr")

    page = console.get("/console/explain?directory=hr&user=ADA@example.com")

    assert page.status_code == 200
    assert "managed by directory &#39;hr&#39;" in page.text
    assert "create-user" in page.text


def test_the_explain_view_of_a_bad_email_is_a_400_page(console: Console) -> None:
    page = console.get("/console/explain?user=not-an-email")

    assert page.status_code == 400
    assert "user must be an email address" in page.text


def test_the_explain_view_needs_one_object(console: Console) -> None:
    assert console.get("/console/explain?directory=hr").status_code == 400


def test_the_explain_view_of_an_unknown_directory_is_a_404_page(console: Console) -> None:
    assert console.get("/console/explain?directory=nope&group=Engineering").status_code == 404


def test_pages_forbid_framing_and_scripts(console: Console) -> None:
    headers = console.get("/console").headers

    assert headers["x-frame-options"] == "DENY"
    assert "script-src 'none'" in headers["content-security-policy"]


def test_a_run_page_lists_its_events_and_who_started_it(console: Console, settings: Settings, store: Store) -> None:
    console.post("/console/directories/hr/sync", {"mode": "full"})
    [run] = [r for r in recent_runs(store, "hr") if r.mode == "full"]

    page = console.get(f"/console/directories/hr/runs/{run.id}")

    assert page.status_code == 200
    assert "console, by ann@example.com" in page.text
    assert page.text.count("<td>create-user</td>") == 3
    assert f'href="/console/explain?directory=hr&amp;user=ada%40example.com"' in page.text


def test_the_runs_table_anchors_each_run(console: Console, settings: Settings, store: Store) -> None:
    result = sync(settings, store, "hr")

    assert f'id="run-{result.run_id}"' in console.get("/console/directories/hr").text


def test_a_run_of_another_directory_is_a_404_page(console: Console, settings: Settings, store: Store) -> None:
    result = sync(settings, store, "hr")

    assert console.get(f"/console/directories/push/runs/{result.run_id}").status_code == 404
    assert console.get("/console/directories/hr/runs/999").status_code == 404


def test_a_failing_page_is_a_500_page_without_a_traceback(settings: Settings, store: Store, admin: str,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from web.console import directories

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the store went away")

    monkeypatch.setattr(directories, "collect", broken)
    with TestClient(create_app(settings, store), follow_redirects=False, raise_server_exceptions=False) as client:
        console = Console(client)
        console.sign_in()
        page = console.get("/console")

    assert page.status_code == 500
    assert page.headers["content-type"].startswith("text/html")
    assert "Traceback" not in page.text and "the store went away" not in page.text
