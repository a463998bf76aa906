"""`dirsync demo`: a real sync on an embedded SQLite store, no broker and no network.

It writes a sample HR export and a config into a folder, prepares a few local objects
(an open invite, a local account and a local group that the directory will link),
runs a first cycle, changes the export (a hire, a leaver, a rename, a group move, a
too-long group name, an attempt to override the admin group) and runs again, printing
each plan as a diff. The folder stays behind for `dirsync --config ... export`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

import config
from reconcile import admin as actions
from reconcile.apply import apply
from reconcile.cycle import run_cycle
from store import load_local_state, open_store
from worker import render

CONFIG = """\
# Written by `dirsync demo`. Try: dirsync --config {config} export
[store]
url = "sqlite:///{db}"

[directories.hr]
kind = "file"
path = "directory.json"
cycle_minutes = 40
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


def run_demo(folder: Path) -> None:
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
        _step("Before sync is turned on: a local account, a local group and an open invite")
        for build in (
            lambda s: actions.invite(s, "ana.diaz@example.com", syncing=[]),
            lambda s: actions.add_user(s, "bo.chen@example.com", "Bo (local account)", rules),
            lambda s: actions.add_group(s, "Engineering", rules),
        ):
            with store.session() as session:
                the_plan = build(load_local_state(session))
            apply(store, the_plan, run_id=None, directory=None)
            for op in the_plan.operations:
                click.echo(f"  + {render.describe(op)}")

        _step("Cycle 1: the HR export is read for the first time")
        _cycle(settings, store)
        _step("The export changes: Hana is hired, Farid leaves, Dana is renamed, Chidi moves to Sales,"
              " and a group tries to override Administrators")
        export_path.write_text(json.dumps(second_export(), indent=2))
        _cycle(settings, store)
        _step("Cycle 3: nothing changed, so nothing is planned")
        _cycle(settings, store)
        _step("The store now")
        from store import export_state

        with store.session() as session:
            for line in render.store_lines(export_state(session)):
                click.echo(f"  {line}")
        click.echo()
        click.echo(f"Inspect it yourself:  dirsync --config {config_path} export --json")
        click.echo(f"                      dirsync --config {config_path} runs")
    finally:
        store.dispose()


def _cycle(settings: config.Settings, store: Any) -> None:
    preview = run_cycle(settings, "hr", dry_run=True, store=store)
    assert preview.plan is not None
    lines = list(render.plan_lines(preview.plan))
    click.echo("  plan:")
    for line in lines or ["(nothing to do)"]:
        colour = {"+": "green", "-": "red", "~": "yellow", "=": "cyan", "!": "magenta"}.get(line[:1])
        click.secho(f"    {line}", fg=colour)
    result = run_cycle(settings, "hr", trigger="demo", store=store)
    click.echo(f"  {render.summary(result)}")


def _step(title: str) -> None:
    click.echo()
    click.secho(f"== {title}", bold=True)


@click.command()
@click.option("--dir", "folder", type=click.Path(file_okay=False, path_type=Path),
              default=Path("dirsync-demo"), show_default=True, help="Where to write the demo files.")
def demo(folder: Path) -> None:
    """Watch a real sync: sample directory, two cycles, the diff of each, on SQLite."""
    run_demo(folder.resolve())


COMMANDS = [demo]
