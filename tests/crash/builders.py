"""Small builders for the crash tests: a large org as a file directory, the same org a day
later (every kind of change a cycle applies), the local objects a cycle links to, and the
config file that points dirsync at them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import config
from config.settings import Settings
from reconcile import admin
from reconcile.apply import apply
from store import Store, load_local_state

DIRECTORY = "hr"
USERS = 3000
GROUPS = 60
GROUPS_PER_USER = 2  # 6,000 memberships

# Local (unmanaged) objects that IdP records match by email or name, so cycles link them.
LOCAL_USERS = ("local.ana@example.com", "local.bo@example.com")
LOCAL_GROUPS = ("Support", "Sales")


def user(i: int, *, active: bool = True, email: str | None = None) -> dict[str, Any]:
    return {
        "id": f"u{i}",
        "email": email or f"user{i}@example.com",
        "given_name": f"Given{i}",
        "family_name": f"Family{i}",
        "display_name": f"User {i}",
        "active": active,
    }


def group(j: int, members: list[str], *, name: str | None = None) -> dict[str, Any]:
    return {"id": f"g{j}", "name": name or f"Team {j:02d}", "members": members}


def large_org() -> dict[str, Any]:
    """3,000 users (30 of them suspended), 60 teams of 100 (each user in two), the admin
    alias group, a group that links to local `Support`, a user that links to a local user,
    and two records the rules reject."""
    users = [user(i, active=i % 100 != 7) for i in range(USERS)]
    users.append(user(USERS, email=LOCAL_USERS[0]))
    users.append({"id": "no-email", "given_name": "No", "family_name": "Email"})
    members: dict[int, list[str]] = {j: [] for j in range(GROUPS)}
    for i in range(USERS):
        for k in range(GROUPS_PER_USER):
            members[(i + k * 7) % GROUPS].append(f"u{i}")
    groups = [group(j, members[j]) for j in range(GROUPS)]
    groups.append({"id": "admins", "name": "Split_Administrators", "members": ["u1", "u2", "u3"]})
    groups.append({"id": "support", "name": LOCAL_GROUPS[0], "members": ["u10", "u11"]})
    groups.append({"id": "too-long", "name": "A group name far too long to keep", "members": ["u12"]})
    return {"users": users, "groups": groups}


def with_suspensions(org: dict[str, Any]) -> dict[str, Any]:
    """`org` with 30 more users suspended (users 8, 108, ...): inactive, but known."""
    users = [{**u, "active": False} if u["id"] in SUSPENDED else u for u in org["users"]]
    return {**org, "users": users}


SUSPENDED = frozenset(f"u{i}" for i in range(8, USERS, 100))


def a_day_later(org: dict[str, Any]) -> dict[str, Any]:
    """`org` after a busy day: every kind of change a cycle applies, in one file.

    Email swaps and changes, a case-only email change, group renames and a name swap,
    deactivations and users leaving scope, suspended users coming back, membership
    moves, 300 hires, new groups, a group linking to local `Sales`, a user linking to a
    local user, a group leaving scope, and a new admin alias member.
    """
    users = {u["id"]: dict(u) for u in org["users"]}
    groups = {g["id"]: {**g, "members": list(g["members"])} for g in org["groups"]}
    for a, b in ((f"u{100 + 2 * n}", f"u{101 + 2 * n}") for n in range(20)):  # 20 email swaps
        users[a]["email"], users[b]["email"] = users[b]["email"], users[a]["email"]
    for i in range(200, 250):  # 50 new addresses
        users[f"u{i}"]["email"] = f"renamed{i}@example.org"
    for i in range(250, 260):  # case only
        users[f"u{i}"]["email"] = users[f"u{i}"]["email"].upper()
    for i in range(300, 400):  # 100 suspensions
        users[f"u{i}"]["active"] = False
    for i in range(400, 450):  # 50 leave the directory
        del users[f"u{i}"]
        for g in groups.values():
            if f"u{i}" in g["members"]:
                g["members"].remove(f"u{i}")
    for u in users.values():  # the suspended come back (or, never created, arrive)
        if "email" in u and not u["active"]:
            u["active"] = True
    for j in range(10):  # renames
        groups[f"g{j}"]["name"] = f"Renamed team {j}"
    groups["g10"]["name"], groups["g11"]["name"] = groups["g11"]["name"], groups["g10"]["name"]
    for i in range(1000, 1400):  # membership moves: out of the first group, into g59
        first = f"g{i % GROUPS}"
        if first != "g59" and f"u{i}" in groups[first]["members"]:
            groups[first]["members"].remove(f"u{i}")
            if f"u{i}" not in groups["g59"]["members"]:
                groups["g59"]["members"].append(f"u{i}")
    for i in range(USERS + 1, USERS + 301):  # hires, each in a new group
        users[f"u{i}"] = user(i)
    for j in range(GROUPS, GROUPS + 5):
        groups[f"g{j}"] = group(j, [f"u{i}" for i in range(USERS + 1, USERS + 301) if i % 5 == j - GROUPS])
    users[f"u{USERS + 301}"] = user(USERS + 301, email=LOCAL_USERS[1])
    groups["sales"] = {"id": "sales", "name": LOCAL_GROUPS[1], "members": ["u20", f"u{USERS + 301}"]}
    del groups["g58"]  # leaves scope: unlinked, members kept
    groups["admins"]["members"].append("u4")
    return {"users": list(users.values()), "groups": list(groups.values())}


def write_directory(path: Path, org: dict[str, Any]) -> Path:
    path.write_text(json.dumps(org))
    return path


def settings_file(folder: Path, store_url: str, directory_file: Path) -> Path:
    """A dirsync.toml with one file directory; the lease TTL is the shortest allowed."""
    path = folder / "dirsync.toml"
    path.write_text(
        "\n".join(
            [
                "[store]",
                f'url = "{store_url}"',
                "[worker]",
                "lock_ttl_seconds = 10",
                f"[directories.{DIRECTORY}]",
                'kind = "file"',
                f'path = "{directory_file}"',
            ]
        )
        + "\n"
    )
    return path


def load(path: Path) -> Settings:
    return config.load(path, environ={})


def add_local_objects(store: Store, settings: Settings) -> None:
    """What admins created by hand before the directory was connected."""
    rules = settings.rules.to_rules()
    for email in LOCAL_USERS:
        with store.session() as session:
            local = load_local_state(session)
        apply(store, admin.add_user(local, email, "Local person", rules), run_id=None)
    for name in LOCAL_GROUPS:
        with store.session() as session:
            local = load_local_state(session)
        apply(store, admin.add_group(local, name, rules), run_id=None)
