"""SCIM requests at the same time as a pull cycle of another directory, local admin
actions and each other: the rules hold in every committed state (DESIGN §2a)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import config
from reconcile.admin import Refused, add_user, deactivate_user
from reconcile.apply import apply
from reconcile.cycle import run_cycle
from reconcile.push import Problem, PushGroup, PushUser
from reconcile.push_patch import PatchOp
from service import scim
from service.scim_tokens import issue_token
from store import Store, export_state, load_local_state


def _settings(store: Store, folder: Path) -> config.Settings:
    return config.parse({
        "store": {"url": store.engine.url.render_as_string(hide_password=False)},
        "directories": {"okta": {"kind": "scim"}, "entra": {"kind": "scim"},
                        "hr": {"kind": "file", "path": str(folder / "hr.json")}},
    }, {})


def _hr_file(folder: Path, n: int) -> None:
    users = [{"id": f"h{i}", "email": f"h{i}@example.com", "active": True} for i in range(n)]
    groups = [{"id": "g1", "name": "Staff", "members": [u["id"] for u in users]}]
    (folder / "hr.json").write_text(json.dumps({"users": users, "groups": groups}))


def _run_all(jobs: list[Callable[[], None]]) -> list[BaseException]:
    errors: list[BaseException] = []
    start = threading.Barrier(len(jobs))

    def wrap(job: Callable[[], None]) -> None:
        start.wait()
        try:
            job()
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    threads = [threading.Thread(target=wrap, args=(job,)) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    return errors


def test_scim_pull_and_admin_writers_keep_the_rules(store: Store, tmp_path: Path) -> None:
    settings = _settings(store, tmp_path)
    issue_token(settings, store, "okta")
    issue_token(settings, store, "entra")
    _hr_file(tmp_path, 20)
    admins = [scim.create_user(settings, store, "okta", PushUser(f"a{i}@example.com"), request="POST /Users")
              for i in range(2)]
    admin_group = scim.create_group(settings, store, "okta",
                                    PushGroup("Split_Administrators", members=tuple(a.row.scim_id for a in admins)),
                                    request="POST /Groups")
    outcomes: dict[str, list[Any]] = {"okta": [], "entra": [], "admin": [], "r4": []}

    def okta_pushes() -> None:
        for i in range(25):
            try:
                created = scim.create_user(settings, store, "okta", PushUser(f"o{i}@example.com"), request="POST")
                outcomes["okta"].append(created.row.scim_id)
            except Problem as problem:
                outcomes["okta"].append(problem.status)

    def entra_pushes_the_same_people() -> None:
        for i in range(25):
            try:
                scim.create_user(settings, store, "entra", PushUser(f"o{i}@example.com"), request="POST")
                outcomes["entra"].append(201)
            except Problem as problem:
                outcomes["entra"].append(problem.status)

    def deactivate_admin(index: int) -> Callable[[], None]:
        def job() -> None:
            try:
                scim.patch_user(settings, store, "okta", admins[index].row.scim_id,
                                (PatchOp("replace", None, {"active": False}),), request="PATCH")
                outcomes["r4"].append("deactivated")
            except Problem as problem:
                outcomes["r4"].append(problem.reason)
        return job

    def pull_cycles() -> None:
        for n in (20, 25, 24):
            _hr_file(tmp_path, n)
            run_cycle(settings, "hr", store=store, full=True)

    def admin_actions() -> None:
        rules = settings.rules.to_rules()
        for i in range(10):
            with store.session() as session:
                local = load_local_state(session)
            try:
                apply(store, add_user(local, f"local{i}@example.com", None, rules), run_id=None)
                with store.session() as session:
                    local = load_local_state(session)
                apply(store, deactivate_user(local, "o0@example.com", rules), run_id=None)
                outcomes["admin"].append("deactivated a managed user")
            except Refused as refused:
                outcomes["admin"].append(refused.reason)

    errors = _run_all([okta_pushes, entra_pushes_the_same_people, deactivate_admin(0), deactivate_admin(1),
                       pull_cycles, admin_actions])

    assert errors == []
    with store.session() as session:
        state = export_state(session)
    users = {u["email"]: u for u in state["users"]}
    groups = {g["name"]: g for g in state["groups"]}
    # R4: two concurrent deactivations of the two admins leave one active.
    assert sorted(outcomes["r4"]) == ["admin-group-would-be-empty", "deactivated"]
    assert any(users[m]["active"] for m in groups["Administrators"]["members"])
    # R1 across directories: every pushed email exists once, owned by whoever came first.
    for i in range(25):
        email = f"o{i}@example.com"
        owner = users[email]["managed_by"]
        assert owner in ("okta", "entra")
    assert sum(1 for s in outcomes["okta"] if s == 409) + sum(1 for s in outcomes["entra"] if s == 409) == 25
    # R5: local admin actions never change what a directory manages.
    assert "deactivated a managed user" not in outcomes["admin"]
    assert users["o0@example.com"]["active"] is True
    # The pull cycle's own users and group are intact.
    assert sorted(groups["Staff"]["members"]) == sorted(f"h{i}@example.com" for i in range(24))
    assert all(users[f"h{i}@example.com"]["managed_by"] == "hr" for i in range(25))
    assert admin_group.row.scim_id is not None
