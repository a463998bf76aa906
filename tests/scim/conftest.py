"""A scim directory `okta` (and `entra`) on an empty store, the web app over it, and
clients that carry each directory's bearer token."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import config
from config import Settings
from service.scim_tokens import issue_token
from store import Store, export_state

SCIM = "application/scim+json"


def make_settings(store_url: str, **sections: Any) -> Settings:
    data: dict[str, Any] = {
        "store": {"url": store_url},
        "directories": {"okta": {"kind": "scim"}, "entra": {"kind": "scim"}},
        **sections,
    }
    return config.parse(data, {})


@pytest.fixture
def settings(store: Store) -> Settings:
    return make_settings(store.engine.url.render_as_string(hide_password=False))


class Scim:
    """A client of one directory's SCIM base URL."""

    def __init__(self, client: Any, directory: str, token: str) -> None:
        self.client = client
        self.base = f"/scim/v2/{directory}"
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": SCIM}
        self.token = token

    def request(self, method: str, path: str, body: Any = None, **kwargs: Any) -> Any:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        return self.client.request(method, self.base + path, json=body, headers=headers, **kwargs)

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, body: Any, **kwargs: Any) -> Any:
        return self.request("POST", path, body, **kwargs)

    def put(self, path: str, body: Any, **kwargs: Any) -> Any:
        return self.request("PUT", path, body, **kwargs)

    def patch(self, path: str, operations: list[dict[str, Any]], **kwargs: Any) -> Any:
        body = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": operations}
        return self.request("PATCH", path, body, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Any:
        return self.request("DELETE", path, **kwargs)

    # shorthands for the common resources
    def create_user(self, email: str, **extra: Any) -> dict[str, Any]:
        body = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": email,
                "name": {"givenName": "Ann", "familyName": "Lee"},
                "emails": [{"primary": True, "value": email, "type": "work"}], "active": True, **extra}
        response = self.post("/Users", body)
        assert response.status_code == 201, response.text
        return dict(response.json())

    def create_group(self, name: str, members: list[str] = ()) -> dict[str, Any]:  # type: ignore[assignment]
        body = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": name,
                "members": [{"value": m} for m in members]}
        response = self.post("/Groups", body)
        assert response.status_code == 201, response.text
        return dict(response.json())


@pytest.fixture
def app_client(settings: Settings, store: Store) -> Iterator[Any]:
    from starlette.testclient import TestClient

    from web.app import create_app

    with TestClient(create_app(settings, store)) as client:
        yield client


@pytest.fixture
def okta(app_client: Any, settings: Settings, store: Store) -> Scim:
    return Scim(app_client, "okta", issue_token(settings, store, "okta").token)


@pytest.fixture
def entra(app_client: Any, settings: Settings, store: Store) -> Scim:
    return Scim(app_client, "entra", issue_token(settings, store, "entra").token)


@pytest.fixture
def ws(tmp_path: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, store_url: str) -> Any:
    """A folder whose `dirsync.toml` names a scim directory `okta` and a file directory `hr`."""
    from tests.cli.conftest import Workspace

    monkeypatch.chdir(tmp_path)
    for name in ("DIRSYNC_CONFIG", "DIRSYNC_STORE_URL"):
        monkeypatch.delenv(name, raising=False)
    workspace = Workspace(tmp_path, capsys, monkeypatch)
    workspace.write_directory()
    workspace.write_config(
        f'[store]\nurl = "{store_url}"\n\n[web]\npublic_url = "https://dirsync.example.com/"\n\n'
        '[directories.okta]\nkind = "scim"\ntoken_days = 30\n\n'
        '[directories.hr]\nkind = "file"\npath = "directory.json"\n'
    )
    if not store_url.startswith("sqlite"):
        assert workspace.run("db", "upgrade").code == 0
    return workspace


PUSH_CONFIG = """[store]
url = "{url}"

[safety]
max_deactivations = 2
max_deactivation_ratio = 1.0

[directories.{directory}]
kind = "scim"
"""


class Push:
    """A workspace (config, CLI) with the web app over its store and an Okta client."""

    def __init__(self, ws: Any, settings: Settings, store: Store, okta: Scim, directory: str = "okta") -> None:
        self.ws, self.settings, self.store, self.okta = ws, settings, store, okta
        self.directory = directory
        self.users = [okta.create_user(f"u{n}@example.com") for n in range(5)]

    def deactivate(self, n: int) -> Any:
        return self.okta.patch(f"/Users/{self.users[n]['id']}", [{"op": "replace", "value": {"active": False}}])

    def reactivate(self, n: int) -> Any:
        return self.okta.patch(f"/Users/{self.users[n]['id']}", [{"op": "replace", "path": "active", "value": True}])

    def active(self) -> dict[str, bool]:
        with self.store.session() as session:
            return {u["email"]: u["active"] for u in export_state(session)["users"]}

    def plan(self) -> Any:
        from service.staging import open_staged

        [plan] = open_staged(self.store, self.directory)
        return plan


@pytest.fixture
def push(ws: Any, store_url: str) -> Iterator[Push]:
    """`ws` whose scim directory `okta` holds deactivations over 2 an hour, with the web app
    over its store and five users pushed."""
    yield from _push(ws, store_url, "okta")


@pytest.fixture
def push_scim(ws: Any, store_url: str) -> Iterator[Push]:
    """As `push`, for a scim directory named `scim`: its base URL names it twice
    (`/scim/v2/scim`)."""
    yield from _push(ws, store_url, "scim")


def _push(ws: Any, store_url: str, directory: str) -> Iterator[Push]:
    from starlette.testclient import TestClient

    from config import load
    from store import open_store
    from web.app import create_app

    ws.write_config(PUSH_CONFIG.format(url=store_url, directory=directory))
    token = ws.run("scim", "token", directory, "--json").json()["token"]
    settings = load(ws.folder / "dirsync.toml")
    store = open_store(settings.store.url)
    try:
        with TestClient(create_app(settings, store)) as client:
            yield Push(ws, settings, store, Scim(client, directory, token), directory)
    finally:
        store.dispose()
