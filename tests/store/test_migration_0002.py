"""Revision 0002 recomputes the email and group-name keys with the planner's key, and
refuses, rather than merges, rows that the new key would make one."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import insert, select

from reconcile import clock
from store import Store, StoreError, open_store
from store.engine import ALEMBIC_INI
from store.models import groups, invites, users


@pytest.fixture
def old_store(store_url: str) -> Iterator[Store]:
    """A store at revision 0001, whose keys are lower-cased text."""
    opened = open_store(store_url, check_schema=False)
    opened.upgrade("0001")
    try:
        yield opened
    finally:
        opened.dispose()


def add_rows(store: Store, *, emails: tuple[str, ...] = (), names: tuple[str, ...] = (),
             invited: tuple[str, ...] = (), keys: dict[str, str] | None = None) -> None:
    """Rows as revision 0001 wrote them (key = trimmed, lower-cased text, or `keys[text]`)."""
    keys = keys or {}
    at = clock.now()
    stamps: dict[str, Any] = {"created_at": at, "updated_at": at}
    with store.begin_write() as conn:
        for email in emails:
            conn.execute(insert(users).values(email=email, email_key=keys.get(email, email.strip().lower()),
                                              active=True, **stamps))
        for name in names:
            conn.execute(insert(groups).values(name=name, name_key=keys.get(name, name.strip().lower()),
                                               reserved=name == "Administrators", **stamps))
        for email in invited:
            conn.execute(insert(invites).values(email=email, email_key=email.lower(), status="open", **stamps))


def stored_keys(store: Store) -> dict[str, str]:
    with store.engine.connect() as conn:
        rows = [*conn.execute(select(users.c.email, users.c.email_key)),
                *conn.execute(select(groups.c.name, groups.c.name_key))]
    return dict(rows)  # type: ignore[arg-type]


def refusal(store: Store) -> str:
    with pytest.raises(StoreError) as caught:
        store.upgrade("0002")
    return str(caught.value)


def test_upgrade_recomputes_every_key_with_the_new_matching(old_store: Store) -> None:
    add_rows(old_store, emails=("Ana@Example.com", "ＢＯＢ@example.com"),
             names=("Administrators", "Straße", "ＯＰＳ", "ﬁnance", "Eng"), invited=("Ｎew@example.com",))

    old_store.upgrade("0002")

    assert old_store.revision() == "0002"
    assert stored_keys(old_store) == {
        "Ana@Example.com": "ana@example.com",
        "ＢＯＢ@example.com": "bob@example.com",
        "Administrators": "administrators",
        "Straße": "strasse",
        "ＯＰＳ": "ops",
        "ﬁnance": "finance",
        "Eng": "eng",
    }
    with old_store.engine.connect() as conn:
        assert conn.execute(select(invites.c.email_key)).scalars().all() == ["new@example.com"]


def test_colliding_rows_refuse_the_upgrade_and_nothing_changes(old_store: Store) -> None:
    add_rows(old_store, emails=("ana@example.com", "ＡＮＡ@example.com"), names=("Straße", "STRASSE", "Eng"))
    before = stored_keys(old_store)

    message = refusal(old_store)

    assert old_store.revision() == "0001"
    assert stored_keys(old_store) == before
    assert "\n" not in message
    assert message.startswith("database at ") and "cannot be migrated to revision 0002" in message
    assert "2 sets of rows would share one email or group name" in message
    assert "users #1 'ana@example.com' and #2 'ＡＮＡ@example.com'" in message
    assert "groups #1 'Straße' and #2 'STRASSE'" in message
    assert "Eng" not in message
    assert message.endswith("then run `dirsync db upgrade` again")


def test_a_lookalike_of_the_admin_group_is_reported_with_it(old_store: Store) -> None:
    add_rows(old_store, names=("Administrators", "ＡＤＭＩＮＩＳＴＲＡＴＯＲＳ"))

    message = refusal(old_store)

    assert "1 set of rows" in message
    assert "groups #1 'Administrators' and #2 'ＡＤＭＩＮＩＳＴＲＡＴＯＲＳ'" in message


def test_three_rows_of_one_key_are_one_set(old_store: Store) -> None:
    add_rows(old_store, names=("Straße", "STRASSE", "ＳＴＲＡＳＳＥ"))

    message = refusal(old_store)

    assert "1 set of rows" in message
    assert "groups #1 'Straße' and #2 'STRASSE' and #3 'ＳＴＲＡＳＳＥ'" in message


def test_a_long_collision_list_names_ten_sets_and_counts_the_rest(old_store: Store) -> None:
    add_rows(old_store, names=tuple(n for i in range(12) for n in (f"Straße {i}", f"STRASSE {i}")))

    message = refusal(old_store)

    assert "12 sets of rows" in message
    assert message.count("'Straße ") == 10
    assert "; and 2 more." in message


def test_keys_out_of_step_are_repaired_even_when_rows_trade_them(old_store: Store) -> None:
    add_rows(old_store, names=("Alpha", "Beta"), keys={"Alpha": "beta", "Beta": "alpha"})

    old_store.upgrade("0002")

    assert stored_keys(old_store) == {"Alpha": "alpha", "Beta": "beta"}


def test_downgrade_goes_back_to_lower_cased_keys(old_store: Store) -> None:
    add_rows(old_store, emails=("Ana@Example.com",), names=("Straße", "ＯＰＳ"))
    old_store.upgrade("0002")

    config = Config(str(ALEMBIC_INI))
    with old_store.begin_write() as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, "0001")

    assert old_store.revision() == "0001"
    assert stored_keys(old_store) == {"Ana@Example.com": "ana@example.com", "Straße": "straße", "ＯＰＳ": "ｏｐｓ"}
