"""Properties of sync over a wide domain, on SQLite and PostgreSQL.

Each example seeds a store with local users and groups through the local admin actions,
then runs real cycles (file connector -> plan -> guard -> apply) through a sequence of
directory states and compares the store, after every cycle, with `oracle.Model`. The
domain holds what the rules are about: case-variant and look-alike emails, a second record
claiming an address (`t0` next to `u0`), directory groups named like local ones (R6, with
and without `link_groups_by_name`), explicit `links`, `Split_Administrators` and names that
only look like `Administrators` (R3, R4), and safety limits low enough that plans halt
(S2): a halted plan changes nothing, and approved it applies. A second test runs two
directories that share people and each map their alias onto `Administrators`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from hypothesis import currently_in_test_context, event, example, given, settings
from hypothesis import strategies as st

import config
from connectors.file import parse
from reconcile import admin as actions
from reconcile.apply import apply
from reconcile.cycle import RunResult, run_cycle
from reconcile.model import LocalState, Plan
from reconcile.plan import plan
from reconcile.rules import name_key
from store import Store, export_state, load_for_read, load_local_state
from tests.property.oracle import ADMIN, GroupRecord, Limits, Model, UserRecord, key
from tests.property.common import PROPERTY, reset, sync_approved

# More examples than the narrow properties: the domain is wider, and each example is cheap.
WIDE = settings(PROPERTY, max_examples=150)


USER_IDS = ["u0", "u1", "u2", "u3", "u4", "t0", "t1"]  # tN claims the address of uN


def email_of(user_id: str, variant: int | str) -> str:
    """User `uN` (or `tN`) under one of its spellings: plain, another case, a Cyrillic
    look-alike (invalid), not an address (invalid), fullwidth (one key with the plain one);
    or `variant` itself when it is text."""
    if isinstance(variant, str):
        return variant
    n = user_id[1:]
    return [
        f"user{n}@example.com",
        f"USER{n}@Example.COM",
        f"user{n}@exаmple.com",  # Cyrillic "а"
        "not-an-email",
        f"ｕｓｅｒ{n}@example.com",
    ][variant]


EMAIL_VARIANTS = [0, 0, 0, 1, 1, 2, 3] + [4, 4]

# Each directory group id has a family of names; families meet local names and each other
# only where a rule decides (R6 links, R3 reserved names, explicit links).
GROUP_NAMES: dict[str, list[str]] = {
    "g0": ["Engineering", "ENGINEERING", "Eng"] + ["ＥＮＧＩＮＥＥＲＩＮＧ"],
    "g1": ["Sales", "S" * 25, "Sales EMEA", "administrators", "Ａｄｍｉｎｉｓｔｒａｔｏｒｓ"],
    "g2": ["Ops", "", "Аdministrators"] + ["ＯＰＳ"],
    "ga": ["Split_Administrators", "split_administrators", "Admins"],
}
LOCAL_GROUP_NAMES = ["engineering", "Sales", "Ops", "Legacy", "Admins"]
LINKS: list[dict[str, str]] = [{}, {"g1": "Legacy"}, {"g0": "Legacy"}, {"g2": "engineering"}]

users_st = st.lists(
    st.tuples(
        st.sampled_from(USER_IDS),
        st.sampled_from(EMAIL_VARIANTS),
        st.sampled_from(["A", "B", None]),
        st.booleans(),
    ),
    max_size=len(USER_IDS),
    unique_by=lambda t: t[0],
)
groups_st = st.lists(
    st.tuples(
        st.sampled_from(sorted(GROUP_NAMES)),
        st.integers(0, 4),
        st.lists(st.sampled_from(USER_IDS + ["ghost"]), max_size=4, unique=True),
    ),
    max_size=len(GROUP_NAMES),
    unique_by=lambda t: t[0],
)
# The store before the first cycle: local users (uN's address in either case), local
# groups with members, and local administrators.
seed_st = st.tuples(
    st.lists(
        st.tuples(st.integers(0, 4), st.booleans(), st.booleans(), st.sampled_from(["Local", None])),
        max_size=4,
        unique_by=lambda t: t[0],
    ),
    st.lists(
        st.tuples(st.sampled_from(LOCAL_GROUP_NAMES), st.sets(st.integers(0, 4), max_size=3)),
        max_size=3,
        unique_by=lambda t: key(t[0]),
    ),
    st.sets(st.integers(0, 4), max_size=2),
)
config_st = st.fixed_dictionaries(
    {
        "links": st.sampled_from(LINKS),
        "link_groups_by_name": st.booleans(),
        "max_deactivations": st.sampled_from([0, 1, 500]),
        "max_member_removals": st.sampled_from([0, 2, 1000]),
    }
)

# A variant is an index into the spellings above, or (in explicit examples) the text itself.
Users = list[tuple[str, int | str, str | None, bool]]
Groups = list[tuple[str, int | str, list[str]]]


def user_records(users: Users) -> list[UserRecord]:
    return [(uid, email_of(uid, v), name, active) for uid, v, name, active in users]


def group_records(groups: Groups, names: Mapping[str, list[str]] = GROUP_NAMES) -> list[GroupRecord]:
    return [
        (gid, v if isinstance(v, str) else names[gid][v % len(names[gid])], members) for gid, v, members in groups
    ]


def directory_file(users: Sequence[UserRecord], groups: Sequence[GroupRecord]) -> dict[str, Any]:
    return {
        "users": [{"id": i, "email": e, "display_name": n, "active": a} for i, e, n, a in users],
        "groups": [{"id": i, "name": n, "members": sorted(m)} for i, n, m in groups],
    }


def config_for(store: Store, files: Mapping[str, Path], cfg: Mapping[str, Any]) -> config.Settings:
    links = cfg.get("links", {})
    return config.parse(
        {
            "store": {"url": store.engine.url.render_as_string(hide_password=False)},
            "rules": {"link_groups_by_name": cfg.get("link_groups_by_name", True)},
            "safety": {
                "max_deactivations": cfg.get("max_deactivations", 500),
                "max_member_removals": cfg.get("max_member_removals", 1000),
            },
            "directories": {
                name: {"kind": "file", "path": str(path), "links": links if name == "hr" else {}}
                for name, path in files.items()
            },
        },
        environ={},
    )


def limits_of(cfg: Mapping[str, Any]) -> Limits:
    return Limits(max_deactivations=cfg["max_deactivations"], max_member_removals=cfg["max_member_removals"])


def stored(store: Store) -> dict[str, Any]:
    with store.session() as session:
        state = export_state(session)
    del state["invites"]
    return state


def seed(store: Store, cfg: config.Settings, model: Model, spec: Any) -> None:
    """The local users, groups and administrators of `spec`, made by the local admin
    actions in the store and in the model alike."""
    rules = cfg.to_rules()

    def act(build: Callable[[LocalState], Plan]) -> None:
        with store.session() as session:
            local = load_local_state(session)
        result = apply(store, build(local), run_id=None, directory=None)
        assert not (result.failed or result.conflicts), result.failures

    users, groups, admins = spec
    email = {n: (f"USER{n}@Example.COM" if upper else f"user{n}@example.com") for n, upper, _, _ in users}
    for n, _, _, name in users:
        act(lambda local, e=email[n], name=name: actions.add_user(local, e, name, rules))
        model.add_user(email[n], name)
    for group, members in groups:
        act(lambda local, group=group: actions.add_group(local, group, rules))
        model.add_group(group)
        for n in sorted(members & email.keys()):
            act(lambda local, group=group, e=email[n]: actions.add_member(local, group, e, rules))
            model.add_member(group, email[n])
    for n in sorted(admins & email.keys()):
        act(lambda local, e=email[n]: actions.add_member(local, ADMIN, e, rules))
        model.add_member(ADMIN, email[n])
    for n, _, active, _ in users:
        if active:
            continue
        try:
            deactivation = actions.deactivate_user(load(store), email[n], rules)
        except actions.Refused as refused:
            assert refused.reason == "last-active-administrator"
            assert not model.deactivate_user(email[n])
            continue
        assert model.deactivate_user(email[n])
        apply(store, deactivation, run_id=None, directory=None)


def load(store: Store) -> LocalState:
    with store.session() as session:
        return load_local_state(session)


# Reasons a record is refused for that the model predicts by record: compared as a set.
COMPARED_REASONS = frozenset(
    {
        "invalid-email",
        "duplicate-email",
        "email-taken",
        "owned-by-other-directory",
        "empty-name",
        "name-too-long",
        "reserved-name",
        "duplicate-name",
        "name-taken",
        "link-target-missing",
    }
)


def refusals(pairs: Any) -> set[tuple[str, str]]:
    return {(ext, reason) for ext, reason in pairs if reason in COMPARED_REASONS}


def active_admins(state: Mapping[str, Any]) -> set[str]:
    active = {u["email"] for u in state["users"] if u["active"]}
    return {m for g in state["groups"] if g["name"] == ADMIN for m in g["members"]} & active


def has_active_admin(state: Mapping[str, Any]) -> bool:
    return bool(active_admins(state))


def note(what: str) -> None:
    """Count `what` in hypothesis' statistics (`--hypothesis-show-statistics`)."""
    if currently_in_test_context():
        event(what)


def assert_scope_plans_alike(store: Store, cfg: config.Settings, directory: str, path: Path) -> None:
    """A full read planned against the rows `load_for_read` scopes plans what it plans
    against the whole store (the scope leaves out only rows no rule lets it touch)."""
    snapshot = parse(json.loads(path.read_text()))
    rules, links = cfg.to_rules(), cfg.directory(directory).links
    with store.session() as session:
        whole = load_local_state(session)
        scoped = load_for_read(session, directory, snapshot, links=links,
                               reserved_names=rules.reserved_names)
    assert plan(snapshot, scoped, rules, directory=directory, links=links) == plan(
        snapshot, whole, rules, directory=directory, links=links)


def sync_and_compare(
    store: Store,
    cfg: config.Settings,
    model: Model,
    directory: str,
    users: list[UserRecord],
    groups: list[GroupRecord],
    files: Mapping[str, Path],
    limits: Limits | None = None,
) -> None:
    """One cycle of `directory` (approved if the guard halts it), checked against the model."""
    files[directory].write_text(json.dumps(directory_file(users, groups)))
    assert_scope_plans_alike(store, cfg, directory, files[directory])
    links = cfg.directory(directory).links
    by_name = cfg.rules.link_groups_by_name
    before = stored(store)
    had_admin = has_active_admin(before)
    result: RunResult
    if limits is None:
        result, status = sync_approved(cfg, store, directory=directory, full=True)
    else:
        halts = model.halts(directory, users, groups, links, by_name, limits)
        result = run_cycle(cfg, directory, store=store, full=True)
        status = result.status
        assert result.status == ("halted" if halts else "succeeded"), result.error
        if halts:  # S2: a halted plan changes nothing; approved, the same plan applies
            note("halted, then approved")
            assert stored(store) == before
            result, status = sync_approved(cfg, store, directory=directory, full=True)
    assert status in ("succeeded", "approved"), result.error
    model.cycle(directory, users, groups, links, by_name)
    for reason in sorted({reason for _, reason in model.rejections}):
        note(f"refused: {reason}")
    after = stored(store)
    assert after == model.export()
    assert result.plan is not None
    assert refusals((r.external_id, r.reason) for r in result.plan.rejections) == refusals(model.rejections)
    if had_admin:  # R4: once it has an active member, Administrators keeps one
        assert has_active_admin(after)
    # R4 holds a deactivation only when it must: no administrator it did not hold is active
    # after the cycle (one the plan added or activated would have been enough). Checked on
    # the store, not through the model, which states the hold rule in its own steps.
    held = {key(r.target) for r in result.plan.rejections if r.reason == "last-active-administrator"}
    if held:  # (the address before the plan: the same key as the stored one)
        assert {key(email) for email in active_admins(after)} <= held
    again = run_cycle(cfg, directory, store=store, dry_run=True, full=True)
    assert again.plan is not None and again.plan.operations == ()


@WIDE
@given(spec=seed_st, cfg=config_st, states=st.lists(st.tuples(users_st, groups_st), min_size=1, max_size=4))
@example(  # a local group ENGINEERING is linked by its fullwidth spelling (R6)
    spec=([], [("engineering", set())], set()),
    cfg={"links": {}, "link_groups_by_name": True, "max_deactivations": 500, "max_member_removals": 1000},
    states=[([], [("g0", "ＥＮＧＩＮＥＥＲＩＮＧ", [])])],
)
@example(  # a fullwidth address is the local user's address (R1, §3)
    spec=([(0, False, True, None)], [], set()),
    cfg={"links": {}, "link_groups_by_name": True, "max_deactivations": 500, "max_member_removals": 1000},
    states=[([("u0", "ｕｓｅｒ0@example.com", "A", True)], [])],
)
def test_store_follows_the_rules_from_a_seeded_store(store, tmp_path, spec, cfg, states):
    """After each cycle the store is what the rules predict from the seeded store and the
    directory; Administrators keeps an active member once it has one; a halted plan
    changes nothing and applies once approved; a second full cycle plans nothing."""
    reset(store)
    files = {"hr": tmp_path / "hr.json"}
    settings_ = config_for(store, files, cfg)
    model = Model()
    seed(store, settings_, model, spec)
    assert stored(store) == model.export()
    for users, groups in states:
        sync_and_compare(
            store, settings_, model, "hr", user_records(users), group_records(groups), files, limits_of(cfg)
        )


# The second directory: the same people (crm's cN is hr's uN) under other ids and
# spellings, a group named like hr's, and its own alias of the admin group.
CRM_USER_IDS = ["c0", "c1", "c2", "c3", "c4"]
CRM_GROUP_NAMES = {"h0": ["Engineering", "engineering", "Platform"], "ha": ["Split_Administrators", "SPLIT_ADMINISTRATORS"]}
crm_users_st = st.lists(
    st.tuples(st.sampled_from(CRM_USER_IDS), st.sampled_from([0, 1, 1, 3]), st.sampled_from(["C", None]), st.booleans()),
    max_size=len(CRM_USER_IDS),
    unique_by=lambda t: t[0],
)
crm_groups_st = st.lists(
    st.tuples(
        st.sampled_from(sorted(CRM_GROUP_NAMES)),
        st.integers(0, 2),
        st.lists(st.sampled_from(CRM_USER_IDS), max_size=3, unique=True),
    ),
    max_size=2,
    unique_by=lambda t: t[0],
)
step_st = st.one_of(
    st.tuples(st.just("hr"), users_st, groups_st),
    st.tuples(st.just("crm"), crm_users_st, crm_groups_st),
)


@WIDE
@given(spec=seed_st, steps=st.lists(step_st, min_size=2, max_size=5))
def test_two_directories_sharing_people_never_take_over_each_others_rows(store, tmp_path, spec, steps):
    """Cycles of two directories that share people and each map an alias onto
    Administrators: the store is what the rules predict after each; a user or group one
    directory manages is never managed by the other; the second alias is refused
    `owned-by-other-directory`; Administrators keeps an active member once it has one."""
    reset(store)
    files = {"hr": tmp_path / "hr.json", "crm": tmp_path / "crm.json"}
    settings_ = config_for(store, files, {})
    model = Model()
    seed(store, settings_, model, spec)
    for directory, users, groups in steps:
        user_owner = {key(u["email"]): u["managed_by"] for u in stored(store)["users"]}
        group_owner = {gid: g.managed_by for gid, g in model.groups.items()}
        names = GROUP_NAMES if directory == "hr" else CRM_GROUP_NAMES
        sync_and_compare(store, settings_, model, directory, user_records(users), group_records(groups, names), files)
        # §3: users are matched by an address that keeps its key here, so the store shows
        # the owner of each; groups get renamed, so their rows are followed in the model,
        # which the store equals.
        for user in stored(store)["users"]:
            assert user_owner.get(key(user["email"])) in (None, user["managed_by"]), user
        for gid, owner in group_owner.items():
            assert model.groups[gid].managed_by in (None, owner) or owner is None, model.groups[gid]
