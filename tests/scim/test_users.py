"""/Users through HTTP: CRUD, filters, paging, projections, and the rules (R1, R7)."""

from __future__ import annotations

import pytest

from service.scim_runs import flush_counts
from store import Store, export_state, list_events, list_runs

USER = "urn:ietf:params:scim:schemas:core:2.0:User"


def _users(store: Store) -> dict[str, dict]:
    with store.session() as session:
        return {u["email"]: u for u in export_state(session)["users"]}


def test_post_answers_201_with_the_user_and_its_location(okta) -> None:
    response = okta.post("/Users", {"schemas": [USER], "userName": "ann@example.com", "externalId": "00u1",
                                    "name": {"givenName": "Ann", "familyName": "Lee"}, "active": True,
                                    "password": "secret", "groups": [], "locale": "en-US"})

    assert response.status_code == 201
    assert response.headers["content-type"].startswith("application/scim+json")
    body = response.json()
    assert body["userName"] == "ann@example.com" and body["active"] is True
    assert body["externalId"] == "00u1" and body["name"] == {"givenName": "Ann", "familyName": "Lee"}
    assert "password" not in body
    assert response.headers["location"] == body["meta"]["location"] == \
        f"http://127.0.0.1:8080/scim/v2/okta/Users/{body['id']}"
    assert okta.get(f"/Users/{body['id']}").json() == body


def test_the_store_binds_the_idp_external_id_or_else_the_scim_id(okta, store: Store) -> None:
    with_external = okta.create_user("ann@example.com", externalId="00u1")
    without = okta.create_user("bob@example.com")

    users = _users(store)
    assert (users["ann@example.com"]["managed_by"], users["ann@example.com"]["external_id"]) == ("okta", "00u1")
    assert users["bob@example.com"]["external_id"] == without["id"]
    assert "externalId" not in without and with_external["externalId"] == "00u1"


def test_a_second_user_with_the_same_email_in_another_case_is_409_and_changes_nothing(okta, store: Store) -> None:
    """R1, and Okta's retried POST after a timeout: no second user, no cleared fields."""
    first = okta.create_user("ann@example.com", displayName="Ann Lee")

    response = okta.post("/Users", {"userName": "ANN@example.com", "active": False})

    assert response.status_code == 409
    assert response.json()["scimType"] == "uniqueness" and "R1" in response.json()["detail"]
    assert okta.get(f"/Users/{first['id']}").json() == first
    assert len(_users(store)) == 1


def test_username_that_is_not_an_email_uses_the_work_email(okta) -> None:
    body = okta.create_user("ann", emails=[{"value": "home@example.com", "type": "home"},
                                           {"value": "ann@example.com", "type": "work"}])

    assert body["userName"] == "ann@example.com"


def test_neither_username_nor_email_is_400_with_the_rule(okta) -> None:
    response = okta.post("/Users", {"userName": "ann", "emails": []})

    assert response.status_code == 400
    assert response.json()["scimType"] == "invalidValue"
    assert response.json()["detail"].startswith("R1 (invalid-email)")


def test_a_local_user_with_the_same_email_is_linked_not_duplicated(okta, store: Store, settings) -> None:
    from reconcile.admin import add_user
    from reconcile.apply import apply
    from store import load_local_state

    with store.session() as session:
        local = load_local_state(session)
    apply(store, add_user(local, "ann@example.com", "Ann", settings.rules.to_rules()), run_id=None)

    created = okta.create_user("Ann@Example.com")

    users = _users(store)
    assert list(users) == ["Ann@Example.com"]
    assert users["Ann@Example.com"]["managed_by"] == "okta" and created["userName"] == "Ann@Example.com"


def test_a_user_another_directory_manages_is_409(okta, entra) -> None:
    okta.create_user("ann@example.com")

    response = entra.post("/Users", {"userName": "ann@example.com"})

    assert response.status_code == 409 and "okta" in response.json()["detail"]


@pytest.mark.parametrize("active", [False, "False", "false"])
def test_patch_active_false_deactivates_and_never_deletes(okta, store: Store, active: object) -> None:
    """R7, with Entra's string booleans."""
    user = okta.create_user("ann@example.com")

    response = okta.patch(f"/Users/{user['id']}", [{"op": "Replace", "path": "active", "value": active}])

    assert response.status_code == 200 and response.json()["active"] is False
    assert _users(store)["ann@example.com"]["active"] is False


def test_put_with_active_false_deactivates_and_without_active_leaves_it(okta, store: Store) -> None:
    user = okta.create_user("ann@example.com")
    body = {k: v for k, v in user.items() if k not in ("active",)}

    assert okta.put(f"/Users/{user['id']}", {**body, "active": False}).json()["active"] is False
    assert okta.put(f"/Users/{user['id']}", body).json()["active"] is False
    assert okta.put(f"/Users/{user['id']}", {**body, "active": True}).json()["active"] is True


def test_put_replaces_the_profile(okta) -> None:
    user = okta.create_user("ann@example.com")

    changed = okta.put(f"/Users/{user['id']}", {**user, "userName": "ann.lee@example.com",
                                                "name": {"givenName": "Annie", "familyName": "Lee"}}).json()

    assert changed["userName"] == "ann.lee@example.com" and changed["name"]["givenName"] == "Annie"
    assert changed["id"] == user["id"]


def test_put_that_takes_another_users_email_is_409(okta) -> None:
    okta.create_user("ann@example.com")
    bob = okta.create_user("bob@example.com")

    response = okta.put(f"/Users/{bob['id']}", {**bob, "userName": "ANN@example.com"})

    assert response.status_code == 409 and response.json()["scimType"] == "uniqueness"


def test_unchanged_put_writes_nothing(okta, store: Store) -> None:
    user = okta.create_user("ann@example.com")
    with store.session() as session:
        before = sum(len(list_events(session, r.id)) for r in list_runs(session))

    response = okta.put(f"/Users/{user['id']}", user)

    with store.session() as session:
        after = sum(len(list_events(session, r.id)) for r in list_runs(session))
    assert response.status_code == 200 and response.json() == user
    assert after == before


def test_delete_deactivates_unbinds_and_keeps_the_row_managed(okta, store: Store) -> None:
    user = okta.create_user("ann@example.com")

    assert okta.delete(f"/Users/{user['id']}").status_code == 204

    assert okta.get(f"/Users/{user['id']}").status_code == 404
    assert okta.delete(f"/Users/{user['id']}").status_code == 404
    row = _users(store)["ann@example.com"]
    assert row["active"] is False and row["managed_by"] == "okta"
    assert okta.get('/Users?filter=userName eq "ann@example.com"').json()["totalResults"] == 0


def test_post_after_delete_binds_a_new_identity_that_keeps_no_groups(okta, store: Store) -> None:
    old = okta.create_user("ann@example.com")
    group = okta.create_group("Sales", [old["id"]])
    okta.delete(f"/Users/{old['id']}")

    new = okta.create_user("ann@example.com")

    assert new["id"] != old["id"] and new["active"] is True
    assert okta.get(f"/Groups/{group['id']}").json()["members"] == []
    assert len(_users(store)) == 1


def test_unknown_id_is_404_in_the_scim_error_schema(okta) -> None:
    response = okta.get("/Users/does-not-exist")

    assert response.status_code == 404
    assert response.json() == {"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], "status": "404",
                               "detail": "User does-not-exist not found"}


# --- lists and filters -------------------------------------------------------------------------


@pytest.fixture
def three(okta) -> list[dict]:
    return [okta.create_user(f"user{n}@example.com", externalId=f"ext{n}", displayName=f"User {n}")
            for n in range(3)]


@pytest.mark.parametrize("expression", [
    'userName eq "USER1@example.com"',
    'email eq "user1@example.com"',
    'emails.value eq "user1@example.com"',
    'emails[type eq "work"].value eq "user1@example.com"',
    'externalId eq "ext1"',
    'displayName eq "user 1"',
    'urn:ietf:params:scim:schemas:core:2.0:User:userName eq "user1@example.com"',
    'userName eq "user1@example.com" and externalId eq "ext1"',
    '(userName eq "nobody@example.com") or (externalId eq "ext1")',
])
def test_filters_find_the_user(okta, three, expression: str) -> None:
    body = okta.get("/Users", params={"filter": expression}).json()

    assert body["totalResults"] == 1
    assert [r["id"] for r in body["Resources"]] == [three[1]["id"]]


def test_filter_by_id(okta, three) -> None:
    body = okta.get("/Users", params={"filter": f'id eq "{three[2]["id"]}"'}).json()

    assert [r["userName"] for r in body["Resources"]] == ["user2@example.com"]


def test_a_random_filter_is_200_with_an_empty_list(okta, three) -> None:
    """Entra's Test Connection."""
    response = okta.get("/Users", params={"filter": 'userName eq "0f8fad5b-d9cb-469f-a165-70867728950e"'})

    assert response.status_code == 200
    assert response.json()["totalResults"] == 0 and response.json()["Resources"] == []


@pytest.mark.parametrize("expression", ['userName co "x"', 'nickName eq "x"', 'userName eq', 'userName eq x',
                                        '(userName eq "x"', 'not (userName eq "x")'])
def test_invalid_filters_are_400_invalid_filter(okta, expression: str) -> None:
    response = okta.get("/Users", params={"filter": expression})

    assert response.status_code == 400
    assert response.json()["scimType"] == "invalidFilter"


def test_pages_follow_a_stable_order(okta, three) -> None:
    first = okta.get("/Users?startIndex=1&count=2").json()
    second = okta.get("/Users?startIndex=3&count=2").json()

    assert (first["totalResults"], first["startIndex"], first["itemsPerPage"]) == (3, 1, 2)
    assert (second["startIndex"], second["itemsPerPage"]) == (3, 1)
    ids = [r["id"] for r in first["Resources"] + second["Resources"]]
    assert ids == [u["id"] for u in three]
    assert okta.get("/Users?count=0").json() == {**okta.get("/Users?count=0").json(), "Resources": [],
                                                 "totalResults": 3}


def test_attributes_and_excluded_attributes(okta, three) -> None:
    only = okta.get(f"/Users/{three[0]['id']}?attributes=userName").json()
    without = okta.get(f"/Users/{three[0]['id']}?excludedAttributes=name,emails").json()

    assert set(only) == {"schemas", "id", "meta", "userName"}
    assert "name" not in without and "emails" not in without and without["userName"] == "user0@example.com"


def test_each_change_is_an_event_of_the_hours_scim_run_with_method_and_path(okta, store: Store) -> None:
    user = okta.create_user("ann@example.com")
    okta.patch(f"/Users/{user['id']}", [{"op": "replace", "value": {"active": False}}])
    flush_counts(store)  # run counts are a summary written once a second and when the app stops

    with store.session() as session:
        runs = list_runs(session)
        events = [(e.action, e.outcome, e.detail) for e in list_events(session, runs[0].id)]
    assert [(r.directory, r.trigger, r.status) for r in runs] == [("okta", "scim", "succeeded")]
    assert events == [("create-user", "applied", "POST /Users"),
                      ("deactivate-user", "applied", f"PATCH /Users/{user['id']}")]
    assert runs[0].counts["applied"] == 2


def test_run_counts_are_written_when_the_app_stops(settings, store: Store) -> None:
    from starlette.testclient import TestClient

    from service.scim_tokens import issue_token
    from tests.scim.conftest import Scim
    from web.app import create_app

    token = issue_token(settings, store, "okta").token
    with TestClient(create_app(settings, store)) as client:
        scim = Scim(client, "okta", token)
        for n in range(3):
            scim.create_user(f"u{n}@example.com")

    with store.session() as session:
        assert list_runs(session)[0].counts["create-user.applied"] == 3
