"""Small simulated directories for the fault matrix, one per connector kind.

A `Scenario` owns a running simulator, a baseline store (a SQLite file holding the
directory as a clean full cycle left it), and the directory's next state (a few hires,
leavers, renames and membership changes made after the baseline). Every run of the matrix
starts from a fresh copy of the baseline file, so runs never see each other.
"""

from __future__ import annotations

import asyncio
import shutil
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from config import EntraDirectorySettings, OktaDirectorySettings, Settings, parse
from connectors import Connector
from connectors.graph import GraphConnector
from connectors.graph_auth import Credential, forget_clients
from connectors.okta import ApiToken, OktaConnector
from simulators.base import SimulatorServer
from simulators.clocks import ManualClock
from simulators.faults import Fault
from simulators.graph import GraphSimulator, GraphTenant
from simulators.okta import OktaOrg, OktaSimulator
from simulators.okta_access import DEFAULT_RATE_LIMITS
from reconcile.cycle import RunResult, run_cycle
from store import Store, export_state, get_directory, open_store

Export = dict[str, list[dict[str, Any]]]

# Clean requests get a generous timeout (a slow CI machine must not fail them); a run that
# injects Fault.TIMEOUT gets a short one and a hold well past it.
CLEAN_TIMEOUT_SECONDS = 10.0
SHORT_TIMEOUT_SECONDS = 0.4
TIMEOUT_HOLD_SECONDS = 0.9


@dataclass(frozen=True)
class FaultCase:
    """One kind of fault: the framework's `Fault` and, for `Fault.VENDOR`, its detail."""

    name: str
    fault: Fault
    detail: str | None = None

    def inject(self, sim: SimulatorServer, at: int, times: int = 1) -> None:
        seconds = TIMEOUT_HOLD_SECONDS if self.fault is Fault.TIMEOUT else None
        sim.inject(self.fault, at=at, times=times, seconds=seconds, detail=self.detail)


COMMON_FAULTS = (
    FaultCase("http-429", Fault.HTTP_429),
    FaultCase("http-429-bare", Fault.HTTP_429_BARE),
    FaultCase("http-500", Fault.HTTP_500),
    FaultCase("http-503", Fault.HTTP_503),
    FaultCase("timeout", Fault.TIMEOUT),
    FaultCase("reset", Fault.RESET),
    FaultCase("malformed-json", Fault.MALFORMED_JSON),
    FaultCase("truncated", Fault.TRUNCATED),
)
OKTA_FAULTS = COMMON_FAULTS + (
    FaultCase("expired-cursor", Fault.VENDOR, OktaSimulator.EXPIRED_CURSOR),
    FaultCase("reordered-links", Fault.VENDOR, OktaSimulator.REORDERED_LINKS),
    FaultCase("combined-link", Fault.VENDOR, OktaSimulator.COMBINED_LINK),
)
GRAPH_FAULTS = COMMON_FAULTS + (
    FaultCase("expired-delta-link", Fault.VENDOR, "expired-delta"),
    FaultCase("resync-required", Fault.VENDOR, "resync"),
)
FAULTS = {"okta": OKTA_FAULTS, "entra": GRAPH_FAULTS}


@dataclass
class Outcome:
    """What one cycle left behind: its result, the store's export and the directory row."""

    result: RunResult | None
    export: Export
    watermark: str | None
    last_full_sync_at: datetime | None


@dataclass
class Scenario:
    """A directory under test; see the module docstring. Subclasses know their vendor."""

    name: str
    sim: SimulatorServer
    workdir: Path
    faults: tuple[FaultCase, ...]
    baseline: Path = field(init=False)
    _copies: int = field(default=0, init=False)

    # -- vendor specifics

    def settings(self, url: str) -> Settings:
        raise NotImplementedError

    def connector(self, *, timeout: float, max_retries: int) -> Connector:
        raise NotImplementedError

    def mutate(self) -> None:
        """Move the directory from its baseline state to the next one."""
        raise NotImplementedError

    def before_cycle(self) -> None:
        """Anything a cycle in a fresh worker process would start without."""

    # -- running cycles

    def prepare(self) -> None:
        """Sync the baseline into a store file, then mutate the directory."""
        self.baseline = self.workdir / "baseline.db"
        store = open_store(f"sqlite:///{self.baseline}", check_schema=False)
        try:
            store.upgrade()
            first = self.cycle(store, full=True).result
            assert first is not None and first.status == "succeeded", first
        finally:
            store.dispose()  # closed, so the file holds everything (no pending journal)
        self.mutate()

    @contextmanager
    def fresh_store(self) -> Iterator[tuple[Store, Path]]:
        """An open store on a private copy of the baseline file; removed afterwards."""
        self._copies += 1
        path = self.workdir / f"run-{self._copies}.db"
        shutil.copyfile(self.baseline, path)
        store = open_store(f"sqlite:///{path}", check_schema=False)
        try:
            yield store, path
        finally:
            store.dispose()
            path.unlink(missing_ok=True)

    def cycle(self, store: Store, *, full: bool, timeout: float = CLEAN_TIMEOUT_SECONDS,
              max_retries: int = 2) -> Outcome:
        self.before_cycle()
        connector = self.connector(timeout=timeout, max_retries=max_retries)
        try:
            result = run_cycle(self.settings(str(store.engine.url)), self.name, trigger="test", full=full,
                               store=store, connector=connector, allow_deactivations=True)
        finally:
            connector.close()
        return self.observe(store, result)

    def observe(self, store: Store, result: RunResult | None = None) -> Outcome:
        """The store's export and the directory row, after `result` (None: before any run)."""
        with store.session() as session:
            row = get_directory(session, self.name)
            assert row is not None
            return Outcome(result, export_state(session), row.watermark, row.last_full_sync_at)

    def counted_cycle(self, store: Store, *, full: bool) -> tuple[Outcome, int]:
        """A clean cycle, and how many requests the simulator served for it."""
        start = self.sim.request_index
        outcome = self.cycle(store, full=full)
        return outcome, self.sim.request_index - start


# --- Okta ------------------------------------------------------------------------------


async def _no_wait(seconds: float) -> None:
    await asyncio.sleep(0)


@dataclass
class OktaScenario(Scenario):
    org: OktaOrg = field(kw_only=True)

    def settings(self, url: str) -> Settings:
        assert isinstance(self.sim, OktaSimulator)
        table = {"kind": "okta", "org_url": self.sim.base_url, "token_env": "OKTA_FAULTS_TOKEN",
                 "ca_bundle": self.sim.ca_path}
        return parse({"store": {"url": url}, "directories": {self.name: table}}, {})

    def connector(self, *, timeout: float, max_retries: int) -> Connector:
        assert isinstance(self.sim, OktaSimulator)
        base = self.settings("sqlite://").directory(self.name)
        assert isinstance(base, OktaDirectorySettings)
        directory = replace(base, request_timeout_seconds=timeout, max_retries=max_retries,
                            retry_budget_seconds=30.0)
        context = ssl.create_default_context()
        context.load_verify_locations(cafile=self.sim.ca_path)
        # the retry policy runs as in production; only its pauses are skipped
        return OktaConnector(directory, ApiToken(self.sim.api_token), ssl_context=context,
                             clock=self.org.clock, sleep=_no_wait)

    def mutate(self) -> None:
        org = self.org
        assert isinstance(org.clock, ManualClock)
        org.clock.advance(minutes=40)
        team, other = org.group_ids[2], org.group_ids[5]
        org.hire("Ada", "Newcomer", groups=[team, other])
        org.hire("Alan", "Newcomer", groups=[team])
        org.suspend(org.user_ids[3])
        org.deactivate(org.user_ids[4])
        org.leave(org.user_ids[7], delete=True)
        org.rename(org.user_ids[9], email="renamed.person@example.com")
        org.remove_member(other, min(org.members[other]))
        org.add_member(org.group_ids[8], next(u for u in org.user_ids if u not in org.members[org.group_ids[8]]))
        org.rename_group(org.group_ids[10], "Renamed Team")
        org.create_group("Brand New Team")
        org.delete_group(org.group_ids[12])


def okta_scenario(workdir: Path) -> OktaScenario:
    """About 250 users (two pages of the users list) and 15 groups."""
    clock = ManualClock(datetime.now(UTC).replace(microsecond=0))
    org = OktaOrg.generate(users=250, groups=15, memberships=600, seed=21, clock=clock)
    # Limits far above the matrix's pace: hundreds of back-to-back cycles would otherwise
    # exhaust Okta's per-minute buckets, and the retries' pauses are skipped here.
    sim = OktaSimulator(org, rate_limits={bucket: 1_000_000 for bucket in DEFAULT_RATE_LIMITS})
    sim.start()
    return OktaScenario("okta", sim, workdir, OKTA_FAULTS, org=org)


# --- Entra (Graph) --------------------------------------------------------------------


@dataclass
class GraphScenario(Scenario):
    tenant: GraphTenant = field(kw_only=True)

    def settings(self, url: str) -> Settings:
        assert isinstance(self.sim, GraphSimulator)
        table = self.sim.directory_table()
        return parse({"store": {"url": url}, "directories": {self.name: table}}, {})

    def connector(self, *, timeout: float, max_retries: int) -> Connector:
        assert isinstance(self.sim, GraphSimulator)
        base = self.settings("sqlite://").directory(self.name)
        assert isinstance(base, EntraDirectorySettings)
        directory = replace(base, request_timeout_seconds=timeout, max_retries=max_retries)
        return GraphConnector(directory, credential=Credential(secret=self.tenant.client_secret),
                              ca_bundle=self.sim.ca_path, sleep=lambda seconds: None)

    def before_cycle(self) -> None:
        # A worker process starts without an msal client: every cycle then signs in, so the
        # token and discovery requests are part of the matrix too (and msal keeps no cached
        # error answer from one run to the next).
        forget_clients()

    def mutate(self) -> None:
        t = self.tenant
        first, second = t.group_order[0], t.group_order[1]
        t.hire("ann.newcomer@contoso.example", groups=[first])
        t.hire("bob.newcomer@contoso.example", groups=[first, second])
        t.disable(t.user_order[1])
        t.soft_delete(t.user_order[2])
        t.hard_delete(t.user_order[3])
        t.remove_member(first, min(t.groups[first].members))
        t.rename_group(t.group_order[4], "Renamed group")
        t.create_group("Brand new group", members=t.user_order[10:14])
        t.delete_group(t.group_order[6])
        # enough renamed users that the incremental users round spans several pages
        for uid in t.user_order[20:130]:
            t.update_user(uid, given_name="Renamed")


def graph_scenario(workdir: Path) -> GraphScenario:
    """150 users and 15 groups, on pages of 50 users and 40 members."""
    tenant = GraphTenant.generate(users=150, groups=15, memberships=400, seed=21)
    sim = GraphSimulator(tenant, users_per_page=50, group_members_per_page=40)
    sim.start()
    # Graph's resource-unit budget is per 10 s; back-to-back cycles whose retries do not
    # pause would otherwise be throttled by the budget rather than by the injected fault.
    sim.throttle_budget = 1_000_000_000
    return GraphScenario("entra", sim, workdir, GRAPH_FAULTS, tenant=tenant)
