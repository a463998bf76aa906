"""The simulated Okta org behind `bench/many_directories.py --kind okta`: one org holding an
app per directory (built in bulk, so no log events), served in its own process with rate
limits lifted and a latency added to every request, and changed through the org's admin
actions so its System Log records each change as Okta would. `OktaApps` is the script's
handle on it: the same interface as its file directories."""

from __future__ import annotations

import multiprocessing as mp
import os
import time
from dataclasses import dataclass
from typing import Any

TOKEN_ENV = "BENCH_OKTA_TOKEN"  # the workers inherit it (the cluster passes the environment on)


@dataclass
class App:
    id: str
    users: list[str]  # its users, in order (a deactivated one loses its direct assignment)
    groups: list[str]


def build_org(names: list[str], users: int, groups: int) -> tuple[Any, dict[str, App]]:
    """One org holding an app per directory: the app's `users` users assigned directly and its
    `groups` groups assigned (every user in one, every third in the next one too), so each
    app-scoped directory reads only its own users; no user or group is in two apps. Built in
    bulk (`OktaOrg.generate` for the records, then the assignments), so no log events."""
    from simulators.okta import OktaOrg

    org = OktaOrg.generate(users=len(names) * users, groups=len(names) * groups, memberships=0)
    group_ids = [g for g in org.group_ids if g != org.everyone_id]
    apps: dict[str, App] = {}
    with org.lock:
        stamp = org.now()
        for d, name in enumerate(names):
            app = org.create_app(name)
            own = org.user_ids[d * users:(d + 1) * users]
            teams = group_ids[d * groups:(d + 1) * groups]
            apps[name] = App(app, own, teams)
            for i, uid in enumerate(own):
                org.app_users[app][uid] = stamp
                org.members[teams[i % groups]].add(uid)
                if i % 3 == 0 and groups > 1:
                    org.members[teams[(i % groups + 1) % groups]].add(uid)
            for gid in teams:
                org.app_groups[app][gid] = stamp
        org.version += 1
    return org, apps


def change_apps(org: Any, apps: dict[str, App], step: int) -> dict[str, int]:
    """Change every app's users through the org's admin actions, so the System Log records
    it as Okta would (`okta_bench.change_one_percent` does the same to 1 % of an org): 5
    renamed, one deactivated (Okta drops its direct assignment; its groups keep it in the app
    once it is back), the one the step before deactivated reactivated, one moved to another
    group."""
    done = {"renamed": 0, "deactivated": 0, "reactivated": 0, "moved": 0}
    with org.lock:
        for app in apps.values():
            own, teams, users = app.users, app.groups, len(app.users)
            for k in range(5):
                org.rename(own[(step * 5 + k) % users], last_name=f"Renamed{step}")
                done["renamed"] += 1
            org.deactivate(own[step % users])
            done["deactivated"] += 1
            previous = own[(step - 1) % users]
            if org.users[previous]["status"] == "DEPROVISIONED":
                org.reactivate(previous)
                done["reactivated"] += 1
            moved = own[(step * 7) % users]
            current = [g for g in teams if moved in org.members[g]]
            if current and len(current) < len(teams):
                org.remove_member(current[0], moved)
                org.add_member(next(g for g in teams if g not in current), moved)
                done["moved"] += 1
    return done


def serve_org(names: list[str], users: int, groups: int, latency: float, control: Any) -> None:
    """The org's simulator, in its own process (its CPU is not the workers'), with rate limits
    lifted (`okta_bench`: the point is the cycles, not Okta's quota) and `latency` seconds
    added to every request; answers the bench's commands on `control` until told to stop:
    "counts" (requests per endpoint so far), "change" (`change_apps`, answering what it did)."""
    from okta_bench import UNLIMITED

    from simulators.okta import OktaSimulator

    started = time.perf_counter()
    org, apps = build_org(names, users, groups)
    sim = OktaSimulator(org, rate_limits=UNLIMITED).start()
    sim.latency(latency)
    for uid in org.user_ids:  # serialise once, as a long-running org would have
        org.user_bytes(uid)
    control.send({"base_url": sim.base_url, "token": sim.api_token, "ca_path": sim.ca_path,
                  "apps": {name: app.id for name, app in apps.items()}, "generated": time.perf_counter() - started})
    step = 0
    while True:
        command = control.recv()
        if command == "counts":
            control.send(sim.counts())
        elif command == "change":
            step += 1
            control.send(change_apps(org, apps, step))
        else:
            sim.stop()
            control.send(None)
            return


class OktaApps:
    """The directories as apps of one simulated Okta org: each directory reads in app scope
    (`app_id`), all with the same `org_url`, token and CA bundle. `write(0)` leaves the org
    as it is (a fresh store reads it whole); any other version makes one more change to
    every app (`change_apps`)."""

    def __init__(self, names: list[str], users: int, groups: int, latency_ms: float) -> None:
        self.names, self.users, self.groups, self.latency_ms = names, users, groups, latency_ms
        self.version = 0
        self.changes: list[dict[str, int]] = []
        self.control, child = mp.Pipe()
        self.process = mp.Process(target=serve_org, args=(names, users, groups, latency_ms / 1000, child),
                                  daemon=True)
        self.process.start()
        self.info: dict[str, Any] = self.control.recv()
        os.environ[TOKEN_ENV] = self.info["token"]

    def settings(self, name: str) -> dict[str, Any]:
        return {"kind": "okta", "org_url": self.info["base_url"], "token_env": TOKEN_ENV,
                "ca_bundle": self.info["ca_path"], "app_id": self.info["apps"][name]}

    def write(self, version: int) -> None:
        self.version = version
        if version:
            self.control.send("change")
            self.changes.append(self.control.recv())

    def snapshot(self, name: str) -> Any:
        """What a full read of `name` returns (read here, through the simulator's latency)."""
        from okta_bench import connector_for

        return connector_for({**self.info, "app_id": self.info["apps"][name]}).read(None)

    def server(self) -> list[int]:
        return [self.process.pid] if self.process.pid else []

    def requests(self) -> dict[str, int]:
        self.control.send("counts")
        counts: dict[str, int] = self.control.recv()
        return counts

    def close(self) -> None:
        if self.process.is_alive():
            self.control.send("stop")
            self.control.recv()
        self.process.join(timeout=10)
