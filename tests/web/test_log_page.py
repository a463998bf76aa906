"""The console's Provisioning log page through HTTP: signed-in admins only, filters in the
query string, keyset pages with Newer/Older links, and a clear 400 for what it cannot use."""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from starlette.testclient import TestClient

import config
from reconcile.model import Action, Kind, Operation, Ref, Rejection
from service.console_auth import set_admin, sign_in
from store import Outcome, Store, start_run
from store.events import insert_events, operation_event, rejection_event
from web.app import create_app

T0 = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)
ADMIN, PASSWORD = "admin@example.com", "a long enough password"


@pytest.fixture
def client(store: Store) -> Iterator[TestClient]:
    settings = config.parse({"store": {"url": store.engine.url.render_as_string(hide_password=False)},
                             "directories": {"okta": {"kind": "scim"}, "hr": {"kind": "scim"}}}, {})
    with TestClient(create_app(settings, store), follow_redirects=False) as http:
        yield http


@pytest.fixture
def admin(client: TestClient, store: Store) -> TestClient:
    set_admin(store, ADMIN, PASSWORD)
    client.cookies.set("dirsync_console", sign_in(store, ADMIN, PASSWORD, "testclient").session_id)
    return client


def _op(action: Action, target: str, reason: str | None = None, **values: Any) -> Operation:
    old = tuple((k[4:], v) for k, v in values.items() if k.startswith("old_"))
    new = tuple((k, v) for k, v in values.items() if not k.startswith("old_"))
    return Operation(action, target, user=Ref(local_id=1), group=Ref(local_id=1), values=new, old=old, reason=reason)


def _events(store: Store, directory: str, *ops: Operation | Rejection, at: datetime = T0) -> int:
    with store.session() as session:
        run = start_run(session, directory=directory, trigger="beat", mode="full", at=at)
        insert_events(session, [
            rejection_event(run, seq, op, at=at) if isinstance(op, Rejection) else
            operation_event(run, seq, op, Outcome.APPLIED, at=at) for seq, op in enumerate(ops, 1)])
    return run


def _rows(response: Any) -> list[str]:
    """Each table row's text, tags stripped."""
    body = response.text.split("<tbody>", 1)[-1].split("</tbody>", 1)[0]
    return [" ".join(html.unescape(re.sub(r"<[^>]+>", " ", row)).split()) for row in body.split("<tr>")[1:]]


def _link(response: Any, text: str) -> str | None:
    found = re.search(rf'<a href="([^"]*)"[^>]*>{text}</a>', response.text)
    return html.unescape(found.group(1)) if found else None


def test_the_log_asks_for_sign_in_first(client: TestClient) -> None:
    response = client.get("/console/log?user=ana@example.com")

    assert response.status_code == 303
    assert response.headers["location"].startswith("/console/login?next=/console/log")


def test_each_event_links_to_its_run_and_to_the_explain_view_of_its_object(admin: TestClient, store: Store) -> None:
    run = _events(store, "okta",
                  _op(Action.UPDATE_USER, "ana@example.com", old_family_name="Lee", family_name="Park"),
                  _op(Action.ADD_MEMBER, "Engineering", member="ana@example.com"),
                  Rejection(Kind.GROUP, "G" * 30, "name-too-long"))

    response = admin.get("/console/log")

    assert response.status_code == 200
    rows = _rows(response)
    assert rows[0].endswith("reject " + "G" * 30 + " rejected name-too-long")
    assert "add-member Engineering ← ana@example.com applied" in rows[1]
    assert "update-user ana@example.com applied family_name: Lee → Park" in rows[2]
    assert f'href="/console/directories/okta/runs/{run}"' in response.text
    assert 'href="/console/explain?directory=okta&amp;user=ana%40example.com"' in response.text
    assert 'href="/console/explain?directory=okta&amp;group=Engineering"' in response.text


def test_searching_for_one_user_shows_only_their_events_and_keeps_the_filter(admin: TestClient, store: Store) -> None:
    _events(store, "okta", _op(Action.UPDATE_USER, "ana@example.com", family_name="Park"),
            _op(Action.UPDATE_USER, "bo@example.com", family_name="Kim"))
    _events(store, "hr", _op(Action.DEACTIVATE_USER, "ana@example.com", "left-scope", active=False),
            at=T0 + timedelta(hours=1))

    response = admin.get("/console/log", params={"user": "ANA@example.com"})
    in_hr = admin.get("/console/log", params={"user": "ana@example.com", "directory": "hr", "reason": "left-scope"})

    assert [row.split()[2] for row in _rows(response)] == ["hr", "okta"]
    assert all("bo@example.com" not in row for row in _rows(response))
    assert 'name="user" value="ANA@example.com"' in response.text
    assert len(_rows(in_hr)) == 1 and "deactivate-user" in _rows(in_hr)[0]


def test_older_and_newer_links_page_through_every_event_once(admin: TestClient, store: Store) -> None:
    for n in range(3):
        _events(store, "okta", *(_op(Action.UPDATE_USER, f"u{n}-{i}@example.com", family_name="X") for i in range(40)),
                at=T0 + timedelta(minutes=n))

    first = admin.get("/console/log", params={"action": "update-user"})
    older = _link(first, "Older")
    assert older is not None and "action=update-user" in older and _link(first, "Newer") is None
    second = admin.get(older)
    third = admin.get(_link(second, "Older") or "")
    back = admin.get(_link(third, "Newer") or "")

    pages = [_rows(first), _rows(second), _rows(third)]
    assert [len(p) for p in pages] == [50, 50, 20]
    targets = [row.split()[6] for p in pages for row in p]
    assert len(set(targets)) == 120
    assert _link(third, "Older") is None
    assert _rows(back) == _rows(second)


@pytest.mark.parametrize(("query", "message"), [
    ({"outcome": "exploded"}, "is not an outcome"),
    ({"since": "yesterday"}, "is not a time"),
    ({"since": "2026-12-02", "until": "2026-12-01"}, "must be earlier than"),
    ({"directory": "nowhere"}, "no directory named"),
    ({"action": "<script>"}, "is not an action code"),
    ({"older": "not-a-cursor"}, "page link is not valid"),
    # a well-formed cursor whose id no 64-bit column can hold
    ({"older": base64.urlsafe_b64encode(b"2026-12-01T16:07:13+00:00|9223372036854775808").decode()},
     "page link is not valid"),
    ({"newer": base64.urlsafe_b64encode(b"2026-12-01T16:07:13+00:00|-1").decode()}, "page link is not valid"),
])
def test_a_filter_the_log_cannot_use_is_a_clear_400(admin: TestClient, query: dict[str, str], message: str) -> None:
    response = admin.get("/console/log", params=query)

    assert response.status_code == 400
    assert message in html.unescape(response.text)
    assert "<script>" not in response.text


def test_an_empty_search_says_nothing_matches(admin: TestClient, store: Store) -> None:
    _events(store, "okta", _op(Action.UPDATE_USER, "ana@example.com", family_name="Park"))

    response = admin.get("/console/log", params={"outcome": "failed", "since": "2026-11-01T08:00"})

    assert response.status_code == 200
    assert "No events match these filters." in response.text
