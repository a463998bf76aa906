"""Two file directories that share people, and how they change between rounds.

`east` and `west` list the same people (same emails) under their own ids, both carry the
`Split_Administrators` alias and an `Engineering` group, and each round brings new people
that both list at once (and that an admin may add by hand at the same moment), so that the
two directories and the admin race for the same unmanaged rows every round.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DIRECTORIES = ("east", "west")
BASE_PEOPLE = 10
ROOT = "root@example.com"  # the local admin that the first setup puts in Administrators
# Local people no directory lists, also administrators at first: while `Administrators` is
# local, admin actions race each other and the cycles on them (R4 at write time).
LOCALS = ("local0@example.com", "local1@example.com")


def person(n: int) -> str:
    return f"p{n}@example.com"


@dataclass
class Directory:
    """One directory's people (email -> active; absent = out of scope) and groups."""

    name: str
    people: dict[str, bool] = field(default_factory=dict)
    admins: list[str] = field(default_factory=list)
    alias: bool = True
    engineering: list[str] = field(default_factory=list)

    def ident(self, email: str) -> str:
        return f"{self.name[0]}-{email.split('@')[0]}"

    def document(self) -> dict[str, Any]:
        users = [
            {"id": self.ident(e), "email": e, "display_name": e.split("@")[0], "active": active}
            for e, active in sorted(self.people.items())
        ]
        groups = [{"id": f"{self.name}-eng", "name": "Engineering",
                   "members": [self.ident(e) for e in self.engineering if e in self.people]}]
        if self.alias:
            groups.append({"id": f"{self.name}-admins", "name": "Split_Administrators",
                           "members": [self.ident(e) for e in self.admins if e in self.people]})
        return {"users": users, "groups": groups}

    def write(self, folder: Path) -> None:
        path = folder / f"{self.name}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.document()))
        tmp.replace(path)  # a cycle reads either file, never half of one


@dataclass
class World:
    folder: Path
    rng: random.Random
    directories: dict[str, Directory] = field(default_factory=dict)
    known: list[str] = field(default_factory=list)  # every email any writer has used

    @classmethod
    def start(cls, folder: Path, rng: random.Random) -> World:
        world = cls(folder, rng)
        base = [person(n) for n in range(BASE_PEOPLE)]
        for name in DIRECTORIES:
            d = Directory(name, dict.fromkeys(base, True))
            d.admins = rng.sample(base, 2)
            d.engineering = rng.sample(base, 4)
            world.directories[name] = d
        world.known = [ROOT, *LOCALS, *base]
        world.write()
        return world

    def write(self) -> None:
        for d in self.directories.values():
            d.write(self.folder)

    def newcomers(self, round_no: int, count: int = 2) -> list[str]:
        """People who appear in both directories this round."""
        emails = [f"r{round_no}n{k}@example.com" for k in range(count)]
        for d in self.directories.values():
            for e in emails:
                d.people[e] = True
        self.known += emails
        return emails

    def mutate(self) -> None:
        """Between rounds: people leave, come back, are disabled; admin aliases swap
        members, and now and then an alias leaves a directory or comes back."""
        rng = self.rng
        for d in self.directories.values():
            for _ in range(rng.randint(1, 3)):
                e = rng.choice(self.known[1 + len(LOCALS):])
                roll = rng.random()
                if roll < 0.4:
                    d.people[e] = not d.people.get(e, False)  # disabled, or enabled again
                elif roll < 0.7:
                    d.people.pop(e, None)  # leaves the directory
                else:
                    d.people[e] = True  # (re)joins
            present = sorted(d.people)
            if present and rng.random() < 0.6:  # a swap: {A} -> {B}, or a few at once
                d.admins = rng.sample(present, min(len(present), rng.randint(1, 2)))
            if rng.random() < 0.3:
                d.alias = not d.alias
            if present and rng.random() < 0.5:
                d.engineering = rng.sample(present, min(len(present), rng.randint(1, 5)))
        self.write()

    def admin_commands(self, newcomers: list[str]) -> list[list[str]]:
        """A few local admin actions, each racing the cycles for the rows it names."""
        rng = self.rng
        commands: list[list[str]] = []
        for _ in range(rng.randint(2, 4)):
            email = rng.choice((ROOT, *LOCALS) if rng.random() < 0.5 else self.known)
            kind = rng.choice(("remove-member", "add-member", "deactivate-user", "activate-user", "add-user"))
            if kind == "remove-member":
                commands.append(["admin", "remove-member", "Administrators", email])
            elif kind == "add-member":
                commands.append(["admin", "add-member", "Administrators", email])
            elif kind == "add-user":
                commands.append(["admin", "add-user", rng.choice(newcomers)])
            else:
                commands.append(["admin", kind, email])
        return commands


def config_text(store_url: str) -> str:
    sections = [
        f'[store]\nurl = "{store_url}"\n',
        # Random churn must not trip the deactivation limits: these tests are about writes.
        "[safety]\nmax_deactivations = 100000\nmax_deactivation_ratio = 1.0\nquarantine_after = 100000\n",
    ]
    for name in DIRECTORIES:
        sections.append(f'[directories.{name}]\nkind = "file"\npath = "{name}.json"\n')
    return "\n".join(sections)
