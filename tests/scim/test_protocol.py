"""What every SCIM request meets: the token, the directory, discovery, media types and bad input."""

from __future__ import annotations

import json

import pytest

ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"


@pytest.mark.parametrize("header", [None, "Bearer ", "Bearer wrong", "Basic abc", "Bearer dsync_scim_forged"])
def test_missing_or_wrong_token_is_401_with_a_scim_error(okta, header: str | None) -> None:
    headers = {"Authorization": header} if header is not None else {}
    response = okta.client.get("/scim/v2/okta/Users", headers=headers)

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="SCIM"'
    body = response.json()
    assert body["schemas"] == [ERROR] and body["status"] == "401" and body["detail"]


@pytest.mark.parametrize(("content", "media"), [(b"{not json", "application/scim+json"),
                                                (b'{"userName": "ann@example.com"}', "text/plain"),
                                                (b"x" * 2_000_000, "application/scim+json")])
def test_a_request_without_a_valid_token_gets_401_whatever_its_body(okta, content: bytes, media: str) -> None:
    headers = {"Authorization": "Bearer dsync_scim_forged", "Content-Type": media}

    response = okta.client.post("/scim/v2/okta/Users", content=content, headers=headers)

    assert response.status_code == 401 and response.json()["schemas"] == [ERROR]
    assert okta.get("/Users").json()["totalResults"] == 0


def test_a_token_opens_only_its_own_directory(okta, entra) -> None:
    response = okta.client.get("/scim/v2/entra/Users", headers=okta.headers)

    assert response.status_code == 401


@pytest.mark.parametrize("directory", ["nope", "hr"])
def test_unknown_or_non_scim_directory_is_404(okta, directory: str) -> None:
    response = okta.client.get(f"/scim/v2/{directory}/Users", headers=okta.headers)

    assert response.status_code == 404 and response.json()["schemas"] == [ERROR]


def test_service_provider_config_says_what_is_offered(okta) -> None:
    body = okta.get("/ServiceProviderConfig").json()

    assert body["patch"]["supported"] is True and body["filter"]["supported"] is True
    assert body["bulk"]["supported"] is False and body["sort"]["supported"] is False
    assert body["authenticationSchemes"][0]["type"] == "oauthbearertoken"


def test_resource_types_and_schemas(okta) -> None:
    types = okta.get("/ResourceTypes").json()
    schemas = okta.get("/Schemas").json()

    assert [t["id"] for t in types["Resources"]] == ["User", "Group"]
    assert okta.get("/ResourceTypes/User").json()["endpoint"] == "/Users"
    assert {s["name"] for s in schemas["Resources"]} == {"User", "Group"}
    user = okta.get("/Schemas/urn:ietf:params:scim:schemas:core:2.0:User").json()
    assert {a["name"] for a in user["attributes"]} >= {"userName", "active", "emails", "name"}


def test_discovery_refuses_writes_and_filters(okta) -> None:
    assert okta.post("/ServiceProviderConfig", {}).status_code == 405
    assert okta.post("/ServiceProviderConfig", {}).json()["schemas"] == [ERROR]
    assert okta.get('/Schemas?filter=id eq "x"').status_code == 403


def test_bulk_is_not_offered(okta) -> None:
    response = okta.post("/Bulk", {"Operations": []})

    assert response.status_code == 501 and response.json()["schemas"] == [ERROR]


def test_malformed_json_is_400_invalid_syntax(okta) -> None:
    response = okta.client.post("/scim/v2/okta/Users", content=b'{"userName": ', headers=okta.headers)

    assert response.status_code == 400 and response.json()["scimType"] == "invalidSyntax"


def test_application_json_is_accepted_and_text_plain_is_415(okta) -> None:
    body = json.dumps({"userName": "ann@example.com"}).encode()
    as_json = okta.client.post("/scim/v2/okta/Users", content=body,
                               headers={**okta.headers, "Content-Type": "application/json; charset=utf-8"})
    as_text = okta.client.post("/scim/v2/okta/Users", content=body,
                               headers={**okta.headers, "Content-Type": "text/plain"})

    assert as_json.status_code == 201
    assert as_text.status_code == 415


def test_a_10_mb_body_is_413(okta) -> None:
    body = json.dumps({"userName": "ann@example.com", "displayName": "x" * 10_000_000}).encode()

    response = okta.client.post("/scim/v2/okta/Users", content=body, headers=okta.headers)

    assert response.status_code == 413 and response.json()["schemas"] == [ERROR]


@pytest.mark.parametrize("body", [[], {"Operations": []}, {"Operations": [{"op": "move", "path": "x"}]},
                                  {"Operations": [{"op": "remove"}]}])
def test_bad_patch_bodies_are_400(okta, body: object) -> None:
    user = okta.create_user("ann@example.com")

    response = okta.request("PATCH", f"/Users/{user['id']}", body)

    assert response.status_code == 400 and response.json()["schemas"] == [ERROR]


def test_unknown_endpoint_is_404(okta) -> None:
    assert okta.get("/Devices").status_code == 404
