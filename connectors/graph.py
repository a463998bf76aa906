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
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Collection
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import quote

import requests

from config import ConfigError, DirectorySettings, EntraDirectorySettings, Settings, read_secret
from connectors.base import PageCounter, ReadProgress
from connectors.errors import PermanentError
from connectors.graph_auth import Credential, TokenSource
from connectors.graph_http import GraphClient, ResyncNeeded, make_session
from connectors.graph_rounds import (
    GROUP_SELECT,
    USER_DELTA_SELECT_WITHOUT_CREATED,
    USER_SELECT,
    USER_TYPE,
    GroupsRound,
    UsersRound,
    batched_filter_urls,
    created_since,
    external_group,
    list_all,
    normalise_user,
    read_groups,
    read_users,
    split,
)
from connectors.graph_watermark import Watermark
from connectors.retry import DEFAULT_MAX_RETRY_WAIT_SECONDS, configured_max_retry_wait
from reconcile import clock
from reconcile.model import Changes, ExternalGroup, MembershipDelta, Snapshot

log = logging.getLogger("connectors.graph")

_GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")
DELTA_LINK_LIFETIME = timedelta(days=7)  # Graph keeps directory delta state for 7 days
T = TypeVar("T")


@dataclass
class _Assignments:
    users: set[str] = field(default_factory=set)
    groups: set[str] = field(default_factory=set)


class GraphConnector:
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

    def _read_user(self, key: str, known_groups: frozenset[str]) -> Changes:
        assigned_f = self._submit(self._assignments) if self.directory.service_principal_id \
            else None
        base = f"{self._graph}/v1.0/users"
        prop = "id" if _GUID.match(key) else self.directory.email_source
        value = key.replace("'", "''")  # OData quotes a quote by doubling it
        expression = quote(f"{prop} eq '{value}'", safe="")
        found = list_all(self.client, f"{base}?$filter={expression}&$select={USER_SELECT}",
                         self._where("user by key"))
        if len(found) != 1:
            return Changes()
        item = found[0]
        uid = str(item["id"])
        groups = {g["id"]: g.get("displayName") for g in list_all(
            self.client, f"{base}/{uid}/memberOf?$select=id,displayName&$top=999",
            self._where("user groups")) if g.get("@odata.type") == "#microsoft.graph.group"}
        if assigned_f is not None:
            assigned = _result(assigned_f)
            if uid not in assigned.users and not groups.keys() & assigned.groups:
                return Changes()
            groups = {gid: name for gid, name in groups.items() if gid in assigned.groups}
        groups = {gid: name for gid, name in groups.items() if gid not in known_groups}
        members = {gid: self._submit(list_all, self.client,
                                     f"{self._graph}/v1.0/groups/{gid}/members?$select=id&$top=999",
                                     self._where("group members")) for gid in groups}
        full_groups = tuple(external_group(gid, groups[gid], _user_ids(_result(f)))
                            for gid, f in members.items())
        users, rejections = split([normalise_user(item, self.directory.email_source)])
        return Changes(users=tuple(users), groups=full_groups, rejections=tuple(rejections),
                       members_complete=frozenset(groups))

    # --- full ---------------------------------------------------------------------------

    def _initial_users_round(self) -> UsersRound:
        """The users delta's initial round, with `createdDateTime` if Graph lets a delta
        select it; without it no user counts as created since the last read (each returning
        user's groups are then read, as before), which costs requests, never memberships."""
        url = f"{self._graph}/v1.0/users/delta?$select="
        try:
            return read_users(self.client, url + USER_SELECT, self._where("users"), self.directory.email_source)
        except PermanentError as exc:
            # Graph names the refused property in some answers and says only "Unsupported
            # Query" in others: a round refused with a 400 is tried once more without it.
            if "HTTP 400" not in str(exc):
                raise
            log.warning("entra %s: the users delta refused its $select (%s); reading without createdDateTime, so "
                        "returning users' groups are read one user at a time", self.directory.name, exc)
        return read_users(self.client, url + USER_DELTA_SELECT_WITHOUT_CREATED, self._where("users"),
                          self.directory.email_source)

    def _full(self, now: datetime) -> Snapshot:
        users_f = self._submit(self._initial_users_round)
        groups_f = self._submit(read_groups, self.client,
                                f"{self._graph}/v1.0/groups/delta?$select={GROUP_SELECT}",
                                self._where("groups"))
        assigned_f = self._submit(self._assignments) if self.directory.service_principal_id \
            else None
        users_round, groups_round = _result(users_f), _result(groups_f)
        links_at = clock.now()
        assigned = _result(assigned_f) if assigned_f else None
        if assigned is None:
            users, rejections = split(users_round.users.values())
            groups = [external_group(gid, g.name, g.added)
                      for gid, g in groups_round.groups.items() if not g.gone]
            mark = self._mark(users_round, groups_round, now, now, links_at)
        else:
            group_members = {gid: frozenset(groups_round.groups[gid].added)
                             for gid in assigned.groups
                             if gid in groups_round.groups and not groups_round.groups[gid].gone}
            mark = self._mark(users_round, groups_round, now, now, links_at, assigned, group_members)
            scope = mark.scope()
            users, rejections = split(record for uid, record in users_round.users.items()
                                      if uid in scope)
            groups = [external_group(gid, groups_round.groups[gid].name, members)
                      for gid, members in group_members.items()]
        log.info("entra %s: full read: %d users, %d groups, %d rejected, %d+%d pages",
                 self.directory.name, len(users), len(groups), len(rejections),
                 users_round.pages, groups_round.pages)
        return Snapshot(tuple(users), tuple(groups), tuple(rejections), mark.dump())

    # --- incremental --------------------------------------------------------------------

    def _incremental(self, mark: Watermark, now: datetime) -> Changes:
        users_f = self._submit(read_users, self.client, mark.users_link, self._where("users"),
                               self.directory.email_source, mark.created_after())
        groups_f = self._submit(read_groups, self.client, mark.groups_link,
                                self._where("groups"))
        assigned_f = self._submit(self._assignments) if self.directory.service_principal_id \
            else None
        users_round, groups_round = _result(users_f), _result(groups_f)
        links_at = clock.now()
        if assigned_f is None:
            return self._changes_all(mark, users_round, groups_round, now, links_at)
        return self._changes_assigned(mark, users_round, groups_round, _result(assigned_f), now,
                                      links_at)

    def _changes_all(self, mark: Watermark, users_round: UsersRound, groups_round: GroupsRound,
                     now: datetime, links_at: datetime) -> Changes:
        users, rejections = split(users_round.users.values())
        groups, memberships, removed_groups = [], [], set()
        for gid, delta in groups_round.groups.items():
            if delta.gone:
                removed_groups.add(gid)
                continue
            if delta.name is not None:
                groups.append(ExternalGroup(gid, delta.name))
            if delta.added or delta.removed:
                memberships.append(MembershipDelta(gid, frozenset(delta.added),
                                                   frozenset(delta.removed)))
        return Changes(
            users=tuple(users), groups=tuple(groups),
            removed_user_ids=frozenset(users_round.removed),
            removed_group_ids=frozenset(removed_groups), memberships=tuple(memberships),
            rejections=tuple(rejections), user_groups_complete=frozenset(users_round.created),
            watermark=self._mark(users_round, groups_round, now, mark.full_at, links_at).dump(),
        )

    def _changes_assigned(self, mark: Watermark, users_round: UsersRound,
                          groups_round: GroupsRound, assigned: _Assignments, now: datetime,
                          links_at: datetime) -> Changes:
        old_scope = mark.scope()
        group_members: dict[str, frozenset[str]] = {}
        groups: list[ExternalGroup] = []
        memberships: list[MembershipDelta] = []
        complete: set[str] = set()
        removed_groups = {gid for gid in mark.group_members
                          if gid not in assigned.groups
                          or (gid in groups_round.groups and groups_round.groups[gid].gone)}
        entering_groups = []
        for gid in assigned.groups:
            delta = groups_round.groups.get(gid)
            if delta is not None and delta.gone:
                continue
            if gid not in mark.group_members:
                entering_groups.append(gid)
                continue
            members = set(mark.group_members[gid])
            if delta is not None:
                members = (members | delta.added) - delta.removed
                if delta.name is not None:
                    groups.append(ExternalGroup(gid, delta.name))
                if delta.added or delta.removed:
                    memberships.append(MembershipDelta(gid, frozenset(delta.added),
                                                       frozenset(delta.removed)))
            group_members[gid] = frozenset(members)
        for gid, name, fetched in self._fetch_groups(entering_groups):
            group_members[gid] = fetched
            groups.append(external_group(gid, name, fetched))
            complete.add(gid)
        new_mark = self._mark(users_round, groups_round, now, mark.full_at, links_at, assigned,
                              group_members)
        new_scope = new_mark.scope()
        removed_users = (old_scope - new_scope) | (users_round.removed & (old_scope | new_scope))
        entering = new_scope - old_scope - users_round.users.keys() - users_round.removed
        records = [u for uid, u in users_round.users.items() if uid in new_scope]
        created = users_round.created & new_scope
        since = mark.created_after()
        for item in self._fetch_users(entering):
            records.append(normalise_user(item, self.directory.email_source))
            if since is not None and created_since(item, since):
                created.add(str(item["id"]))
        users, rejections = split(records)
        return Changes(
            users=tuple(users), groups=tuple(groups),
            removed_user_ids=frozenset(removed_users), removed_group_ids=frozenset(removed_groups),
            memberships=tuple(memberships), members_complete=frozenset(complete),
            rejections=tuple(rejections), user_groups_complete=frozenset(created),
            watermark=new_mark.dump(),
        )

    # --- helpers ------------------------------------------------------------------------

    def _assignments(self) -> _Assignments:
        sp = self.directory.service_principal_id
        items = list_all(self.client,
                         f"{self._graph}/v1.0/servicePrincipals/{sp}/appRoleAssignedTo"
                         "?$top=999&$select=principalId,principalType",
                         self._where("assignments"))
        out = _Assignments()
        for item in items:
            kind, pid = item.get("principalType"), item.get("principalId")
            if isinstance(pid, str):
                if kind == "User":
                    out.users.add(pid)
                elif kind == "Group":
                    out.groups.add(pid)
        return out

    def _fetch_users(self, ids: set[str]) -> list[dict[str, Any]]:
        """Current records of `ids` (deleted ones are simply absent), batched by id filter."""
        urls = batched_filter_urls(f"{self._graph}/v1.0/users", ids, USER_SELECT)
        futures = [self._submit(list_all, self.client, u, self._where("users by id"))
                   for u in urls]
        return [item for f in futures for item in _result(f)]

    def _fetch_groups(self, ids: list[str]) -> list[tuple[str, str | None, frozenset[str]]]:
        """(id, name, direct user members) of groups newly assigned to the app."""
        if not ids:
            return []
        urls = batched_filter_urls(f"{self._graph}/v1.0/groups", ids, "id,displayName")
        name_futures = [self._submit(list_all, self.client, u, self._where("groups by id"))
                        for u in urls]
        member_futures = {gid: self._submit(
            list_all, self.client,
            f"{self._graph}/v1.0/groups/{gid}/members?$select=id&$top=999",
            self._where("group members")) for gid in ids}
        names = {item["id"]: item.get("displayName") for f in name_futures
                 for item in _result(f)}
        out = []
        for gid, future in member_futures.items():
            members = _user_ids(_result(future))
            if gid in names:  # a group deleted since it was assigned is not in scope
                out.append((gid, names[gid], members))
        return out

    def _mark(self, users_round: UsersRound, groups_round: GroupsRound, now: datetime,
              full_at: datetime, links_at: datetime, assigned: _Assignments | None = None,
              group_members: dict[str, frozenset[str]] | None = None) -> Watermark:
        return Watermark(
            users_link=users_round.delta_link, groups_link=groups_round.delta_link,
            issued_at=now, full_at=full_at, email_source=self.directory.email_source,
            service_principal_id=self.directory.service_principal_id,
            assigned_users=frozenset(assigned.users) if assigned else frozenset(),
            group_members=group_members or {}, links_at=links_at,
        )

    def _submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        future = self._pool.submit(fn, *args)
        self._futures.append(future)
        return future

    def _where(self, what: str) -> str:
        return f"entra {self.directory.name}: {what}"


def _result(future: Future[T]) -> T:
    return future.result()


def _user_ids(members: list[dict[str, Any]]) -> frozenset[str]:
    """The ids of the users in a `/members` listing (nested groups and devices left out)."""
    return frozenset(m["id"] for m in members
                     if m.get("@odata.type", USER_TYPE) == USER_TYPE and isinstance(m.get("id"), str))


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
