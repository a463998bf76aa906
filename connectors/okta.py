"""Okta through the official `okta` SDK (`kind = "okta"`): full reads and incremental reads.

`read(None)` returns a complete `Snapshot`; `read(watermark)` returns `Changes` since that
watermark, or a `Snapshot` when a full read is due (`full_every_hours` since the last full
read, a changed scope, an unreadable watermark, or a System Log cursor Okta refuses).
Any failed page fails the whole read (S1): nothing partial is ever returned.

Scope: with `app_id`, the app's assigned users (direct or through a group,
`/apps/{id}/users?expand=user`) and its assigned groups (`/apps/{id}/groups?expand=group`)
with their members; without it, every user and group of the org. Okta's `Everyone`
(`BUILT_IN`) group is left out unless `include_everyone`. Group members are the users in
scope that are neither STAGED nor DEPROVISIONED.

Incremental reads cost requests in proportion to what changed:
- users: `filter=lastUpdated gt "<last read start - overlap_minutes>"` (the filter also
  returns DEPROVISIONED users, reported inactive);
- groups: `lastUpdated` or `lastMembershipUpdated` past the same instant (with `app_id`,
  the app's assigned groups, listed in full);
- the System Log (`/api/v1/logs`, polled through its `next` cursor): membership changes
  (`group.user_membership.add` / `.remove`), reported as `MembershipDelta`s, and what
  filters cannot see: deleted users and groups, and, with `app_id`, app (un)assignments of
  users and groups. A moved group's full member list is re-read (and reported in
  `members_complete`) only where the log cannot tell the change in full: a new or changed
  group record, a membership change no event covers, a late or unreadable event
  (`connectors.okta_log` decides); never for a group whose stamps are as they were when a
  read within the overlap handled it. In app scope a changed user's scope comes from the
  app's users the watermark keeps and the log's app events since; a user the log cannot
  vouch for (a late or unreadable event, a user who came back), or every changed user when
  no users are kept, is checked with `/apps/{id}/users/{user}`; past `MAX_USER_CHECKS` of
  them, the app's user list (`/apps/{id}/users`, 500 a page, without the users) tells them
  all at once instead.

`read_user(key)` reads one user (by id, login or email) for provisioning on demand: the
user, their groups (`/users/{id}/groups`; with `app_id`, only the app's assigned groups and
only if the user is assigned, `/apps/{id}/users/{user}`) and those groups' members: a
handful of requests instead of a whole read. It returns `Changes` with no watermark.

The watermark is `connectors.okta_watermark.Watermark`'s JSON: the scope, when the last
full read happened (our clock, `reconcile.clock.now` unless a clock is given), the server's
time at the start of the last read, the System Log cursor, and the stamps of the groups
the last read handled that are still inside the overlap (so a read soon after does not
re-read them), and in app scope the app's users as the last read left them. The engine
stores it as it is.

This module is the connector and its construction from configuration; the requests of a
full read and of one user's read are in `connectors.okta_read`, those of an incremental
read in `connectors.okta_incremental`.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable, Collection
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

from config import ConfigError, DirectorySettings, OktaDirectorySettings, Settings, read_secret
from connectors.base import PageCounter, ReadProgress
from connectors.errors import ConnectorError, PermanentError, TransientError
from connectors.okta_http import ApiToken, Credentials, OktaPager, ServiceApp, Sleep
from connectors.okta_incremental import _FullReadNeeded, _IncrementalReader
from connectors.okta_read import _Reader
from connectors.okta_watermark import Watermark
from connectors.retry import DEFAULT_MAX_RETRY_WAIT_SECONDS, configured_max_retry_wait
from reconcile import clock as default_clock
from reconcile.model import Changes, Snapshot

__all__ = ["ApiToken", "OktaConnector", "ServiceApp", "build"]

log = logging.getLogger("connectors.okta")


class OktaConnector:
    """Reads one Okta org (or one app's scope of it); see the module docstring."""

    def __init__(
        self,
        directory: OktaDirectorySettings,
        credentials: Credentials,
        *,
        ssl_context: ssl.SSLContext,
        clock: Callable[[], datetime] = default_clock.now,
        sleep: Sleep | None = None,
        max_retry_wait_seconds: float = DEFAULT_MAX_RETRY_WAIT_SECONDS,
        monotonic: Callable[[], float] | None = None,
    ) -> None:
        self.directory = directory
        self._credentials = credentials
        self._ssl_context = ssl_context
        self._clock = clock
        self._sleep = sleep
        self._max_retry_wait = max_retry_wait_seconds
        self._monotonic = monotonic
        self.scope = (f"app:{directory.app_id}" if directory.app_id else "org") + (
            "+everyone" if directory.include_everyone else "")
        self.last_request_count = 0

    def __repr__(self) -> str:
        return f"OktaConnector(org_url={self.directory.org_url!r}, scope={self.scope!r})"

    def read(self, watermark: str | None, progress: ReadProgress | None = None) -> Snapshot | Changes:
        """A `Snapshot` (full read) or `Changes` since `watermark`; raises `ConnectorError`.
        `progress("read", pages, records)` is called after every page."""
        try:
            result: Snapshot | Changes = _run(self._read(watermark, PageCounter(progress)))
            return result
        except ConnectorError:
            raise
        except Exception as exc:  # a bug or an SDK surprise must still fail the read cleanly
            log.error("okta read failed unexpectedly: %s", type(exc).__name__, exc_info=True)
            raise TransientError(f"Okta read failed unexpectedly ({type(exc).__name__})") from None

    def close(self) -> None:
        """Nothing is held between reads: each read opens and closes its own HTTP session."""

    def read_user(self, key: str, known_groups: Collection[str] = ()) -> Changes:
        """Provision on demand: one user, by Okta id, login or email, with every in-scope group
        that lists them, each with its complete member list (`members_complete`), except the
        `known_groups` the caller already holds complete (not read again).

        A user that does not exist, is STAGED, or is outside the app's scope gives empty
        Changes. The result has no watermark: it does not move the directory's cursor.
        Requests: the lookup, then the user's groups, the app assignment check and the app's
        group list at once, then the members of each of the user's in-scope groups at once.
        """
        try:
            result: Changes = _run(self._read_user(key.strip(), frozenset(known_groups)))
            return result
        except ConnectorError:
            raise
        except Exception as exc:  # as in `read`: a surprise still fails cleanly
            log.error("okta user read failed unexpectedly: %s", type(exc).__name__, exc_info=True)
            raise TransientError(f"Okta user read failed unexpectedly ({type(exc).__name__})") from None

    async def _read_user(self, key: str, known_groups: frozenset[str]) -> Changes:
        if not key:
            return Changes()
        async with self._pager(PageCounter(None)) as pager:
            try:
                return await _Reader(self.directory, pager, self._clock()).one_user(key, known_groups)
            finally:
                self.last_request_count = pager.requests

    def _pager(self, counter: PageCounter) -> OktaPager:
        return OktaPager(
            self.directory.org_url,
            self._credentials,
            ssl_context=self._ssl_context,
            request_timeout=self.directory.request_timeout_seconds,
            max_retries=self.directory.max_retries,
            retry_budget_seconds=self.directory.retry_budget_seconds,
            max_concurrency=self.directory.max_concurrency,
            sleep=self._sleep,
            max_retry_wait=self._max_retry_wait,
            label=f"okta {self.directory.name}",
            on_page=counter.json_page,
            monotonic=self._monotonic,
        )

    async def _read(self, watermark: str | None, counter: PageCounter) -> Snapshot | Changes:
        state = Watermark.parse(watermark)
        now = self._clock()
        full_due = state is None or state.scope != self.scope or (
            now - state.full_at >= timedelta(hours=self.directory.full_every_hours))
        async with self._pager(counter) as pager:
            reader = _IncrementalReader(self.directory, pager, now)
            try:
                if full_due or state is None:
                    return await reader.full(self.scope)
                try:
                    return await reader.incremental(state)
                except _FullReadNeeded as why:
                    log.info("okta incremental read falls back to a full read: %s", why)
                    return await reader.full(self.scope)
            finally:
                self.last_request_count = pager.requests


def _run(job: Any) -> Any:
    """Run a coroutine to completion from sync code, even when a loop is already running."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(job)
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, job).result()


# --- construction from configuration --------------------------------------------------------


def ssl_context_for(settings: Settings, directory: OktaDirectorySettings) -> ssl.SSLContext:
    """The system's CAs plus `ca_bundle`, if set. Verification is never turned off."""
    context = ssl.create_default_context()
    if directory.ca_bundle:
        path = settings.resolve_path(directory.ca_bundle)
        try:
            context.load_verify_locations(cafile=str(path))
        except (OSError, ssl.SSLError):
            raise PermanentError(f"directories.{directory.name}.ca_bundle: cannot load CA bundle {path}") from None
    return context


def credentials_for(settings: Settings, directory: OktaDirectorySettings) -> Credentials:
    where = f"directories.{directory.name}"
    if directory.token_env:
        try:
            return ApiToken(read_secret(directory.token_env, f"{where}.token_env"))
        except ConfigError as exc:
            raise PermanentError(str(exc)) from None
    path = settings.resolve_path(directory.private_key_file or "")
    try:
        pem = path.read_text()
    except OSError:
        raise PermanentError(f"{where}.private_key_file: cannot read {path}") from None
    try:
        from cryptography.hazmat.primitives.serialization import load_pem_private_key

        load_pem_private_key(pem.encode(), password=None)
    except Exception:
        raise PermanentError(f"{where}.private_key_file: {path} is not an unencrypted PEM private key") from None
    scopes = ["okta.users.read", "okta.groups.read", "okta.logs.read"] + (["okta.apps.read"] if directory.app_id else [])
    return ServiceApp(client_id=directory.client_id or "", private_key_pem=pem, key_id=directory.key_id,
                      scopes=tuple(scopes))


def build(settings: Settings, directory: DirectorySettings) -> OktaConnector:
    """The connector for an `okta` directory; raises `PermanentError` on unusable settings."""
    if not isinstance(directory, OktaDirectorySettings):
        raise PermanentError(f"directories.{directory.name}: not an okta directory")
    return OktaConnector(directory, credentials_for(settings, directory),
                         ssl_context=ssl_context_for(settings, directory),
                         max_retry_wait_seconds=configured_max_retry_wait(settings))
