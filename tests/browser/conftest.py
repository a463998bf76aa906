"""The operator console in a real headless browser, against a real `dirsync serve`.

- `console` (one per test module): a folder with `dirsync.toml` (a SQLite store, a file
  directory `hr` that halts beyond two deactivations, a scim directory `okta`), an admin
  (added once per session through the CLI, `console add-admin --password-stdin`, into a
  store each module copies), and `dirsync serve` on a free port of 127.0.0.1.
  `console.settings` and `console.store` are the same configuration and store, for the
  tests to check what the pages claim.
- `browser` (one per session): Debian's chromium, headless, driven by Playwright (never a
  browser Playwright downloads). `page`: a fresh context (no cookies) per test.
  `signed_in`: a page of a context carrying the module's admin session.
- A test that fails leaves a screenshot and the HTML of every page it had open, and the
  server's log, under `test-artifacts/browser/<test>/` ($BROWSER_TEST_ARTIFACTS overrides
  the folder); CI keeps that folder.
- Without chromium (or Playwright) the tests are skipped with the reason, except in CI
  (CI=true), where that is a failure: the browser tests must run there.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import secrets
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import httpx
import pytest

import config
from config import Settings
from service.sync import RunResult, export, sync
from store import Store, open_store

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Playwright, StorageState


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("true", "1", "yes")


# Each test module skips itself without Playwright (`importorskip` with this reason), except
# in CI, where importing it here fails the run instead.
PLAYWRIGHT_MISSING = "Playwright is not installed (pip install -e '.[test]')"
if _in_ci():
    importlib.import_module("playwright.sync_api")

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("BROWSER_TEST_ARTIFACTS") or ROOT / "test-artifacts" / "browser")
ADMIN = "ops@example.com"
STARTUP_SECONDS = 30
# A step that waits longer than this has failed: a page that never shows what a test looks
# for should fail fast, with its screenshot, rather than hang.
STEP_MS = 10_000


def _unavailable(reason: str) -> NoReturn:
    if _in_ci():
        pytest.fail(f"{reason}; CI must run the browser tests (.ci/run installs chromium)", pytrace=False)
    pytest.skip(reason)


@dataclass
class Console:
    """A running `dirsync serve` over its own folder, and the same store and settings for
    the tests to read what the pages claim (through `service`, as every face does)."""

    url: str
    folder: Path
    admin: str
    password: str = field(repr=False)
    server: subprocess.Popen[bytes] = field(repr=False)
    settings: Settings = field(repr=False)
    store: Store = field(repr=False)

    @property
    def log(self) -> Path:
        return self.folder / "serve.log"

    def write_directory(self, users: list[dict[str, Any]], groups: list[dict[str, Any]] = ()) -> None:  # type: ignore[assignment]
        """What the file directory `hr` holds from now on."""
        (self.folder / "directory.json").write_text(json.dumps({"users": users, "groups": list(groups)}))

    def sync(self) -> RunResult:
        """One cycle of `hr`, as `dirsync sync hr` runs it."""
        return sync(self.settings, self.store, "hr")

    def active_emails(self) -> list[str]:
        return sorted(u["email"] for u in export(self.store)["users"] if u["active"])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_until_serving(console: Console) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while True:
        try:
            httpx.get(console.url + "/console", timeout=2)
            return
        except httpx.TransportError:
            if console.server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"dirsync serve did not start:\n{console.log.read_text()}") from None
            time.sleep(0.1)


def _write_config(folder: Path, url: str) -> Path:
    path = folder / "dirsync.toml"
    path.write_text(
        f'[store]\nurl = "sqlite:///{folder / "dirsync.db"}"\n\n'
        f'[web]\npublic_url = "{url}"\n\n'
        "[safety]\nmax_deactivations = 2\n\n"
        '[directories.hr]\nkind = "file"\npath = "directory.json"\n\n'
        '[directories.okta]\nkind = "scim"\n'
    )
    return path


def _cli_env(config_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIRSYNC_")}
    return env | {"DIRSYNC_CONFIG": str(config_path), "PYTHONPATH": str(ROOT)}


@dataclass(frozen=True)
class AdminStore:
    """A migrated store file holding one console admin, and that admin's password."""

    path: Path
    password: str = field(repr=False)


@pytest.fixture(scope="session")
def admin_store(tmp_path_factory: pytest.TempPathFactory) -> AdminStore:
    """The admin added once by the real CLI (`console add-admin --password-stdin`); each
    module's server starts from a copy of this store (a new process per module costs seconds)."""
    folder = tmp_path_factory.mktemp("admin")
    env = _cli_env(_write_config(folder, "http://127.0.0.1:8080"))
    password = secrets.token_urlsafe(18)
    added = subprocess.run([sys.executable, "-m", "cli.main", "console", "add-admin", ADMIN, "--password-stdin"],
                           env=env, cwd=folder, input=password + "\n", capture_output=True, text=True, timeout=120)
    assert added.returncode == 0, added.stdout + added.stderr
    return AdminStore(folder / "dirsync.db", password)


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory, admin_store: AdminStore) -> Iterator[Console]:
    """`dirsync serve` over a fresh store with one admin, for the whole module."""
    folder = tmp_path_factory.mktemp("console")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = _cli_env(_write_config(folder, url))
    (folder / "directory.json").write_text('{"users": [], "groups": []}')
    with closing(sqlite3.connect(admin_store.path)) as source, closing(sqlite3.connect(folder / "dirsync.db")) as copy:
        source.backup(copy)
    settings = config.load(folder / "dirsync.toml", environ={})
    store = open_store(settings.store.url)
    with (folder / "serve.log").open("wb") as log:
        server = subprocess.Popen([sys.executable, "-m", "cli.main", "serve", "--port", str(port)], env=env,
                                  cwd=folder, stdout=log, stderr=subprocess.STDOUT)
    running = Console(url, folder, ADMIN, admin_store.password, server, settings, store)
    try:
        _wait_until_serving(running)
        yield running
    finally:
        running.store.dispose()
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


# Package scope, not session: Playwright's sync API keeps an asyncio loop running in this
# thread while it is open, and the tests after this package call asyncio.run().
@pytest.fixture(scope="package")
def playwright_driver() -> Iterator[Playwright]:
    from playwright.sync_api import sync_playwright

    shutil.rmtree(ARTIFACTS, ignore_errors=True)  # what is kept describes this run's failures only
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="package")
def browser(playwright_driver: Playwright) -> Iterator[Browser]:
    """Debian's chromium, headless (its path: $BROWSER_TEST_CHROMIUM, else `chromium` on PATH)."""
    executable = os.environ.get("BROWSER_TEST_CHROMIUM") or shutil.which("chromium")
    if executable is None:
        _unavailable("chromium is not installed (apt-get install chromium)")
    launched = playwright_driver.chromium.launch(executable_path=executable, headless=True)
    try:
        yield launched
    finally:
        launched.close()


def new_page(browser: Browser, console: Console, **context_options: Any) -> Page:
    context = browser.new_context(base_url=console.url, **context_options)
    context.set_default_timeout(STEP_MS)
    return context.new_page()


@pytest.fixture
def page(browser: Browser, console: Console) -> Iterator[Page]:
    """A page of a new browser context: no cookies, no session."""
    opened = new_page(browser, console)
    try:
        yield opened
    finally:
        opened.context.close()


def sign_in(page: Page, email: str, password: str) -> None:
    """Fill the sign-in form (the one the page shows, else a fresh one) as a person does, and submit it."""
    if "/console/login" not in page.url:
        page.goto("/console/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


@pytest.fixture(scope="module")
def admin_session(browser: Browser, console: Console) -> StorageState:
    """The cookies of one sign-in, shared by the module's `signed_in` pages (one login, not one per test).
    A sign-in that fails leaves its page open, for the failure's screenshot."""
    first = new_page(browser, console)
    sign_in(first, console.admin, console.password)
    first.wait_for_url(re.compile(r"/console/?$"))
    state = first.context.storage_state()
    first.context.close()
    return state


@pytest.fixture
def signed_in(browser: Browser, console: Console, admin_session: StorageState) -> Iterator[Page]:
    """A page whose context carries the admin's session."""
    opened = new_page(browser, console, storage_state=admin_session)
    try:
        yield opened
    finally:
        opened.context.close()


def _artifact_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")[:120] or "page"


def _keep_pages(item: pytest.Item, browser: Browser) -> Path:
    folder = ARTIFACTS / _artifact_name(item.nodeid.removeprefix("tests/browser/"))
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    pages = [page for context in browser.contexts for page in context.pages]
    for number, page in enumerate(pages, 1):
        stem = f"{number}-{_artifact_name(page.url.split('://', 1)[-1].split('/', 1)[-1])}"
        try:
            page.screenshot(path=folder / f"{stem}.png", full_page=True, timeout=5_000)
            (folder / f"{stem}.html").write_text(page.content())
        except Exception as exc:  # noqa: BLE001 - keeping evidence must not hide the test's own failure
            (folder / f"{stem}.txt").write_text(f"{page.url}: no screenshot: {exc}\n")
    console = getattr(item, "funcargs", {}).get("console")
    if isinstance(console, Console) and console.log.exists():
        shutil.copy(console.log, folder / "serve.log")
    return folder


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """On a failure, keep what every open page showed (and the server's log) for whoever reads CI."""
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    browser = getattr(item, "funcargs", {}).get("browser")
    if report.failed and report.when in ("setup", "call") and browser is not None:
        report.sections.append(("browser artifacts", str(_keep_pages(item, browser))))
