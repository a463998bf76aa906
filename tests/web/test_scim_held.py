"""SCIM deactivations held by S2 are a staged plan the console lists and decides like any other."""

from __future__ import annotations

from typing import Any

from config import Settings
from service.scim_tokens import issue_token
from service.staging import open_staged
from store import Store, export_state
from tests.scim.conftest import Scim
from tests.web.conftest import ADMIN, Console


def _held(client: Any, settings: Settings, store: Store) -> tuple[int, list[dict[str, Any]]]:
    """Two deactivations pushed to `push` (limit 1 an hour): the second is held."""
    push = Scim(client, "push", issue_token(settings, store, "push").token)
    users = [push.create_user(f"p{n}@example.com") for n in range(2)]
    off = [{"op": "replace", "value": {"active": False}}]
    assert [push.patch(f"/Users/{u['id']}", off).status_code for u in users] == [200, 503]
    [plan] = open_staged(store, "push")
    return plan.run_id, users


def _active(store: Store) -> dict[str, bool]:
    with store.session() as session:
        return {u["email"]: u["active"] for u in export_state(session)["users"]}


def test_the_console_lists_a_held_scim_request_and_approves_it(
        console: Console, client: Any, settings: Settings, store: Store) -> None:
    run, _ = _held(client, settings, store)
    page = console.get("/console/directories/push")
    assert f"Run {run}" in page.text and "p1@example.com" in page.text and "Approve" in page.text

    response = console.post(f"/console/directories/push/staged/{run}/approve")

    assert response.status_code == 200 and f"approved by {ADMIN}" in response.text
    assert _active(store)["p1@example.com"] is False
    assert open_staged(store, "push") == []


def test_the_console_rejects_a_held_scim_request(console: Console, client: Any, settings: Settings,
                                                  store: Store) -> None:
    run, _ = _held(client, settings, store)

    response = console.post(f"/console/directories/push/staged/{run}/reject")

    assert f"rejected by {ADMIN}" in response.text
    assert _active(store)["p1@example.com"] is True and open_staged(store, "push") == []


def test_the_console_explain_view_shows_the_scim_binding_and_the_held_deactivation(
        console: Console, client: Any, settings: Settings, store: Store) -> None:
    run, users = _held(client, settings, store)

    page = console.get("/console/explain?directory=push&user=p1@example.com")

    assert page.status_code == 200
    assert f"SCIM: id &#39;{users[1]['id']}&#39;" in page.text or f"SCIM: id '{users[1]['id']}'" in page.text
    assert "SCIM token of" in page.text
    assert f"staged in run {run}, awaiting approval: deactivate-user p1@example.com" in page.text
