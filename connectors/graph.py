"""Microsoft Entra ID through Microsoft Graph (`kind = "entra"`), incremental with delta queries.

`read(None)` runs an initial round of `/users/delta` and `/groups/delta` and returns a
complete `Snapshot`; `read(watermark)` replays both delta links and returns `Changes`, or
a `Snapshot` when a full read is due: no usable watermark, a changed scope or email source,
delta links older than 7 days, `full_every_hours` elapsed, or Graph refusing a link (410,
`syncStateNotFound`, `resyncRequired`). Any failed page fails the read (S1): nothing
partial is ever returned. `Changes.user_groups_complete` names the changed users Graph created
(`createdDateTime`) more than a clock margin after the previous read had its links: their
memberships all come through the groups delta, so the engine need not read their groups.

Scope: with `service_principal_id`, the users and groups assigned to that enterprise app
(`appRoleAssignedTo`) plus the direct user members of assigned groups, as Entra's own
provisioning scopes them; otherwise every user and group. Assignments have no delta, so
they are re-listed each cycle (a small list) and compared with the scope kept in the
watermark: users leaving scope are reported removed, users entering it are fetched by id.

The watermark is this module's own JSON (`connectors.graph_watermark`); the engine stores
it as it is.

This module is the connector and its construction from configuration; the requests of a
full read and of one user's read are in `connectors.graph_read`, those of an incremental
(delta) read in `connectors.graph_incremental`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Collection
from concurrent.futures import Future, ThreadPoolExecutor, wait
from datetime import datetime, timedelta
from typing import Any, TypeVar

import requests

from config import ConfigError, DirectorySettings, EntraDirectorySettings, Settings, read_secret
from connectors.base import PageCounter, ReadProgress
from connectors.errors import PermanentError
from connectors.graph_auth import Credential, TokenSource
from connectors.graph_http import GraphClient, ResyncNeeded, make_session
from connectors.graph_incremental import _IncrementalReader
from connectors.graph_watermark import Watermark
from connectors.retry import DEFAULT_MAX_RETRY_WAIT_SECONDS, configured_max_retry_wait
from reconcile import clock
from reconcile.model import Changes, Snapshot

__all__ = ["GraphConnector", "Watermark", "build"]

log = logging.getLogger("connectors.graph")

DELTA_LINK_LIFETIME = timedelta(days=7)  # Graph keeps directory delta state for 7 days
T = TypeVar("T")


class GraphConnector(_IncrementalReader):
    """Reads one Entra directory; see the module docstring for what each read returns."""

    def __init__(self, directory: EntraDirectorySettings, *, credential: Credential,
                 ca_bundle: str | None = None, sleep: Callable[[float], object] | None = None,
                 max_retry_wait_seconds: float = DEFAULT_MAX_RETRY_WAIT_SECONDS) -> None:
        self.directory = directory
        # Set when one request of a read fails: the read's other requests stop at once
        # (also mid-backoff) instead of retrying in the background after the read is over.
        self._cancel = threading.Event()
        self._futures: list[Future[Any]] = []
        self._graph = directory.graph_url.rstrip("/")
        authority = f"{directory.authority_host.rstrip('/')}/{directory.tenant_id}"
        hosts = (directory.graph_url, directory.authority_host)

        def session() -> requests.Session:
            return make_session(ca_bundle=ca_bundle, timeout=directory.request_timeout_seconds,
                                pool=directory.max_concurrency + 2, hosts=hosts)

        self.tokens = TokenSource(directory=directory.name, authority=authority,
                                  client_id=directory.client_id, credential=credential,
                                  scope=f"{self._graph}/.default", session=session,
                                  timeout=directory.request_timeout_seconds)
        self._session = session()
        self.client = GraphClient(directory=directory.name, graph_url=self._graph,
                                  session=self._session, tokens=self.tokens,
                                  max_retries=directory.max_retries,
                                  sleep=sleep if sleep is not None else self._cancel.wait,
                                  cancelled=self._cancel,
                                  timeout=directory.request_timeout_seconds,
                                  max_retry_wait=max_retry_wait_seconds)
        self._pool = ThreadPoolExecutor(max_workers=directory.max_concurrency,
                                        thread_name_prefix=f"graph-{directory.name}")

    def __repr__(self) -> str:
        return f"GraphConnector({self.directory.name!r}, {self._graph!r})"

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self._session.close()

    # --- the contract ---------------------------------------------------------------------

    def read(self, watermark: str | None, progress: ReadProgress | None = None
             ) -> Snapshot | Changes:
        """A Snapshot (full read) or Changes since `watermark`; raises a ConnectorError.
        `progress("read", pages, records)` is called after every page."""
        self.client.on_page = PageCounter(progress).json_page
        try:
            return self._read(watermark)
        finally:
            self.client.on_page = None

    def _read(self, watermark: str | None) -> Snapshot | Changes:
        now = clock.now()
        mark = Watermark.load(watermark) if watermark else None
        reason = self._full_reason(watermark, mark, now)
        if reason is not None:
            log.info("entra %s: full read (%s)", self.directory.name, reason)
            return self._guarded(self._full, now)
        assert mark is not None
        try:
            return self._guarded(self._incremental, mark, now)
        except ResyncNeeded as exc:
            log.warning("%s; running a full read", exc)
            return self._guarded(self._full, now)

    def _guarded(self, read: Callable[..., T], *args: Any) -> T:
        """Run one read; if it fails, stop and wait for its other requests before raising."""
        self._cancel.clear()
        self._futures = []
        try:
            return read(*args)
        except BaseException:
            self._cancel.set()
            wait(self._futures)
            raise

    def _full_reason(self, raw: str | None, mark: Watermark | None, now: datetime
                     ) -> str | None:
        d = self.directory
        if raw is None:
            return "no watermark"
        if mark is None:
            return "watermark from another version"
        if mark.service_principal_id != d.service_principal_id:
            return "scope changed"
        if mark.email_source != d.email_source:
            return "email_source changed"
        if now - mark.issued_at >= DELTA_LINK_LIFETIME:
            return "delta links older than 7 days"
        if now - mark.full_at >= timedelta(hours=d.full_every_hours):
            return f"last full read over {d.full_every_hours}h ago"
        return None

    def read_user(self, key: str, known_groups: Collection[str] = ()) -> Changes:
        """Provision on demand: one user, by object id or by email (`email_source`), and
        every in-scope group that lists them, each with its complete member list, except
        the `known_groups` the caller already holds complete (not read again).

        A user that does not exist or is out of scope gives empty Changes. The result has
        no watermark: it does not move the directory's delta links.
        """
        return self._guarded(self._read_user, key.strip(), frozenset(known_groups))


def load_credential(settings: Settings, directory: EntraDirectorySettings) -> Credential:
    """The client secret (from its environment variable) or the certificate's private key."""
    where = f"directories.{directory.name}"
    if directory.client_secret_env:
        try:
            return Credential(secret=read_secret(directory.client_secret_env,
                                                 f"{where}.client_secret_env"))
        except ConfigError as exc:
            raise PermanentError(str(exc)) from None
    assert directory.certificate_file is not None
    path = settings.resolve_path(directory.certificate_file)
    try:
        pem = path.read_text()
    except OSError as exc:
        raise PermanentError(f"{where}.certificate_file: {path} cannot be read: "
                             f"{exc.strerror}") from None
    # only certificate credentials need cryptography: imported here, not with the module
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    try:
        key = serialization.load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError):
        raise PermanentError(f"{where}.certificate_file: {path} holds no unencrypted PEM "
                             "private key") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise PermanentError(f"{where}.certificate_file: Entra needs an RSA key")
    thumbprint = (directory.certificate_thumbprint or "").replace(":", "").strip()
    return Credential(private_key_pem=pem, thumbprint=thumbprint)


def build(settings: Settings, directory: DirectorySettings) -> GraphConnector:
    """The connector for an `entra` directory (called by `connectors.build_connector`)."""
    if not isinstance(directory, EntraDirectorySettings):
        raise PermanentError(f"directories.{directory.name}: not an entra directory")
    ca_bundle = None
    if directory.ca_bundle:
        path = settings.resolve_path(directory.ca_bundle)
        if not path.is_file():
            raise PermanentError(f"directories.{directory.name}.ca_bundle: {path} does not exist")
        ca_bundle = str(path)
    return GraphConnector(directory, credential=load_credential(settings, directory),
                          ca_bundle=ca_bundle,
                          max_retry_wait_seconds=configured_max_retry_wait(settings))
