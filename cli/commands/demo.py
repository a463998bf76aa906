"""`dirsync demo`: real syncs on an embedded SQLite store, no broker and no network.

1. It writes a sample HR export and a config into a folder, prepares a few local objects
   (an open invite, a local account and local groups that directories will link), runs a
   first cycle, changes the export (a hire, a leaver, a rename, a group move, a too-long
   group name, an attempt to override the admin group) and runs again.
2. It starts the local Okta and Microsoft Graph simulators, seeds an org in each, runs a
   full cycle of each through the real connectors, changes both (hires, leavers, renames,
   a group that links to a local one, a 25-character group name, an `Administrators`
   group) and runs incremental cycles.
Every plan is printed as a diff, with progress on long work, then `status`. The folder
and its SQLite store stay behind for `dirsync --config ... export`.
"""

from __future__ import annotations

import json
import os
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import click

import config
from cli import render
from cli.base import progress_printer
from reconcile import admin as actions
from reconcile import clock
from service.admin import run_local_action
from service.sync import sync
from store import Store, open_store

CONFIG = """\
# Written by `dirsync demo`. Try: dirsync --config {config} export
[store]
url = "sqlite:///{db}"

[directories.hr]
kind = "file"
path = "directory.json"
cycle_minutes = 40
"""

IDP_CONFIG = """
[directories.okta]
kind = "okta"
org_url = "{okta_url}"
token_env = "DEMO_OKTA_API_TOKEN"
ca_bundle = "{okta_ca}"

[directories.entra]
kind = "entra"
tenant_id = "{tenant}"
client_id = "{client}"
client_secret_env = "DEMO_ENTRA_CLIENT_SECRET"
authority_host = "{authority}"
graph_url = "{graph}"
ca_bundle = "{entra_ca}"
"""

PEOPLE: list[dict[str, Any]] = [
    {"id": "u1", "email": "ana.diaz@example.com", "given_name": "Ana", "family_name": "Diaz"},
    {"id": "u2", "email": "bo.chen@example.com", "given_name": "Bo", "family_name": "Chen"},
    {"id": "u3", "email": "chidi.okafor@example.com", "given_name": "Chidi", "family_name": "Okafor"},
    {"id": "u4", "email": "dana.levi@example.com", "given_name": "Dana", "family_name": "Levi"},
    {"id": "u5", "email": "eva.novak@example.com", "given_name": "Eva", "family_name": "Novák"},
    {"id": "u6", "email": "farid.haddad@example.com", "given_name": "Farid", "family_name": "Haddad"},
    {"id": "u7", "email": "not-an-email", "given_name": "Gil", "family_name": "Broken"},
]


def _user(p: dict[str, Any], active: bool = True) -> dict[str, Any]:
    return {**p, "display_name": f"{p['given_name']} {p['family_name']}", "active": active}


def first_export() -> dict[str, Any]:
    return {
        "users": [_user(p) for p in PEOPLE],
        "groups": [
            {"id": "g1", "name": "Engineering", "members": ["u1", "u2", "u3"]},
            {"id": "g2", "name": "Sales", "members": ["u4", "u5"]},
            {"id": "g3", "name": "Split_Administrators", "members": ["u1"]},
            {"id": "g4", "name": "Customer Success Operations EMEA", "members": ["u5"]},
        ],
    }


def second_export() -> dict[str, Any]:
    users = [_user(p) for p in PEOPLE if p["id"] != "u6"]  # u6 leaves
    users.append(_user({"id": "u8", "email": "hana.sato@example.com", "given_name": "Hana", "family_name": "Sato"}))
    for u in users:
        if u["id"] == "u4":  # Dana changes her name and address
            u.update(email="dana.cohen@example.com", family_name="Cohen", display_name="Dana Cohen")
    return {
        "users": users,
        "groups": [
            {"id": "g1", "name": "Engineering", "members": ["u1", "u2", "u8"]},
            {"id": "g2", "name": "Sales", "members": ["u4", "u5", "u3"]},  # u3 moves to Sales
            {"id": "g3", "name": "Split_Administrators", "members": ["u1", "u2"]},
            {"id": "g4", "name": "Customer Success Operations EMEA", "members": ["u5"]},
            {"id": "g5", "name": "Administrators", "members": ["u8"]},  # may not override
        ],
    }


def run_demo(folder: Path, *, identity_providers: bool = True) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    db = folder / "dirsync.db"
    if db.exists():
        db.unlink()
    config_path = folder / "dirsync.toml"
    config_path.write_text(CONFIG.format(config=config_path, db=db.as_posix()))
    export_path = folder / "directory.json"
    export_path.write_text(json.dumps(first_export(), indent=2))
    settings = config.load(config_path, environ={})
    store = open_store(settings.store.url)
    rules = settings.rules.to_rules()
    try:
        click.secho(f"demo folder: {folder}", bold=True)
        _step("Before sync is turned on: a local account, local groups and an open invite")
        for build in (
            lambda s: actions.invite(s, "ana.diaz@example.com", syncing=[]),
            lambda s: actions.add_user(s, "bo.chen@example.com", "Bo (local account)", rules),
            lambda s: actions.add_group(s, "Engineering", rules),
            lambda s: actions.add_group(s, "Support", rules),
            lambda s: actions.add_group(s, "Facilities", rules),
        ):
            for op in run_local_action(store, build):
                click.echo(f"  + {render.describe(op)}")

        _step("HR export, cycle 1: the file is read for the first time")
        _cycle(settings, store, "hr")
        _step("The export changes: Hana is hired, Farid leaves, Dana is renamed, Chidi moves to Sales,"
              " and a group tries to override Administrators")
        export_path.write_text(json.dumps(second_export(), indent=2))
        _cycle(settings, store, "hr")
        _step("HR export, cycle 3: nothing changed, so nothing is planned")
        _cycle(settings, store, "hr")

        if identity_providers:
            settings = _identity_providers(folder, config_path, store)

        _step("dirsync status")
        from service import status
        from cli import status_view

        now = clock.now()
        for line in status_view.render_text(status.collect(settings, store, now), now).splitlines():
            click.echo(f"  {line}")
        _step("The store now")
        _store_summary(store)
        click.echo()
        click.echo(f"Inspect it yourself:  dirsync --config {config_path} export --json")
        click.echo(f"                      dirsync --config {config_path} runs")
        if identity_providers:
            click.echo("(the simulators stopped with the demo: syncing okta or entra again needs"
                       " `dirsync simulate okta|entra` and their new URLs)")
    finally:
        store.dispose()


def _identity_providers(folder: Path, config_path: Path, store: Store) -> config.Settings:
    """Okta and Entra through their simulators: full cycles, changes, incremental cycles."""
    from simulators.graph import GraphSimulator
    from simulators.graph_tenant import GraphTenant
    from simulators.okta import OktaSimulator
    from simulators.okta_org import OktaOrg

    _step("Starting the local Okta and Microsoft Graph simulators (HTTPS, a test CA)")
    with ExitStack() as stack:
        org = OktaOrg.generate(users=2000, groups=30, memberships=4000, seed=7)
        okta = stack.enter_context(OktaSimulator(org))
        tenant = GraphTenant.generate(users=1500, groups=25, memberships=3000, seed=7)
        entra = stack.enter_context(GraphSimulator(tenant))
        # The secrets live in this process's environment only, as in production.
        os.environ["DEMO_OKTA_API_TOKEN"] = okta.api_token
        os.environ["DEMO_ENTRA_CLIENT_SECRET"] = tenant.client_secret
        text = config_path.read_text() + IDP_CONFIG.format(
            okta_url=okta.base_url, okta_ca=okta.ca_path,
            tenant=tenant.tenant_id, client=tenant.client_id,
            authority=entra.authority_host, graph=entra.graph_url, entra_ca=entra.ca_path,
        )
        config_path.write_text(text)
        settings = config.load(config_path, environ={**os.environ})
        click.echo(f"  okta:  {okta.base_url}  (2000 users, 30 groups)")
        click.echo(f"  entra: {entra.graph_url}  (1500 users, 25 groups)")

        _step("Okta, cycle 1 (full): every user and group is read through the okta SDK")
        _cycle(settings, store, "okta")
        users = sorted(org.user_ids)
        org.hire("Katherine", "Johnson", "katherine.johnson@example.com")
        org.hire("Mary", "Jackson", "mary.jackson@example.com")
        org.deactivate(users[0])
        org.rename(users[1], email="renamed.person@example.com")
        org.create_group("Support")  # a local group of that name exists: it links
        org.create_group("Customer Success Team EMEA")  # 26 characters: refused
        org.create_group("Administrators")  # reserved: refused
        _step("Okta changes: two hires, a deactivation, an email rename, a group that links to"
              " a local one, a 26-character group name, an `Administrators` group")
        _cycle(settings, store, "okta")

        _step("Entra, cycle 1 (full): /users/delta and /groups/delta with tokens from msal")
        _cycle(settings, store, "entra")
        uids = list(tenant.user_order)
        tenant.hire("grace.hopper@contoso.example")
        tenant.disable(uids[2])
        tenant.soft_delete(uids[3])
        tenant.rename_upn(uids[4], "renamed.user@contoso.example")
        tenant.create_group("Facilities", members=uids[5:8])
        tenant.create_group("Split_Administrators", members=uids[5:7])
        tenant.create_group("A group name far too long to keep")
        _step("Entra changes: a hire, a disabled and a deleted user, a UPN rename, a group that links"
              " to a local one, Split_Administrators, a too-long group name")
        _cycle(settings, store, "entra")
        _step("Entra, another incremental cycle: the delta link says nothing changed")
        _cycle(settings, store, "entra")
    return settings


def _cycle(settings: config.Settings, store: Store, name: str) -> None:
    preview = sync(settings, store, name, dry_run=True)
    if preview.plan is None:
        click.secho(f"  {render.summary(preview)}", fg="red")
        return
    click.echo(f"  plan ({preview.mode}):")
    lines = list(render.plan_lines(preview.plan, per_action=6))
    for line in lines or ["(nothing to do)"]:
        colour = {"+": "green", "-": "red", "~": "yellow", "=": "cyan", "!": "magenta"}.get(line[:1])
        click.secho(f"    {line}", fg=colour)
    with progress_printer(True, min_total=0) as progress:
        result = sync(settings, store, name, trigger="demo", progress=progress)
    click.echo(f"  {render.summary(result)}")


def _store_summary(store: Store) -> None:
    from store import export_state

    with store.session() as session:
        state = export_state(session)
    for owner in sorted({u["managed_by"] or "local" for u in state["users"]}):
        mine = [u for u in state["users"] if (u["managed_by"] or "local") == owner]
        active = sum(1 for u in mine if u["active"])
        click.echo(f"  users of {owner:<6} {len(mine):>5} ({active} active, {len(mine) - active} inactive)")
    for g in state["groups"][:12]:
        owner = f"{g['managed_by']}:{g['external_id']}" if g["managed_by"] else "local"
        members = ", ".join(g["members"][:3]) + (f", ... ({len(g['members'])})" if len(g["members"]) > 3 else "")
        click.echo(f"  group {g['name']:<25} {owner:<40.40} {members or '-'}")
    if len(state["groups"]) > 12:
        click.echo(f"  ... and {len(state['groups']) - 12} more groups")
    for i in state["invites"]:
        click.echo(f"  invite {i['email']} {i['status']}")


def _step(title: str) -> None:
    click.echo()
    click.secho(f"== {title}", bold=True)


@click.command()
@click.option("--dir", "folder", type=click.Path(file_okay=False, path_type=Path),
              default=Path("dirsync-demo"), show_default=True, help="Where to write the demo files.")
@click.option("--file-only", is_flag=True, help="Only the HR export; skip the Okta and Entra simulators.")
def demo(folder: Path, file_only: bool) -> None:
    """Watch real syncs on SQLite: an HR export, then Okta and Entra through local simulators."""
    run_demo(folder.resolve(), identity_providers=not file_only)


COMMANDS = [demo]
