"""The corpus's records served by each connector: a JSON export, the Okta simulator and the
Graph simulator. A `Directory` holds connector-neutral records (see `records`), writes them
into its source of truth, and runs full cycles of it into a store."""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from config import OktaDirectorySettings, Settings, parse
from connectors.graph import GraphConnector
from connectors.graph_auth import Credential, forget_clients
from connectors.okta import ApiToken, OktaConnector
from simulators.clocks import ManualClock
from simulators.graph import GraphSimulator, GraphTenant
from simulators.okta import OktaOrg, OktaSimulator
from reconcile.cycle import RunResult, run_cycle
from store import Store
from tests.corpus.records import Record


class Directory:
    """A source of directory records of one kind; `ids` maps record ids to the IdP's ids."""

    kind: str = ""

    def __init__(self) -> None:
        self.ids: dict[str, str] = {}

    def put(self, users: Iterable[Record], groups: Iterable[Record]) -> None:
        """Add the records; one whose id is already there replaces it."""
        raise NotImplementedError

    def cycle(self, store: Store) -> RunResult:
        """One full cycle of this directory into `store`."""
        raise NotImplementedError

    def close(self) -> None:
        pass

    def _run(self, store: Store, settings: Settings, connector: Any) -> RunResult:
        try:
            return run_cycle(settings, self.kind, trigger="test", full=True, store=store, connector=connector)
        finally:
            if connector is not None:
                connector.close()


class FileDirectory(Directory):
    """A JSON export on disk, written exactly as the records say (wrong types included)."""

    kind = "file"

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        self.users: list[Record] = []
        self.groups: list[Record] = []

    def put(self, users: Iterable[Record], groups: Iterable[Record]) -> None:
        self.users = _upsert(self.users, users)
        self.groups = _upsert(self.groups, groups)
        for record in (*self.users, *self.groups):
            self.ids[record["id"]] = record["id"]
        export = {
            "users": [{k: v for k, v in u.items() if k != "status"} for u in self.users],
            "groups": self.groups,
        }
        self.path.write_text(json.dumps(export))

    def cycle(self, store: Store) -> RunResult:
        settings = parse({"store": {"url": str(store.engine.url)},
                          "directories": {"file": {"kind": "file", "path": str(self.path)}}}, {})
        return self._run(store, settings, None)


def _upsert(records: list[Record], new: Iterable[Record]) -> list[Record]:
    """Replace the first record with each new one's id; append the rest (duplicates too)."""
    out = list(records)
    replaced: set[str] = set()
    for record in new:
        at = next((i for i, r in enumerate(out) if r["id"] == record["id"]), None)
        if at is not None and record["id"] not in replaced and at < len(records):
            out[at] = record
            replaced.add(record["id"])
        else:
            out.append(record)
    return out


async def _no_wait(seconds: float) -> None:
    await asyncio.sleep(0)


class OktaDirectory(Directory):
    """An Okta org: records become users and groups with exactly the raw profile values."""

    kind = "okta"

    def __init__(self) -> None:
        super().__init__()
        self.clock = ManualClock(datetime.now(UTC).replace(microsecond=0))
        self.org = OktaOrg(clock=self.clock)
        self.sim = OktaSimulator(self.org)
        self.sim.start()

    def put(self, users: Iterable[Record], groups: Iterable[Record]) -> None:
        org = self.org
        for record in users:
            uid = self.ids.get(record["id"])
            if uid is None:
                uid = org.hire("Placeholder", "Person", email=f"placeholder.{len(self.ids)}@example.com")
                self.ids[record["id"]] = uid
            org.patch_user(uid, {"profile": {
                "email": record["email"], "firstName": record["given_name"],
                "lastName": record["family_name"], "displayName": record["display_name"]}})
            org.set_status(uid, record.get("status", "ACTIVE" if record["active"] is True else "SUSPENDED"))
        for record in groups:
            gid = self.ids.get(record["id"])
            if gid is None:
                gid = org.create_group("placeholder")
                self.ids[record["id"]] = gid
            with org.lock:  # the raw name, whatever its type
                org.groups[gid]["profile"]["name"] = record["name"]
                org.version += 1
            wanted = {self.ids[m] for m in record["members"]}
            for member in sorted(org.members[gid] - wanted):
                org.remove_member(gid, member)
            for member in sorted(wanted):
                org.add_member(gid, member)

    def cycle(self, store: Store) -> RunResult:
        table = {"kind": "okta", "org_url": self.sim.base_url, "token_env": "OKTA_CORPUS_TOKEN",
                 "ca_bundle": self.sim.ca_path}
        settings = parse({"store": {"url": str(store.engine.url)}, "directories": {"okta": table}}, {})
        directory = settings.directory("okta")
        assert isinstance(directory, OktaDirectorySettings)
        context = ssl.create_default_context()
        context.load_verify_locations(cafile=self.sim.ca_path)
        connector = OktaConnector(directory, ApiToken(self.sim.api_token), ssl_context=context,
                                  clock=self.clock, sleep=_no_wait)
        return self._run(store, settings, connector)

    def close(self) -> None:
        self.sim.stop()


class GraphDirectory(Directory):
    """An Entra tenant: the email is the userPrincipalName (the default source), and mail."""

    kind = "entra"

    def __init__(self) -> None:
        super().__init__()
        self.tenant = GraphTenant(seed=5)
        self.sim = GraphSimulator(self.tenant)
        self.sim.start()

    def put(self, users: Iterable[Record], groups: Iterable[Record]) -> None:
        t = self.tenant
        for record in users:
            uid = self.ids.get(record["id"])
            if uid is None:
                uid = t.hire(f"placeholder.{len(self.ids)}@contoso.example")
                self.ids[record["id"]] = uid
            email = record["email"]
            t.update_user(uid, user_principal_name=email, mail=email, given_name=record["given_name"],
                          surname=record["family_name"], display_name=record["display_name"],
                          account_enabled=record["active"])
        for record in groups:
            gid = self.ids.get(record["id"])
            if gid is None:
                gid = t.create_group("placeholder")
                self.ids[record["id"]] = gid
            t.rename_group(gid, record["name"])
            wanted = {self.ids[m] for m in record["members"]}
            for member in sorted(t.groups[gid].members - wanted):
                t.remove_member(gid, member)
            for member in sorted(wanted):
                t.add_member(gid, member)

    def cycle(self, store: Store) -> RunResult:
        forget_clients()
        settings = parse({"store": {"url": str(store.engine.url)},
                          "directories": {"entra": self.sim.directory_table()}}, {})
        connector = GraphConnector(settings.directory("entra"),  # type: ignore[arg-type]
                                   credential=Credential(secret=self.tenant.client_secret),
                                   ca_bundle=self.sim.ca_path, sleep=lambda seconds: None)
        return self._run(store, settings, connector)

    def close(self) -> None:
        self.sim.stop()
