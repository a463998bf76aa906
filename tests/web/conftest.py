"""The web app over a migrated store with a file directory `hr` and a SCIM directory
`push`, an admin, and a `Console` client that signs in as a person would (the sign-in
form, then each page's CSRF token)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

import config
from config import Settings
from service.console_auth import set_admin
from store import Store
from web.app import create_app

ADMIN = "ann@example.com"
PASSWORD = "correct horse battery"
_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


class Console:
    """A browser-like client of the console (cookies kept, redirects not followed)."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.csrf = ""

    def get(self, path: str, **kwargs: Any) -> Any:
        response = self.client.get(path, **kwargs)
        found = _TOKEN.search(response.text)
        if found and "/console/logout" in response.text:
            self.csrf = found.group(1)
        return response

    def post(self, path: str, data: dict[str, str] | None = None, *, csrf: str | None = None) -> Any:
        form = {"csrf_token": self.csrf if csrf is None else csrf, **(data or {})}
        if csrf == "":
            form.pop("csrf_token")
        return self.client.post(path, data=form)

    def sign_in(self, email: str = ADMIN, password: str = PASSWORD, next_url: str = "/console") -> Any:
        form = self.client.get("/console/login")
        token = _TOKEN.search(form.text)
        assert token is not None
        response = self.client.post("/console/login", data={"email": email, "password": password,
                                                             "csrf_token": token.group(1), "next": next_url})
        if response.status_code == 303:
            self.get("/console")
        return response


def write_directory(path: Path, users: list[dict[str, Any]], groups: list[dict[str, Any]] | None = None) -> None:
    path.write_text(json.dumps({"users": users, "groups": groups or []}))


def person(uid: str, email: str, active: bool = True) -> dict[str, Any]:
    return {"id": uid, "email": email, "active": active}


def make_settings(store: Store, folder: Path, **web: Any) -> Settings:
    return config.parse({
        "store": {"url": store.engine.url.render_as_string(hide_password=False)},
        "directories": {"hr": {"kind": "file", "path": str(folder / "hr.json")}, "push": {"kind": "scim"}},
        # Small directories in tests: two deactivations already stage the plan.
        "safety": {"max_deactivations": 1},
        **({"web": web} if web else {}),
    }, {})


@pytest.fixture
def hr_file(tmp_path: Path) -> Path:
    path = tmp_path / "hr.json"
    write_directory(path, [person("u1", "ada@example.com"), person("u2", "bob@example.com"),
                           person("u3", "cy@example.com")])
    return path


@pytest.fixture
def settings(store: Store, tmp_path: Path, hr_file: Path) -> Settings:
    return make_settings(store, tmp_path)


@pytest.fixture
def admin(store: Store) -> str:
    set_admin(store, ADMIN, PASSWORD)
    return ADMIN


@pytest.fixture
def client(settings: Settings, store: Store) -> Iterator[TestClient]:
    with TestClient(create_app(settings, store), follow_redirects=False) as test_client:
        yield test_client


@pytest.fixture
def console(client: TestClient, admin: str) -> Console:
    """Signed in as the admin."""
    signed = Console(client)
    assert signed.sign_in().status_code == 303
    assert signed.csrf
    return signed
