"""Builders for the Entra tests: a small simulated tenant over HTTPS, a connector on it, and a
replica that applies what the connector returns, to compare with what the tenant holds.

Page sizes are tiny so every read crosses several pages and large groups split.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from config import EntraDirectorySettings, parse
from connectors.graph import GraphConnector
from connectors.graph_auth import Credential, forget_clients
from simulators.graph import GraphSimulator, GraphTenant
from reconcile.model import Changes, ExternalUser, Snapshot

USERS_PER_PAGE = 7
MEMBERS_PER_PAGE = 10


def tenant(users: int = 40, groups: int = 5, memberships: int = 80, seed: int = 3,
           assigned_users: int = 4, assigned_groups: int = 2) -> GraphTenant:
    return GraphTenant.generate(users=users, groups=groups, memberships=memberships, seed=seed,
                                assigned_users=assigned_users, assigned_groups=assigned_groups)


@pytest.fixture(autouse=True)
def _fresh_msal_clients() -> Iterator[None]:
    # msal caches error answers (400s for 60 s, 5xx until Retry-After): one client per test.
    forget_clients()
    yield
    forget_clients()


@pytest.fixture
def sim() -> Iterator[GraphSimulator]:
    with GraphSimulator(tenant(), users_per_page=USERS_PER_PAGE,
                        group_members_per_page=MEMBERS_PER_PAGE) as server:
        yield server  # type: ignore[misc]


class Sleeps(list[float]):
    """Records the waits the retry policy asked for, without waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


def settings_for(sim: GraphSimulator, *, assigned: bool = False, **extra: Any
                 ) -> EntraDirectorySettings:
    parsed = parse({"directories": {"entra": sim.directory_table(assigned=assigned, **extra)}},
                   {})
    directory = parsed.directory("entra")
    assert isinstance(directory, EntraDirectorySettings)
    return directory


def connect(sim: GraphSimulator, *, assigned: bool = False, sleep: Any = None,
            credential: Credential | None = None, **extra: Any) -> GraphConnector:
    directory = settings_for(sim, assigned=assigned, **extra)
    return GraphConnector(directory,
                          credential=credential or Credential(secret=sim.tenant.client_secret),
                          ca_bundle=sim.ca_path,
                          sleep=sleep if sleep is not None else (lambda s: None))


# --- what the tenant holds, and what a reader rebuilt --------------------------------------


@dataclass
class View:
    """A directory as the product would see it: users by id, rejected ids, groups."""

    users: dict[str, tuple[str, bool, str | None, str | None]] = field(default_factory=dict)
    rejected: set[str] = field(default_factory=set)
    groups: dict[str, tuple[str | None, frozenset[str]]] = field(default_factory=dict)


def _user_row(u: ExternalUser) -> tuple[str, bool, str | None, str | None]:
    return (u.email or "", u.active, u.given_name, u.family_name)


def expected(t: GraphTenant, *, assigned: bool = False,
             email_source: str = "userPrincipalName") -> View:
    """The projection of the tenant a correct reader must produce."""
    with t.lock:
        live = {uid: u for uid, u in t.users.items() if not u.deleted}
        if assigned:
            group_ids = {pid for pid, (kind, _) in t.assignments.items() if kind == "Group"}
            scope = {pid for pid, (kind, _) in t.assignments.items() if kind == "User"}
            for gid in group_ids:
                scope |= t.groups[gid].members
        else:
            group_ids = set(t.groups)
            scope = set(live)
        view = View()
        for uid in scope & live.keys():
            u = live[uid]
            email = u.user_principal_name if email_source == "userPrincipalName" else u.mail
            if not email:
                view.rejected.add(uid)
            else:
                view.users[uid] = (email, u.account_enabled, u.given_name, u.surname)
        for gid in group_ids:
            g = t.groups[gid]
            view.groups[gid] = (g.display_name, frozenset(g.members & live.keys()))
        return view


class Replica(View):
    """Applies Snapshots and Changes the way the engine's contract describes them."""

    watermark: str | None = None

    def apply(self, result: Snapshot | Changes) -> Replica:
        if isinstance(result, Snapshot):
            self.users = {u.external_id: _user_row(u) for u in result.users}
            self.rejected = {r.external_id for r in result.rejections if r.external_id}
            self.groups = {g.external_id: (g.name, g.member_ids) for g in result.groups}
        else:
            for uid in result.removed_user_ids:
                self.users.pop(uid, None)
                self.rejected.discard(uid)
            for u in result.users:
                self.users[u.external_id] = _user_row(u)
                self.rejected.discard(u.external_id)
            for r in result.rejections:
                if r.external_id:
                    self.users.pop(r.external_id, None)
                    self.rejected.add(r.external_id)
            for gid in result.removed_group_ids:
                self.groups.pop(gid, None)
            for g in result.groups:
                members = g.member_ids if g.external_id in result.members_complete else \
                    self.groups.get(g.external_id, (None, frozenset()))[1]
                self.groups[g.external_id] = (g.name, members)
            for d in result.memberships:
                name, members = self.groups.get(d.group_external_id, (None, frozenset()))
                self.groups[d.group_external_id] = (name, (members | d.added) - d.removed)
        self.watermark = result.watermark
        return self

    def copy(self) -> Replica:
        twin = Replica(dict(self.users), set(self.rejected), dict(self.groups))
        twin.watermark = self.watermark
        return twin

    def as_view(self) -> View:
        return View(dict(self.users), set(self.rejected), dict(self.groups))
