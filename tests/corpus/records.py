"""The bad-input corpus: hostile or odd directory records, shared by every connector.

Records are connector-neutral dicts:
    user:  {"id", "email", "given_name", "family_name", "display_name", "active",
            "status" (Okta only: the raw status string, or any value)}
    group: {"id", "name", "members": [record ids]}
A case adds its records to `BASELINE` (a record whose id is a baseline id replaces it) and
says what must happen: the rejections it expects (reason, and the record id, or a text the
rejection's target contains), and what must be created even though it looks odd. Every
cycle must leave the baseline exactly as it was, apart from what a case says it changes.

Every connector gives the same reason for the same bad record: a field of the wrong type is
`malformed-record` wherever it comes from; a missing group name is the rules' `empty-name`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Record = dict[str, Any]

FILE, OKTA, ENTRA = "file", "okta", "entra"
ALL = frozenset({FILE, OKTA, ENTRA})
MEGABYTE = 1_000_000


def user(ident: str, email: Any, **fields: Any) -> Record:
    return {"id": ident, "email": email, "given_name": "Given", "family_name": "Family",
            "display_name": None, "active": True, **fields}


def group(ident: str, name: Any, members: list[str] | tuple[str, ...] = ()) -> Record:
    return {"id": ident, "name": name, "members": list(members)}


BASELINE_USERS: tuple[Record, ...] = (
    user("u-ana", "ana@example.com", given_name="Ana", family_name="Diaz"),
    user("u-ben", "ben@example.com", given_name="Ben", family_name="Okafor"),
    user("u-cai", "cai@example.com", given_name="Cai", family_name="Lin"),
    user("u-dee", "dee@example.com", given_name="Dee", family_name="Moss"),
    user("u-eli", "eli@example.com", given_name="Eli", family_name="Park"),
    user("u-fay", "fay@example.com", given_name="Fay", family_name="Quinn"),
    user("u-gil", "gil@example.com", given_name="Gil", family_name="Reyes"),
)
BASELINE_GROUPS: tuple[Record, ...] = (
    group("g-eng", "Engineering", ["u-ana", "u-ben", "u-cai"]),
    group("g-ops", "Operations", ["u-dee", "u-eli"]),
    group("g-admins", "Split_Administrators", ["u-ana"]),
    group("g-sales", "Sales", ["u-fay", "u-gil"]),
)
BASELINE_IDS = frozenset(r["id"] for r in BASELINE_USERS + BASELINE_GROUPS)


@dataclass(frozen=True)
class Case:
    """One hostile (or merely odd) input and what a cycle must do with it."""

    name: str
    users: tuple[Record, ...] = ()
    groups: tuple[Record, ...] = ()
    rejected: tuple[tuple[str, str], ...] = ()  # (reason, record id or text in the target)
    created: tuple[str, ...] = ()  # ids of records that must be created as they are
    admins: tuple[str, ...] | None = None  # the members Administrators must have, if it changes
    connectors: frozenset[str] = ALL
    reasons: dict[str, dict[str, str]] = field(default_factory=dict)  # connector -> {reason: its code}
    alone: bool = False  # replaces a baseline record another case also replaces

    def expected(self, connector: str) -> list[tuple[str, str]]:
        codes = self.reasons.get(connector, {})
        return [(codes.get(reason, reason), key) for reason, key in self.rejected]


CASES: tuple[Case, ...] = (
    # --- emails (R1)
    Case("missing email", users=(user("x-noemail", None),), rejected=(("missing-email", "x-noemail"),)),
    Case("empty email", users=(user("x-empty", ""),), rejected=(("missing-email", "x-empty"),)),
    Case("whitespace email", users=(user("x-blank", " \t "),), rejected=(("missing-email", "x-blank"),)),
    Case("address without a domain", users=(user("x-nodomain", "fred@"),),
         rejected=(("invalid-email", "x-nodomain"),)),
    Case("address with two at signs", users=(user("x-twoats", "fred@home@example.com"),),
         rejected=(("invalid-email", "x-twoats"),)),
    Case("duplicate email", users=(user("x-dup", "ana@example.com", given_name="Impostor"),),
         rejected=(("duplicate-email", "x-dup"),)),
    Case("case-variant email", users=(user("x-case", "  ANA@Example.COM ", given_name="Impostor"),),
         rejected=(("duplicate-email", "x-case"),)),
    Case("homoglyph email (Cyrillic a)", users=(user("x-homoglyph", "\u0430na@example.com"),),
         rejected=(("invalid-email", "x-homoglyph"),)),
    Case("control character in email", users=(user("x-bell", "gus\x07@example.com"),),
         rejected=(("control-characters", "x-bell"),)),
    Case("megabyte email", users=(user("x-hugemail", "a" * MEGABYTE + "@example.com"),),
         rejected=(("invalid-email", "x-hugemail"),)),
    Case("number as email", users=(user("x-numemail", 42),), rejected=(("malformed-record", "x-numemail"),)),
    # --- names and other user fields
    Case("right-to-left override in a name",
         users=(user("x-rtl", "rtl@example.com", display_name="Ana \u202egnp.exe"),),
         rejected=(("control-characters", "x-rtl"),)),
    Case("NUL in a name", users=(user("x-nul", "nul@example.com", given_name="Bo\x00b"),),
         rejected=(("control-characters", "x-nul"),)),
    Case("escape sequence in a name", users=(user("x-ansi", "ansi@example.com", family_name="\x1b[31mRed"),),
         rejected=(("control-characters", "x-ansi"),)),
    Case("megabyte name", users=(user("x-hugename", "huge@example.com", display_name="x" * MEGABYTE),),
         rejected=(("field-too-long", "x-hugename"),)),
    Case("number as a name", users=(user("x-numname", "numname@example.com", given_name=7),),
         rejected=(("malformed-record", "x-numname"),)),
    Case("text where the status flag belongs", users=(user("x-activetext", "flag@example.com", active="false"),),
         rejected=(("malformed-record", "x-activetext"),), connectors=frozenset({FILE, ENTRA})),
    Case("status flag missing (Entra: no accountEnabled)", users=(user("x-noflag", "noflag@example.com", active=None),),
         rejected=(("malformed-record", "x-noflag"),), connectors=frozenset({FILE, ENTRA})),
    Case("unknown Okta status", users=(user("x-hibernating", "sleepy@example.com", status="HIBERNATING"),),
         rejected=(("unknown-status", "x-hibernating"),), connectors=frozenset({OKTA})),
    Case("number as Okta status", users=(user("x-numstatus", "numstatus@example.com", status=3),),
         rejected=(("unknown-status", "x-numstatus"),), connectors=frozenset({OKTA})),
    Case("duplicate user id",
         users=(user("x-twin", "twin.one@example.com"), user("x-twin", "twin.two@example.com")),
         rejected=(("duplicate-id", "twin.two@example.com"),), created=("x-twin",),
         connectors=frozenset({FILE})),
    # --- odd but valid users: kept
    Case("unicode names are kept",
         users=(user("x-unicode", "zoe@example.com", given_name="Zoë", family_name="Ñúñez-山田",
                     display_name="Zoë Ñúñez-山田 🚀"),),
         created=("x-unicode",)),
    Case("right-to-left script names are kept",
         users=(user("x-hebrew", "sara@example.com", given_name="שרה", family_name="כהן",
                     display_name="שרה כהן"),),
         created=("x-hebrew",)),
    Case("null names are kept", users=(user("x-nulls", "nulls@example.com", given_name=None,
                                            family_name=None, display_name=None),),
         created=("x-nulls",)),
    # --- group names (R2, R3)
    Case("group name of 24 characters is kept", groups=(group("x-g24", "N" * 24, ["u-ben"]),), created=("x-g24",)),
    Case("group name of 25 characters", groups=(group("x-g25", "N" * 25, ["u-ben"]),),
         rejected=(("name-too-long", "x-g25"),)),
    Case("group name of 200 characters", groups=(group("x-g200", "Long " * 40, ["u-ben"]),),
         rejected=(("name-too-long", "x-g200"),)),
    Case("empty group name", groups=(group("x-gempty", "", ["u-ben"]),), rejected=(("empty-name", "x-gempty"),)),
    Case("whitespace group name", groups=(group("x-gblank", "   ", ["u-ben"]),),
         rejected=(("empty-name", "x-gblank"),)),
    Case("null group name", groups=(group("x-gnull", None, ["u-ben"]),), rejected=(("empty-name", "x-gnull"),)),
    Case("number as a group name", groups=(group("x-gnum", 1234, ["u-ben"]),),
         rejected=(("malformed-record", "x-gnum"),), connectors=frozenset({FILE, OKTA})),
    Case("control character in a group name", groups=(group("x-gctl", "Ops\x1b[2J", ["u-ben"]),),
         rejected=(("control-characters", "x-gctl"),)),
    Case("right-to-left override in a group name", groups=(group("x-grtl", "\u202esrotartsinimdA", ["u-ben"]),),
         rejected=(("control-characters", "x-grtl"),)),
    Case("Administrators from the directory", groups=(group("x-gadmin", "Administrators", ["u-eli"]),),
         rejected=(("reserved-name", "x-gadmin"),)),
    Case("look-alike Administrators (Cyrillic A)", groups=(group("x-gadmin3", "\u0410dministrators", ["u-eli"]),),
         rejected=(("reserved-name", "x-gadmin3"),)),
    Case("Administrators in another case and with spaces", groups=(group("x-gadmin2", " administrators ", ["u-eli"]),),
         rejected=(("reserved-name", "x-gadmin2"),)),
    Case("case-variant of an existing group name", groups=(group("x-gcase", "ENGINEERING", ["u-eli"]),),
         rejected=(("duplicate-name", "x-gcase"),)),
    Case("unicode group name is kept", groups=(group("x-gunicode", "Équipe données 数据", ["u-cai"]),),
         created=("x-gunicode",)),
    # --- the admin alias (R3, R4)
    Case("Split_Administrators with zero members", groups=(group("g-admins", "Split_Administrators", []),),
         rejected=(("admin-group-would-be-empty", "Administrators"),), alone=True),
    Case("Split_Administrators with all members",
         groups=(group("g-admins", "Split_Administrators", [u["id"] for u in BASELINE_USERS]),),
         admins=tuple(u["id"] for u in BASELINE_USERS), alone=True),
    # --- records the baseline already synced turn bad: their local twins are held as they are
    Case("an existing user loses their email", users=(user("u-eli", None, given_name="Eli", family_name="Park"),),
         rejected=(("missing-email", "u-eli"),)),
    Case("an existing user gets an unknown Okta status",
         users=(user("u-fay", "fay@example.com", given_name="Fay", family_name="Quinn", status="ON_LEAVE"),),
         rejected=(("unknown-status", "u-fay"),), connectors=frozenset({OKTA})),
    Case("an existing user's name gets a right-to-left override",
         users=(user("u-fay", "fay@example.com", given_name="Fay", family_name="\u202enniuQ"),),
         rejected=(("control-characters", "u-fay"),), connectors=frozenset({FILE, ENTRA})),
    Case("an existing user loses the status flag (Entra: no accountEnabled)",
         users=(user("u-dee", "dee@example.com", given_name="Dee", family_name="Moss", active=None),),
         rejected=(("malformed-record", "u-dee"),), connectors=frozenset({FILE, ENTRA})),
    Case("an existing user's name becomes a number",
         users=(user("u-gil", "gil@example.com", given_name=1234, family_name="Reyes"),),
         rejected=(("malformed-record", "u-gil"),)),
    Case("an existing group is renamed to 25 characters", groups=(group("g-ops", "O" * 25, ["u-dee", "u-eli"]),),
         rejected=(("name-too-long", "g-ops"),)),
    Case("an existing group is renamed to Administrators", groups=(group("g-sales", "Administrators", ["u-fay", "u-gil"]),),
         rejected=(("reserved-name", "g-sales"),)),
    # --- memberships
    Case("member id that names no user", groups=(group("x-gghost", "Ghosts", ["u-ben", "u-nobody"]),),
         rejected=(("unknown-member", "u-nobody"),), created=("x-gghost",), connectors=frozenset({FILE})),
    Case("group listed as its own member", groups=(group("x-gself", "Ouroboros", ["x-gself", "u-cai"]),),
         rejected=(("unknown-member", "Ouroboros: x-gself"),), created=("x-gself",), connectors=frozenset({FILE})),
    Case("cycle of group memberships",
         groups=(group("x-gping", "Ping", ["x-gpong", "u-dee"]), group("x-gpong", "Pong", ["x-gping"])),
         rejected=(("unknown-member", "Ping: x-gpong"), ("unknown-member", "Pong: x-gping")),
         created=("x-gping", "x-gpong"), connectors=frozenset({FILE})),
    Case("duplicate group id",
         groups=(group("x-gtwin", "Twin One", ["u-ben"]), group("x-gtwin", "Twin Two", ["u-cai"])),
         rejected=(("duplicate-id", "Twin Two"),), created=("x-gtwin",), connectors=frozenset({FILE})),
    Case("user in 10,000 groups",
         users=(user("x-joiner", "joiner@example.com"),),
         groups=tuple(group(f"x-bulk-{n}", f"Bulk {n:05d}", ["x-joiner"]) for n in range(10_000)),
         created=("x-joiner", *(f"x-bulk-{n}" for n in range(10_000))), connectors=frozenset({FILE})),
)

# Product gaps a case exposes, by (case, connector): each keeps its own strict-xfail test.
KNOWN_GAPS: dict[tuple[str, str], str] = {}


def all_at_once(connector: str) -> Case:
    """Every case of `connector` in one directory, except those that replace the same
    baseline record (`alone`) and any known gap (each has its own failing test)."""
    cases = [c for c in CASES if connector in c.connectors and not c.alone and (c.name, connector) not in KNOWN_GAPS]
    return Case(
        f"all {len(cases)} cases at once",
        users=tuple(r for c in cases for r in c.users),
        groups=tuple(r for c in cases for r in c.groups),
        rejected=tuple(pair for c in cases for pair in c.expected(connector)),
        created=tuple(i for c in cases for i in c.created),
        connectors=frozenset({connector}),
    )

