"""Serve a simulator until Ctrl-C or SIGTERM: what `dirsync simulate okta|entra` runs.

With `state_dir`, the simulator's state (CA, credentials, port, the whole org or tenant,
see `state.py`) is loaded from it when present and saved to it after every admin change
and on stop, so a restart serves the same directory to the same clients. Without it, the
CA and state live in a temporary directory removed on stop. SIGINT and SIGTERM stop the
server promptly (`SimulatorServer.stop` does not wait for clients) and return normally.
"""

from __future__ import annotations

import contextlib
import signal
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal

from simulators import admin, state
from simulators.admin_client import ADMIN_TOKEN_ENV
from simulators.base import SimulatorServer
from simulators.graph import GraphSimulator
from simulators.graph_tenant import GraphTenant
from simulators.okta import OktaSimulator
from simulators.okta_org import OktaOrg
from simulators.tls import persistent_ca

__all__ = ["ServeError", "serve"]

Kind = Literal["okta", "entra"]


class ServeError(Exception):
    """The simulator cannot start (one line for the user)."""


def serve(kind: Kind, *, users: int, groups: int, seed: int, port: int,
          state_dir: Path | None = None, echo: Callable[[str], None] | None = None,
          stop: threading.Event | None = None) -> None:
    """Serve until SIGINT or SIGTERM, or until `stop` is set (see the module docstring);
    `echo` prints a line. Signals are caught only when called on the main thread."""
    echo = echo or _print_flushed
    stop = stop or threading.Event()
    with _stop_on_signals(stop), _directory(state_dir) as directory:
        saved = state.load(directory)
        if saved is not None and saved.get("kind") != kind:
            raise ServeError(f"{directory} holds the state of an {saved.get('kind')} simulator, not {kind}")
        sim = _build(kind, saved, users=users, groups=groups, seed=seed,
                     port=port or (saved or {}).get("port", 0))
        sim.use_ca(persistent_ca(directory))
        sim.admin_token = (saved or {}).get("admin_token") or sim.new_admin_token()
        # Admin requests come only while it serves, so `sim.port` is there to read.
        admin.install(sim, on_change=lambda: state.save(directory, _snapshot(kind, sim, sim.port)))
        try:
            sim.start()
        except OSError as error:
            raise ServeError(f"cannot listen on 127.0.0.1:{port or (saved or {}).get('port')}: {error.strerror}") from None
        listening = sim.port
        try:
            state.save(directory, _snapshot(kind, sim, listening))
            _print_welcome(kind, sim, users, groups, seed, state_dir, echo)
            stop.wait()  # the signal handler runs on this (main) thread and sets it
        finally:
            sim.stop()
            if state_dir is not None:
                state.save(directory, _snapshot(kind, sim, listening))


def _print_flushed(line: str) -> None:
    print(line, flush=True)  # a reader on a pipe sees each line as it comes


@contextlib.contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGINT and SIGTERM set `stop` (in the main thread; elsewhere signals stay as they are)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    handler = lambda signum, frame: stop.set()  # noqa: E731
    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


@contextlib.contextmanager
def _directory(state_dir: Path | None) -> Iterator[Path]:
    if state_dir is not None:
        state_dir.mkdir(parents=True, exist_ok=True)
        yield state_dir
        return
    with tempfile.TemporaryDirectory(prefix="dirsync-simulator-") as temporary:
        yield Path(temporary)


def _build(kind: Kind, saved: dict[str, Any] | None, *, users: int, groups: int, seed: int,
           port: int) -> SimulatorServer:
    if kind == "okta":
        if saved is not None:
            return OktaSimulator(state.okta_org_from_json(saved["org"]), port=port, api_token=saved["api_token"])
        org = OktaOrg.generate(users=users, groups=groups, memberships=users * 2, seed=seed,
                               app_users=max(1, users // 10), app_groups=max(1, groups // 10))
        return OktaSimulator(org, port=port)
    if saved is not None:
        return GraphSimulator(state.graph_tenant_from_json(saved["tenant"]), port=port)
    tenant = GraphTenant.generate(users=users, groups=groups, memberships=users * 2, seed=seed,
                                  assigned_users=users // 2, assigned_groups=max(1, groups // 4))
    return GraphSimulator(tenant, port=port)


def _snapshot(kind: Kind, sim: SimulatorServer, port: int) -> dict[str, Any]:
    common = {"kind": kind, "port": port, "admin_token": sim.admin_token}
    if isinstance(sim, OktaSimulator):
        return {**common, "api_token": sim.api_token, "org": state.okta_org_to_json(sim.org)}
    assert isinstance(sim, GraphSimulator)
    return {**common, "tenant": state.graph_tenant_to_json(sim.tenant)}


def _print_welcome(kind: Kind, sim: SimulatorServer, users: int, groups: int, seed: int,
                   state_dir: Path | None, echo: Callable[[str], None]) -> None:
    for line in (_okta_lines(sim, users, groups, seed) if isinstance(sim, OktaSimulator)
                 else _entra_lines(sim)):
        echo(line)
    echo("")
    if state_dir is not None:
        echo(f"  state:     {state_dir} (kept across restarts)")
        echo(f"  admin:     dirsync simulate admin --state-dir {state_dir} COMMAND ...")
    else:
        echo(f"  admin:     dirsync simulate admin --url {sim.base_url} --ca-bundle {sim.ca_path} COMMAND ...")
        echo(f"  export {ADMIN_TOKEN_ENV}={sim.admin_token}")
    echo("Press Ctrl-C to stop.")


def _okta_lines(sim: SimulatorServer, users: int, groups: int, seed: int) -> list[str]:
    assert isinstance(sim, OktaSimulator)
    org = sim.org
    return [
        f"Okta simulator: {len(org.users)} users, {len(org.groups) - 1} groups (seed {seed})",
        f"  org URL:   {sim.base_url}",
        f"  API token: {sim.api_token}",
        f"  CA bundle: {sim.ca_path}",
        f"  app id:    {org.app_id} (optional: app_id = ... limits the scope to this app)",
        "",
        f"  export OKTA_API_TOKEN={sim.api_token}",
        "  # dirsync.toml",
        "  [directories.okta]",
        '  kind = "okta"',
        f'  org_url = "{sim.base_url}"',
        '  token_env = "OKTA_API_TOKEN"',
        f'  ca_bundle = "{sim.ca_path}"',
    ]


def _entra_lines(sim: SimulatorServer) -> list[str]:
    assert isinstance(sim, GraphSimulator)
    t = sim.tenant
    return [
        f"authority host : {sim.authority_host}",
        f"graph url      : {sim.graph_url}",
        f"tenant id      : {t.tenant_id}",
        f"client id      : {t.client_id}",
        f"client secret  : {t.client_secret}",
        f"service principal id: {t.service_principal_id}",
        f"CA bundle      : {sim.ca_path}",
        "",
        f"# export ENTRA_CLIENT_SECRET='{t.client_secret}'",
        "[directories.entra]",
        *(f'{key} = "{value}"' for key, value in sim.directory_table(assigned=False).items()),
        f'# service_principal_id = "{t.service_principal_id}"  # assigned scope only',
    ]
